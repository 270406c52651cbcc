import Foundation
import RelayRecording
import Testing

/// A temporary folder removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "ocpp-relay-tests-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    func files(withSuffix suffix: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { $0.hasSuffix(suffix) }.sorted().map { path + "/" + $0 }
    }
}

/// Writes a small, realistic session through a writer and returns what went in.
func writeSession(
    _ writer: RecordingWriter,
    connection: UInt64,
    charger: String,
    frames: Int,
    flushEvery: Int = 1
) throws -> [String] {
    writer.open(
        ConnectionOpen(
            connection: connection,
            time: Timestamp.now(),
            charger: charger,
            path: "/ocpp/\(charger)",
            offeredSubprotocols: ["ocpp1.6"],
            subprotocol: "ocpp1.6",
            remoteAddress: "127.0.0.1:5000",
            upstreamURL: "ws://127.0.0.1:9000/\(charger)"
        )
    )
    var texts: [String] = []
    for i in 0..<frames {
        let text =
            i % 2 == 0
            ? #"[2,"\#(i)","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2026-11-27T06:00:00Z","sampledValue":[{"value":"\#(i * 17)"}]}]}]"#
            : #"[3,"\#(i - 1)",{}]"#
        texts.append(text)
        Array(text.utf8).withUnsafeBytes {
            writer.frame(
                connection: connection,
                leg: i % 2 == 0 ? .charger : .upstream,
                direction: .in,
                opcode: 1,
                forwardedUnchanged: true,
                payload: $0
            )
        }
        if (i + 1) % flushEvery == 0 { try writer.flush() }
    }
    return texts
}

@Suite("Recording round trip")
struct RecordingRoundTripTests {
    @Test("frames and events read back exactly, and the file is plain gzip")
    func roundTrip() throws {
        let dir = TemporaryDirectory()
        let writer = RecordingWriter(
            configuration: RecordingConfiguration(directory: dir.path),
            loop: 0,
            runID: "run1",
            relayVersion: "test"
        )
        let texts = try writeSession(writer, connection: 7, charger: "CP-1", frames: 20)
        writer.close(
            ConnectionClose(
                connection: 7,
                time: Timestamp.now(),
                leg: .charger,
                initiator: "charger",
                code: 1000,
                reason: "bye"
            ),
            final: true
        )
        writer.finish()

        let segments = dir.files(withSuffix: RecordingConfiguration.segmentSuffix)
        #expect(segments.count == 1)
        let (records, outcome) = try SegmentReader(path: segments[0]).readAll()
        #expect(outcome.complete)
        #expect(outcome.damage == nil)
        guard case .segmentHeader(let header) = records.first else {
            Issue.record("the first record must be the segment header")
            return
        }
        #expect(header.runID == "run1")
        let frames = records.compactMap { record -> FrameRecord? in
            if case .frame(let f) = record { return f }
            return nil
        }
        #expect(frames.map(\.text) == texts)
        #expect(frames.allSatisfy { $0.connection == 7 && $0.forwardedUnchanged })
        #expect(records.contains { if case .close(let c) = $0 { c.code == 1000 && c.reason == "bye" } else { false } })

        // Standard tools read it: gzip -dc yields the magic followed by the records.
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/sh")
        gunzip.arguments = ["-c", "gzip -dc '\(segments[0])' | head -c 8"]
        let pipe = Pipe()
        gunzip.standardOutput = pipe
        try gunzip.run()
        gunzip.waitUntilExit()
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "OCPPREC\u{01}")
    }

    @Test("the index lists the connection with its frames and bytes")
    func index() throws {
        let dir = TemporaryDirectory()
        let writer = RecordingWriter(
            configuration: RecordingConfiguration(directory: dir.path),
            loop: 0,
            runID: "run2",
            relayVersion: "test"
        )
        _ = try writeSession(writer, connection: 1, charger: "A", frames: 10)
        _ = try writeSession(writer, connection: 2, charger: "B", frames: 4)
        writer.close(
            ConnectionClose(
                connection: 1,
                time: Timestamp.now(),
                leg: .charger,
                initiator: "charger",
                code: 1000,
                reason: ""
            ),
            final: true
        )
        writer.finish()
        let connections = try RecordingCatalog(path: dir.path).connections()
        #expect(connections.map(\.charger) == ["A", "B"])
        #expect(connections.map(\.frames) == [20, 8])  // forwarded unchanged: in and out
        #expect(connections[0].end != nil)
        #expect(connections[1].end == nil)  // still open when the relay stopped
        let fileSize = try FileManager.default.attributesOfItem(atPath: connections[0].segments[0])[.size] as! Int
        let attributed = connections.map(\.diskBytes).reduce(0, +)
        #expect(attributed > 0 && attributed <= fileSize)
    }

    @Test("segments roll over by size; each restates the open connections and reads alone")
    func rollOver() throws {
        let dir = TemporaryDirectory()
        let writer = RecordingWriter(
            configuration: RecordingConfiguration(directory: dir.path, rollBytes: 2_000, journalBytes: 0),
            loop: 0,
            runID: "run3",
            relayVersion: "test"
        )
        let texts = try writeSession(writer, connection: 3, charger: "CP-roll", frames: 400)
        writer.finish()
        let segments = dir.files(withSuffix: RecordingConfiguration.segmentSuffix)
        #expect(segments.count > 3)
        var all: [String] = []
        for segment in segments {
            let (records, outcome) = try SegmentReader(path: segment).readAll()
            #expect(outcome.complete)
            guard records.count > 1, case .open(let open) = records[1] else {
                Issue.record("\(segment) does not restate the open connection")
                continue
            }
            #expect(open.charger == "CP-roll")
            all += records.compactMap { if case .frame(let f) = $0 { f.text } else { nil } }
        }
        #expect(all == texts)
        let summary = try RecordingCatalog(path: dir.path).connections()
        #expect(summary.count == 1)
        #expect(summary.first?.frames == 800)
        #expect(summary.first?.segments.count == segments.count)
    }

    @Test("retention deletes old segments and their indexes, never the current one")
    func retention() throws {
        let dir = TemporaryDirectory()
        let old = dir.path + "/ocpp-20200101T000000Z-old-l0-1" + RecordingConfiguration.segmentSuffix
        let oldIndex = dir.path + "/ocpp-20200101T000000Z-old-l0-1" + RecordingConfiguration.indexSuffix
        _ = FileManager.default.createFile(atPath: old, contents: Data([1]))
        _ = FileManager.default.createFile(atPath: oldIndex, contents: Data([1]))
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: 1_600_000_000)],
            ofItemAtPath: old
        )
        let writer = RecordingWriter(
            configuration: RecordingConfiguration(directory: dir.path, retention: .seconds(86_400), journalBytes: 0),
            loop: 0,
            runID: "r",
            relayVersion: "test"
        )
        _ = try writeSession(writer, connection: 1, charger: "A", frames: 2)
        try writer.flush()
        let current = try #require(writer.currentSegmentPath)
        // The current segment is kept however old it looks (a quiet loop's segment is not written for hours).
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: 1_600_000_000)],
            ofItemAtPath: current
        )
        #expect(Retention.prune(directory: dir.path, olderThan: .seconds(86_400), keeping: [current]) == [old])
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(!FileManager.default.fileExists(atPath: oldIndex))
        #expect(dir.files(withSuffix: RecordingConfiguration.segmentSuffix).count == 1)
        writer.finish()
    }
}
