import Foundation
import Testing

@testable import RelayRecording

/// The write-ahead journal and what a dead process leaves in it, without threads: the tests play the compressor.
@Suite("Write-ahead journal")
struct JournalTests {
    /// Encoded frame records with texts `prefix0`, `prefix1`, … (no magic: the journal's content).
    static func frames(_ prefix: String, count: Int, connection: UInt64 = 1) -> [UInt8] {
        var bytes: [UInt8] = []
        for i in 0..<count {
            Array(#"[2,"\#(prefix)\#(i)","Heartbeat",{}]"#.utf8).withUnsafeBytes {
                RecordFormat.appendFrame(
                    to: &bytes,
                    connection: connection,
                    time: 1_000 + UInt64(i),
                    leg: .charger,
                    direction: .in,
                    opcode: 1,
                    forwardedUnchanged: true,
                    payload: $0
                )
            }
        }
        return bytes
    }

    static func open(_ connection: UInt64 = 1) -> [UInt8] {
        var bytes: [UInt8] = []
        let record = ConnectionOpen(
            connection: connection,
            time: 999,
            charger: "CP-J",
            path: "/ocpp/CP-J",
            offeredSubprotocols: ["ocpp1.6"],
            subprotocol: "ocpp1.6",
            remoteAddress: nil,
            upstreamURL: nil
        )
        RecordFormat.append(.open(record), to: &bytes)
        return bytes
    }

    /// A dead relay's leftovers: a segment with `written` compressed into it, and a journal holding `written` as
    /// consumed and `pending` after it; `dying` says whether the compressor had written `pending` to the segment
    /// without marking it consumed.
    static func leaveBehind(_ dir: TemporaryDirectory, written: [UInt8], pending: [UInt8], dying: Bool) throws {
        let configuration = RecordingConfiguration(directory: dir.path)
        let journal = try Journal.create(
            directory: configuration.journalDirectory,
            runID: "deadbeef",
            loop: 0,
            capacity: 1 << 16
        )
        let segments = SegmentWriter(
            configuration: configuration,
            loop: 0,
            runID: "deadbeef",
            relayVersion: "test",
            clock: .system
        )
        segments.onSegmentStart = { journal.segmentStarted(path: $0, sequence: $1) }
        #expect(written.withUnsafeBytes { journal.append($0) })
        let first = try #require(journal.nextSpan())
        journal.willWrite(upTo: first.start + first.bytes.count)
        try segments.write(first.bytes)
        journal.consumed(upTo: first.next)
        #expect(pending.withUnsafeBytes { journal.append($0) })
        if dying {
            let second = try #require(journal.nextSpan())
            journal.willWrite(upTo: second.start + second.bytes.count)
            try segments.write(second.bytes)
        }
        // The process dies here: the segment is not finished, the journal not emptied (its lock goes with it).
    }

    static func texts(_ dir: TemporaryDirectory) throws -> [String] {
        var texts: [String] = []
        for segment in dir.files(withSuffix: RecordingConfiguration.segmentSuffix) {
            try SegmentReader(path: segment).forEach { record in
                if case .frame(let frame) = record { texts.append(frame.text) }
            }
        }
        return texts
    }

    static func expected(_ prefix: String, _ count: Int) -> [String] {
        (0..<count).map { #"[2,"\#(prefix)\#($0)","Heartbeat",{}]"# }
    }

    @Test("a dead writer's journal reads as its segment's continuation; the next start writes it in a segment, once")
    func leftoverIsReadAndRecovered() throws {
        let dir = TemporaryDirectory()
        try Self.leaveBehind(
            dir,
            written: Self.open() + Self.frames("a", count: 5),
            pending: Self.frames("b", count: 3),
            dying: false
        )
        // A reader finds the journaled frames after the segment's own.
        #expect(try Self.texts(dir) == Self.expected("a", 5) + Self.expected("b", 3))
        let configuration = RecordingConfiguration(directory: dir.path)
        let report = JournalLeftover.recover(configuration, relayVersion: "test", clock: .system)
        #expect(report.count == 1)
        // Now a segment of their own holds them (restating the connection), and the journal is gone.
        let segments = dir.files(withSuffix: RecordingConfiguration.segmentSuffix)
        #expect(segments.count == 2)
        #expect(try Self.texts(dir) == Self.expected("a", 5) + Self.expected("b", 3))
        let recovered = try SegmentReader(path: segments[1]).readAll()
        #expect(recovered.outcome.complete)
        let opens = recovered.records.compactMap { if case .open(let o) = $0 { o } else { nil } }
        #expect(opens.map(\.charger) == ["CP-J"] && opens.allSatisfy(\.resumed))
        let journals = (try? FileManager.default.contentsOfDirectory(atPath: configuration.journalDirectory)) ?? []
        #expect(journals.isEmpty)
    }

    @Test("a span compressed just before the process died is not recovered twice")
    func dyingSpanIsNotDoubled() throws {
        let dir = TemporaryDirectory()
        try Self.leaveBehind(
            dir,
            written: Self.open() + Self.frames("a", count: 4),
            pending: Self.frames("b", count: 2),
            dying: true
        )
        #expect(try Self.texts(dir) == Self.expected("a", 4) + Self.expected("b", 2))
        _ = JournalLeftover.recover(RecordingConfiguration(directory: dir.path), relayVersion: "test", clock: .system)
        #expect(dir.files(withSuffix: RecordingConfiguration.segmentSuffix).count == 1)
        #expect(try Self.texts(dir) == Self.expected("a", 4) + Self.expected("b", 2))
    }

    @Test("the ring refuses what does not fit, and a batch that would cross its end starts the next lap")
    func ringWraps() throws {
        let dir = TemporaryDirectory()
        let journal = try Journal.create(directory: dir.path, runID: "ring", loop: 0, capacity: 4096)
        let batch = Self.frames("r", count: 20)  // about 900 bytes
        var appended = 0
        while batch.withUnsafeBytes({ journal.append($0) }) { appended += 1 }
        #expect(appended == 4096 / batch.count)
        // Consume everything, then keep appending past the ring's end: every batch reads back whole, in order.
        var read: [[UInt8]] = []
        for round in 0..<12 {
            while let span = journal.nextSpan() {
                if span.bytes.count > 0 { read.append(Array(span.bytes)) }
                journal.consumed(upTo: span.next)
            }
            if round < 11 { #expect(batch.withUnsafeBytes { journal.append($0) }) }
        }
        let whole = read.reduce([], +)
        #expect(whole == Array(repeating: batch, count: appended + 11).reduce([], +))
        journal.remove()
    }
}
