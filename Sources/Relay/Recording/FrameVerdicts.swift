import OCPP
import OCPPSchema
import RelayObservability
import RelayRecording

/// Judges the frames of one event loop's judged connections (`validation.verdicts`) where its recording writes
/// them, off the frames' path: an invalid frame gets a verdict record right after it, and each batch's verdicts go
/// to the metrics and the console's board. Used only by that loop's segment writer.
final class FrameVerdicts: FrameObserver {
    private final class Judged {
        let charger: String
        let upstream: String
        var judge: ConversationJudge
        /// Frames judged since the last batch, by side and action (published with the connection's group then).
        var counts: [Counted: Int] = [:]

        /// What a batch counts of this connection's frames of `counted`.
        func key(_ counted: Counted) -> VerdictBatch.Key {
            VerdictBatch.Key(
                charger: charger,
                boot: judge.boot,
                upstream: upstream,
                side: counted.side,
                version: counted.version,
                action: counted.action
            )
        }

        init(charger: String, upstream: String, judge: ConversationJudge) {
            self.charger = charger
            self.upstream = upstream
            self.judge = judge
        }
    }

    private struct Counted: Hashable {
        var side: ConversationJudge.Side
        var version: OCPPVersion
        var action: String
    }

    private var connections: [UInt64: Judged] = [:]
    /// The connections with frames judged since the last batch.
    private var counted: [Judged] = []
    private var batch = VerdictBatch()
    private let metrics: RelayMetrics
    private let console: ConsoleHub

    init(metrics: RelayMetrics, console: ConsoleHub) {
        self.metrics = metrics
        self.console = console
    }

    func opened(_ open: ConnectionOpen) {
        // A connection restated at a segment's start keeps its judge (and the calls it waits to see answered).
        guard open.judged == true, connections[open.connection] == nil,
            let judge = ConversationJudge(
                chargerSubprotocol: open.subprotocol,
                upstreamSubprotocol: open.upstreamSubprotocol
            )
        else { return }
        connections[open.connection] = Judged(charger: open.charger, upstream: open.upstreamBase ?? "?", judge: judge)
    }

    func frame(
        connection: UInt64,
        time: UInt64,
        leg: Leg,
        direction: Direction,
        text: UnsafeRawBufferPointer
    ) -> Record? {
        guard let judged = connections[connection],
            let verdict = judged.judge.judge(
                text,
                leg: leg == .charger ? .charger : .upstream,
                receivedByRelay: direction == .in
            )
        else { return nil }
        if judged.counts.isEmpty { counted.append(judged) }
        let counted = Counted(side: verdict.side, version: verdict.version, action: verdict.action)
        judged.counts[counted, default: 0] += 1
        guard verdict.verdict.isInvalid else { return nil }
        let record = FrameVerdictRecord(
            connection: connection,
            time: time,
            leg: leg,
            direction: direction,
            action: verdict.action,
            reasons: verdict.verdict.reasons
        )
        batch.invalid.append(
            VerdictBatch.Invalid(
                key: judged.key(counted),
                verdict: verdict.verdict,
                record: record,
                example: VerdictTally.Example(
                    charger: judged.charger,
                    time: Timestamp.rfc3339(time),
                    text: String(decoding: text, as: UTF8.self)
                )
            )
        )
        return .verdict(record)
    }

    func ended(_ connection: UInt64) {
        connections[connection] = nil
    }

    /// How often the frames judged are counted into the metrics and the console's board (an invalid frame is at
    /// once, with what was judged before it): merging every batch's counts cost as much as judging.
    static let publishInterval: UInt64 = 1_000_000
    private var published: UInt64 = 0

    func publish(now: UInt64) {
        guard !counted.isEmpty, !batch.invalid.isEmpty || now >= published + Self.publishInterval else { return }
        published = now
        for judged in counted {
            for (counted, count) in judged.counts { batch.counts[judged.key(counted), default: 0] += count }
            // Its storage goes too: most connections are idle until their next heartbeat.
            judged.counts.removeAll()
        }
        counted.removeAll(keepingCapacity: true)
        var judged: [VerdictBatch.Labels: Int] = [:]
        for (key, count) in batch.counts { judged[key.labels, default: 0] += count }
        for (labels, count) in judged { metrics.framesJudged(count, version: labels.version, leg: labels.leg) }
        var invalid: [VerdictBatch.Labels: Int] = [:]
        for each in batch.invalid { invalid[each.key.labels(action: each.key.action), default: 0] += 1 }
        for (labels, count) in invalid {
            metrics.invalidFrames(count, version: labels.version, leg: labels.leg, action: labels.action)
        }
        console.verdicts(batch)
        batch = VerdictBatch()
    }
}

/// The verdicts of one batch of recorded frames: judged frames counted by charger, group and action, and the invalid
/// ones.
struct VerdictBatch: Sendable {
    struct Key: Hashable, Sendable {
        var charger: String
        /// The connection's BootNotification, when it sent one.
        var boot: ConversationJudge.Boot?
        /// The backend's URL without the charger's identity.
        var upstream: String
        var side: ConversationJudge.Side
        var version: OCPPVersion
        var action: String

        /// The metric's labels: the version, the leg the frames crossed, and the action when it is counted.
        func labels(action: String = "") -> Labels {
            Labels(version: version.shortName, leg: side == .charger ? "charger" : "upstream", action: action)
        }
        var labels: Labels { labels() }
    }

    struct Labels: Hashable {
        var version: String
        var leg: String
        var action: String
    }

    struct Invalid: Sendable {
        var key: Key
        var verdict: FrameVerdict
        var record: FrameVerdictRecord
        var example: VerdictTally.Example
    }

    var counts: [Key: Int] = [:]
    var invalid: [Invalid] = []
}
