import NIOConcurrencyHelpers
import OCPPSchema
import RelayRecording

/// What the relay's verdicts say since it started, for the console: the same grouping as `recordings verdicts`
/// (vendor, model and firmware, then action) and the latest invalid frames.
public struct VerdictBoard: Sendable {
    /// One invalid frame, as the console lists it.
    public struct Latest: Sendable {
        public var charger: String
        public var connection: UInt64
        public var verdict: FrameVerdictRecord
        public var group: VerdictTally.Group
    }

    public private(set) var tally = VerdictTally()
    public private(set) var latest: [Latest] = []
    public static let latestKept = 200
    /// The last BootNotification of each charger: its later connections, which need not boot again, are grouped by
    /// it.
    private var boots: [String: ConversationJudge.Boot] = [:]

    mutating func add(_ batch: VerdictBatch) {
        for key in batch.counts.keys {
            if let boot = key.boot { boots[key.charger] = boot }
        }
        for (key, count) in batch.counts {
            tally.count(count, of: key.action, in: group(key), charger: key.charger)
        }
        for invalid in batch.invalid {
            let group = group(invalid.key)
            tally.add(invalid: invalid.verdict, of: invalid.key.action, in: group, example: invalid.example)
            latest.append(
                Latest(
                    charger: invalid.key.charger,
                    connection: invalid.record.connection,
                    verdict: invalid.record,
                    group: group
                )
            )
        }
        if latest.count > Self.latestKept { latest.removeFirst(latest.count - Self.latestKept) }
    }

    private func group(_ key: VerdictBatch.Key) -> VerdictTally.Group {
        .sender(key.side, boot: key.boot ?? boots[key.charger], upstream: key.upstream, version: key.version)
    }
}

extension ConsoleHub {
    /// A batch of verdicts from a loop's recording: onto the board, and each invalid frame to the watchers of its
    /// charger (which mark the frame).
    func verdicts(_ batch: VerdictBatch) {
        verdictBoard.withLockedValue { $0.add(batch) }
        guard isWatched else { return }
        for invalid in batch.invalid {
            let record = invalid.record
            publish(
                invalid.key.charger,
                ConsoleEvent(
                    kind: .verdict,
                    time: Int64(record.time / 1000),
                    connection: record.connection,
                    leg: record.leg.rawValue,
                    direction: record.direction.rawValue,
                    text: "\(record.action): \(record.reasons.joined(separator: "; "))",
                    recordedAt: record.time
                )
            )
        }
    }

    /// The verdicts so far.
    public var verdictReport: VerdictBoard { verdictBoard.withLockedValue { $0 } }
}
