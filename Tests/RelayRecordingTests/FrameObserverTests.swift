import Foundation
import RelayRecording
import Testing

/// Marks the frames whose text contains "bad", as the relay's verdicts mark invalid frames.
private final class MarkingObserver: FrameObserver {
    var opened: [UInt64] = []
    var seen: [(Leg, Direction, String)] = []
    var ended: [UInt64] = []
    var batches = 0

    func opened(_ open: ConnectionOpen) { opened.append(open.connection) }

    func frame(
        connection: UInt64,
        time: UInt64,
        leg: Leg,
        direction: Direction,
        text: UnsafeRawBufferPointer
    )
        -> Record?
    {
        let string = String(decoding: text, as: UTF8.self)
        seen.append((leg, direction, string))
        guard string.contains("bad") else { return nil }
        return .verdict(
            FrameVerdictRecord(
                connection: connection,
                time: time,
                leg: leg,
                direction: direction,
                action: "Test",
                reasons: ["\(string) is bad"]
            )
        )
    }

    func ended(_ connection: UInt64) { ended.append(connection) }
    func publish(now: UInt64) { batches += 1 }
}

@Suite("Frame observer")
struct FrameObserverTests {
    @Test(
        "the observer sees every text frame where the segments are written, and its record follows the frame",
        arguments: [0, 2 << 20]
    )
    func recordsFollowTheirFrames(journalBytes: Int) throws {
        let dir = TemporaryDirectory()
        let observer = MarkingObserver()
        let writer = RecordingWriter(
            configuration: RecordingConfiguration(directory: dir.path, journalBytes: journalBytes),
            loop: 0,
            runID: "run1",
            relayVersion: "test",
            observer: observer
        )
        writer.open(
            ConnectionOpen(
                connection: 3,
                time: 1,
                charger: "CP-1",
                path: "/CP-1",
                offeredSubprotocols: ["ocpp1.6"],
                subprotocol: "ocpp1.6",
                remoteAddress: nil,
                upstreamURL: nil
            )
        )
        let texts = ["good 1", "bad 2", "good 3", "bad 4"]
        for (n, text) in texts.enumerated() {
            Array(text.utf8).withUnsafeBytes {
                writer.frame(
                    connection: 3,
                    leg: n % 2 == 0 ? .charger : .upstream,
                    direction: .in,
                    opcode: 1,
                    forwardedUnchanged: false,
                    payload: $0,
                    time: UInt64(100 + n)
                )
            }
            // The last two in one batch: a record is added within a batch as well as at its end.
            if n < 2 { try writer.flush() }
        }
        try writer.flush()
        writer.endConnection(3)
        writer.finish()

        #expect(observer.opened == [3] && observer.ended == [3])
        #expect(observer.seen.map(\.2) == texts)
        #expect(observer.seen.map(\.0) == [.charger, .upstream, .charger, .upstream])
        #expect(observer.batches >= 1)  // the journal's thread may take the flushes as one batch
        let segments = dir.files(withSuffix: RecordingConfiguration.segmentSuffix)
        let (records, outcome) = try SegmentReader(path: segments[0]).readAll()
        #expect(outcome.complete && outcome.damage == nil)
        let sequence = records.compactMap { record -> String? in
            switch record {
            case .frame(let f): f.text
            case .verdict(let v): "verdict \(v.time) \(v.leg) \(v.reasons[0])"
            default: nil
            }
        }
        #expect(
            sequence == [
                "good 1", "bad 2", "verdict 101 upstream bad 2 is bad", "good 3", "bad 4",
                "verdict 103 upstream bad 4 is bad",
            ]
        )
    }
}
