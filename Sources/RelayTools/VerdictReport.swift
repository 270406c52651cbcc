import Foundation
import OCPP
import OCPPSchema
import RelayRecording

/// `ocpp-relay recordings verdicts`: every frame a charger or a backend sent, judged against its version's schema
/// (``FrameJudge``), grouped by who sent it (a charger's vendor, model and firmware from its BootNotification, or
/// the backend) and by action: frames seen, invalid, the most frequent reasons with an example each.
public struct VerdictReport: Sendable {
    /// Who sent the frames of a group.
    public struct Group: Sendable, Hashable, Comparable {
        /// `charger` or `backend`.
        public var side: String
        public var vendor: String
        public var model: String
        public var firmware: String
        public var version: String

        public static func < (a: Group, b: Group) -> Bool {
            (a.side, a.vendor, a.model, a.firmware, a.version) < (b.side, b.vendor, b.model, b.firmware, b.version)
        }

        var title: String {
            side == "backend"
                ? "backend \(vendor) (OCPP \(version))"
                : "charger \(vendor) / \(model) / \(firmware) (OCPP \(version))"
        }
    }

    /// One frame that shows a reason.
    public struct Example: Sendable, Hashable, Codable {
        public var charger: String
        public var time: String
        public var text: String
    }

    public struct Reason: Sendable, Hashable, Codable {
        public var reason: String
        public var count: Int
        public var example: Example
    }

    /// The frames of one action in one group.
    public struct Tally: Sendable, Hashable {
        public var frames = 0
        public var invalid = 0
        var reasons: [String: Reason] = [:]

        /// The reasons, the most frequent first.
        public var topReasons: [Reason] {
            reasons.values.sorted { ($0.count, $1.reason) > ($1.count, $0.reason) }
        }
    }

    public private(set) var tallies: [Group: [String: Tally]] = [:]
    public private(set) var chargers: [Group: Set<String>] = [:]
    public private(set) var problems: [String] = []

    /// One connection being read: its judges (the charger's conversation, and the backend's when it is translated)
    /// and what its frames said, until its group is known.
    private struct Connection {
        var charger: String
        var version: OCPPVersion?
        var upstreamVersion: OCPPVersion?
        var upstream: String
        var chargerJudge: FrameJudge?
        var upstreamJudge: FrameJudge?
        var boot: (vendor: String, model: String, firmware: String)?
        /// Frames judged, by side and action; the invalid ones with their reasons and an example.
        var judged: [Key: Int] = [:]
        var invalid: [(key: Key, verdict: FrameVerdict, example: Example)] = []
    }

    private struct Key: Hashable {
        var side: String
        var action: String
    }

    private var open: [String: Connection] = [:]
    /// The last boot seen of each charger: its connections without a boot of their own are grouped by it.
    private var boots: [String: (vendor: String, model: String, firmware: String)] = [:]

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
            guard open[key] == nil else { return }  // resumed in a later segment: the judges go on
            let version = o.subprotocol.flatMap(OCPPVersion.init(rawValue:))
            let upstreamVersion = o.upstreamSubprotocol.flatMap(OCPPVersion.init(rawValue:)) ?? version
            var upstream = o.upstreamURL ?? "?"
            if upstream.hasSuffix("/\(o.charger)") { upstream.removeLast(o.charger.count + 1) }
            open[key] = Connection(
                charger: o.charger,
                version: version,
                upstreamVersion: upstreamVersion,
                upstream: upstream,
                chargerJudge: version.map(FrameJudge.init(version:)),
                upstreamJudge: upstreamVersion != version ? upstreamVersion.map(FrameJudge.init(version:)) : nil
            )
        case .frame(let frame):
            let key = "\(runID)/\(frame.connection)"
            guard frame.isText, frame.leg != .mirror, var connection = open[key] else { return }
            judge(frame, in: &connection)
            open[key] = connection
        default:
            break
        }
    }

    /// Judges a frame on the conversation it belongs to; keeps the verdicts of frames a peer sent (the relay's own
    /// only teach the judges which call an answer answers).
    private func judge(_ frame: FrameRecord, in c: inout Connection) {
        let translated = c.upstreamJudge != nil
        switch (frame.leg, frame.direction) {
        case (.charger, .in):
            guard var judge = c.chargerJudge else { return }
            let judged = judge.judge(frame.payload, from: .charger)
            c.chargerJudge = judge
            if judged.messageType == 2, judged.action == "BootNotification",
                case .call(let call)? = try? RPCFrame.parse(frame.payload)
            {
                c.boot = Self.boot(call.payload)
            }
            keep(judged, side: "charger", frame, in: &c)
        case (.upstream, .in):
            if translated, var judge = c.upstreamJudge {
                let judged = judge.judge(frame.payload, from: .server)
                c.upstreamJudge = judge
                keep(judged, side: "backend", frame, in: &c)
            } else if var judge = c.chargerJudge {
                let judged = judge.judge(frame.payload, from: .server)
                c.chargerJudge = judge
                keep(judged, side: "backend", frame, in: &c)
            }
        case (.charger, .out):
            _ = c.chargerJudge?.judge(frame.payload, from: .server)
        case (.upstream, .out):
            if translated { _ = c.upstreamJudge?.judge(frame.payload, from: .charger) }
        default:
            break
        }
    }

    private func keep(_ judged: FrameJudge.Judged, side: String, _ frame: FrameRecord, in c: inout Connection) {
        if case .unjudged = judged.verdict { return }
        let action =
            judged.messageType == 0
            ? "(not OCPP)"
            : "\(judged.action ?? "?")\(judged.messageType == 3 ? ".result" : judged.messageType >= 4 ? ".error" : "")"
        let key = Key(side: side, action: action)
        c.judged[key, default: 0] += 1
        if judged.verdict.isInvalid {
            let text = frame.text
            c.invalid.append(
                (
                    key, judged.verdict,
                    Example(
                        charger: c.charger,
                        time: Timestamp.rfc3339(frame.time),
                        text: text.count > 300 ? String(text.prefix(300)) + "…" : text
                    )
                )
            )
        }
    }

    /// The connection ended (or the recordings did): its frames join their groups.
    private mutating func finish(_ key: String) {
        guard let c = open.removeValue(forKey: key) else { return }
        if let boot = c.boot { boots[c.charger] = boot }
        let boot = c.boot ?? boots[c.charger] ?? ("unknown", "unknown", "unknown")
        func group(_ side: String) -> Group {
            side == "backend"
                ? Group(
                    side: side,
                    vendor: c.upstream,
                    model: "",
                    firmware: "",
                    version: c.upstreamVersion?.shortName ?? "?"
                )
                : Group(
                    side: side,
                    vendor: boot.vendor,
                    model: boot.model,
                    firmware: boot.firmware,
                    version: c.version?.shortName ?? "?"
                )
        }
        for (key, count) in c.judged {
            let group = group(key.side)
            chargers[group, default: []].insert(c.charger)
            tallies[group, default: [:]][key.action, default: Tally()].frames += count
        }
        for (key, verdict, example) in c.invalid {
            var tally = tallies[group(key.side)]?[key.action] ?? Tally()
            tally.invalid += 1
            for (reason, kind) in zip(verdict.reasons, verdict.reasonKinds) {
                tally.reasons[kind, default: Reason(reason: reason, count: 0, example: example)].count += 1
            }
            tallies[group(key.side), default: [:]][key.action] = tally
        }
    }

    /// A BootNotification's vendor, model and firmware (1.6 and 2.x spell them differently).
    static func boot(_ payload: JSONValue) -> (vendor: String, model: String, firmware: String) {
        let station = payload["chargingStation"]
        return (
            payload["chargePointVendor"]?.stringValue ?? station?["vendorName"]?.stringValue ?? "unknown",
            payload["chargePointModel"]?.stringValue ?? station?["model"]?.stringValue ?? "unknown",
            payload["firmwareVersion"]?.stringValue ?? station?["firmwareVersion"]?.stringValue ?? "unknown"
        )
    }

    // MARK: Output

    public var frames: Int { tallies.values.flatMap(\.values).map(\.frames).reduce(0, +) }
    public var invalid: Int { tallies.values.flatMap(\.values).map(\.invalid).reduce(0, +) }

    /// For people: groups with invalid frames first, then actions with invalid frames, reasons with an example.
    public func text(reasons limit: Int = 3) -> String {
        var lines = [
            "\(frames) frames judged, \(invalid) invalid"
                + (frames > 0 ? String(format: " (%.2f %%)", Double(invalid) / Double(frames) * 100) : "")
        ]
        let groups = tallies.keys.sorted { a, b in
            let (ia, ib) = (invalid(in: a), invalid(in: b))
            return ia != ib ? ia > ib : a < b
        }
        for group in groups {
            let actions = tallies[group] ?? [:]
            let total = actions.values.map(\.frames).reduce(0, +)
            let count = chargers[group]?.count ?? 0
            lines.append("")
            lines.append(
                "\(group.title): \(count) charger(s), \(total) frames, \(invalid(in: group)) invalid"
            )
            for (action, tally) in actions.sorted(by: { ($0.value.invalid, $1.key) > ($1.value.invalid, $0.key) }) {
                lines.append(
                    "  \(action.padding(toLength: 36, withPad: " ", startingAt: 0)) \(tally.frames) frames, \(tally.invalid) invalid"
                )
                for reason in tally.topReasons.prefix(limit) {
                    lines.append("    \(reason.count)× \(reason.reason)")
                    lines.append("      e.g. \(reason.example.charger) \(reason.example.time) \(reason.example.text)")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    private func invalid(in group: Group) -> Int {
        (tallies[group] ?? [:]).values.map(\.invalid).reduce(0, +)
    }

    /// For programs: one JSON object per group and action.
    public func jsonLines() -> [String] {
        var lines: [String] = []
        for group in tallies.keys.sorted() {
            for (action, tally) in (tallies[group] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let reasons: [JSONValue] = tally.topReasons.map { reason in
                    .object([
                        ("reason", .string(reason.reason)), ("count", .number("\(reason.count)")),
                        (
                            "example",
                            .object([
                                ("charger", .string(reason.example.charger)), ("time", .string(reason.example.time)),
                                ("text", .string(reason.example.text)),
                            ])
                        ),
                    ])
                }
                let line = JSONValue.object([
                    ("side", .string(group.side)), ("vendor", .string(group.vendor)), ("model", .string(group.model)),
                    ("firmware", .string(group.firmware)), ("version", .string(group.version)),
                    ("chargers", .number("\(chargers[group]?.count ?? 0)")), ("action", .string(action)),
                    ("frames", .number("\(tally.frames)")), ("invalid", .number("\(tally.invalid)")),
                    ("reasons", .array(reasons)),
                ])
                lines.append(line.jsonText)
            }
        }
        return lines
    }
}
