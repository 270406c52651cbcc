import Foundation
import OCPP
import OCPPSchema
import RelayRecording

/// `ocpp-relay recordings verdicts`: every frame a charger or a backend sent, judged against its version's schema
/// (``FrameJudge``), grouped by who sent it (a charger's vendor, model and firmware from its BootNotification, or
/// the backend) and by action: frames seen, invalid, the most frequent reasons with an example each.
public struct VerdictReport: Sendable {
    public private(set) var tally = VerdictTally()
    public private(set) var problems: [String] = []

    /// One connection being read: its judge, and what its frames said until its group is known.
    private struct Connection {
        var charger: String
        var upstream: String
        var judge: ConversationJudge
        /// Frames judged, by side and action; the invalid ones with their reasons and an example.
        var judged: [Key: Int] = [:]
        var invalid: [(key: Key, verdict: FrameVerdict, example: VerdictTally.Example)] = []
    }

    private struct Key: Hashable {
        var side: ConversationJudge.Side
        var action: String
    }

    private var open: [String: Connection] = [:]
    /// The last boot seen of each charger: its connections without a boot of their own are grouped by it.
    private var boots: [String: ConversationJudge.Boot] = [:]

    public init() {}

    /// Reads the recordings at `paths` (folders or segment files, several relays' merged by time).
    public mutating func read(paths: [String]) throws {
        let catalog = try RecordingCatalog(paths: paths)
        for segment in catalog.segments {
            var runID = "?"
            do {
                let outcome = try SegmentReader(path: segment).forEach { record in
                    if case .segmentHeader(let header) = record { runID = header.runID }
                    take(record, runID: runID)
                }
                if let damage = outcome.damage {
                    problems.append("\(segment): stopped at a damaged record (\(damage))")
                }
            } catch {
                problems.append("\(segment): \(error)")
            }
        }
        for key in open.keys.sorted() { finish(key) }
    }

    private mutating func take(_ record: Record, runID: String) {
        switch record {
        case .open(let o):
            let key = "\(runID)/\(o.connection)"
            // A connection resumed in a later segment keeps its judge.
            guard open[key] == nil,
                let judge = ConversationJudge(
                    chargerSubprotocol: o.subprotocol,
                    upstreamSubprotocol: o.upstreamSubprotocol
                )
            else { return }
            open[key] = Connection(charger: o.charger, upstream: o.upstreamBase ?? "?", judge: judge)
        case .frame(let frame):
            let key = "\(runID)/\(frame.connection)"
            guard frame.isText, frame.leg != .mirror, var c = open[key] else { return }
            let leg: ConversationJudge.Leg = frame.leg == .charger ? .charger : .upstream
            if let verdict = c.judge.judge(frame.payload, leg: leg, receivedByRelay: frame.direction == .in) {
                let key = Key(side: verdict.side, action: verdict.action)
                c.judged[key, default: 0] += 1
                if verdict.verdict.isInvalid {
                    let example = VerdictTally.Example(
                        charger: c.charger,
                        time: Timestamp.rfc3339(frame.time),
                        text: frame.text
                    )
                    c.invalid.append((key, verdict.verdict, example))
                }
            }
            open[key] = c
        default:
            break
        }
    }

    /// The connection ended (or the recordings did): its frames join their groups.
    private mutating func finish(_ key: String) {
        guard let c = open.removeValue(forKey: key) else { return }
        if let boot = c.judge.boot { boots[c.charger] = boot }
        func group(_ side: ConversationJudge.Side) -> VerdictTally.Group {
            .sender(
                side,
                boot: c.judge.boot ?? boots[c.charger],
                upstream: c.upstream,
                version: side == .backend ? c.judge.upstreamVersion : c.judge.chargerVersion
            )
        }
        for (key, count) in c.judged {
            tally.count(count, of: key.action, in: group(key.side), charger: c.charger)
        }
        for (key, verdict, example) in c.invalid {
            tally.add(invalid: verdict, of: key.action, in: group(key.side), example: example)
        }
    }

    // MARK: Output

    public var frames: Int { tally.frames }
    public var invalid: Int { tally.invalid }

    /// For people: groups with invalid frames first, then actions with invalid frames, reasons with an example.
    public func text(reasons limit: Int = 3) -> String {
        var lines = [
            "\(frames) frames judged, \(invalid) invalid"
                + (frames > 0 ? String(format: " (%.2f %%)", Double(invalid) / Double(frames) * 100) : "")
        ]
        for group in tally.groupsByInvalid {
            let actions = tally.tallies[group] ?? [:]
            let total = actions.values.map(\.frames).reduce(0, +)
            let count = tally.chargers[group]?.count ?? 0
            lines.append("")
            lines.append("\(group.title): \(count) charger(s), \(total) frames, \(tally.invalid(in: group)) invalid")
            for (action, t) in actions.sorted(by: { ($0.value.invalid, $1.key) > ($1.value.invalid, $0.key) }) {
                lines.append(
                    "  \(action.padding(toLength: 36, withPad: " ", startingAt: 0)) \(t.frames) frames, \(t.invalid) invalid"
                )
                for reason in t.topReasons.prefix(limit) {
                    lines.append("    \(reason.count)× \(reason.reason)")
                    lines.append("      e.g. \(reason.example.charger) \(reason.example.time) \(reason.example.text)")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// For programs: one JSON object per group and action.
    public func jsonLines() -> [String] {
        tally.rows().map(\.jsonText)
    }
}
