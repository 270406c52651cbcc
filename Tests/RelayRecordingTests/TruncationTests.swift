import Foundation
import RelayRecording
import Testing

@Suite("Torn recordings")
struct TruncationTests {
    /// A segment cut off at every byte offset of its last records reads back exactly its complete prefix:
    /// never a wrong record, never a crash.
    @Test("a file cut at any byte reads back its complete prefix")
    func cutAnywhere() throws {
        let dir = TemporaryDirectory()
        let writer = RecordingWriter(
            configuration: RecordingConfiguration(directory: dir.path, journalBytes: 0),
            loop: 0,
            runID: "cut",
            relayVersion: "test"
        )
        let texts = try writeSession(writer, connection: 1, charger: "CP-cut", frames: 30)
        // Not finished: like a relay killed with -9, the stream has no gzip trailer.
        let segment = try #require(writer.currentSegmentPath)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: segment))

        // Where each frame's sync flush ended: the prefix lengths at which frame i is complete.
        let full = try SegmentReader(path: segment).readAll()
        #expect(!full.outcome.complete)
        #expect(full.records.compactMap { if case .frame(let f) = $0 { f.text } else { nil } } == texts)

        let cut = dir.path + "/cut" + RecordingConfiguration.segmentSuffix
        var previousCount = 0
        // Every offset in the last third of the file (the last ~10 records), and a sample before it.
        let offsets = Array(stride(from: 1, to: bytes.count * 2 / 3, by: 7)) + Array(bytes.count * 2 / 3...bytes.count)
        for offset in offsets {
            try bytes.prefix(offset).write(to: URL(fileURLWithPath: cut))
            let frames: [String]
            do {
                frames = try SegmentReader(path: cut).readAll().records.compactMap {
                    if case .frame(let f) = $0 { f.text } else { nil }
                }
            } catch let error as RecordingReadError {
                // Too short to hold even the magic: said clearly, not a crash.
                #expect(error.code == .notARecording)
                continue
            }
            #expect(frames == Array(texts.prefix(frames.count)), "offset \(offset) read a wrong record")
            #expect(frames.count >= previousCount || offset < bytes.count * 2 / 3)
            previousCount = frames.count
        }
        #expect(previousCount == texts.count)
        writer.finish()
    }

    @Test("garbage after a torn end is not read as records")
    func garbageTail() throws {
        let dir = TemporaryDirectory()
        let writer = RecordingWriter(
            configuration: RecordingConfiguration(directory: dir.path, journalBytes: 0),
            loop: 0,
            runID: "g",
            relayVersion: "test"
        )
        let texts = try writeSession(writer, connection: 1, charger: "CP-g", frames: 6)
        let segment = try #require(writer.currentSegmentPath)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        bytes.append(contentsOf: (0..<512).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let damaged = dir.path + "/damaged" + RecordingConfiguration.segmentSuffix
        try bytes.write(to: URL(fileURLWithPath: damaged))
        let (records, outcome) = try SegmentReader(path: damaged).readAll()
        #expect(records.compactMap { if case .frame(let f) = $0 { f.text } else { nil } } == texts)
        #expect(outcome.damage != nil)
        writer.finish()
    }

    @Test("a file that is not a recording is refused with a clear error")
    func notARecording() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/x" + RecordingConfiguration.segmentSuffix
        try Data("hello, not gzip".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: RecordingReadError.self) { try SegmentReader(path: path).readAll() }
        let empty = dir.path + "/empty" + RecordingConfiguration.segmentSuffix
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(throws: RecordingReadError.self) { try SegmentReader(path: empty).readAll() }
    }
}
