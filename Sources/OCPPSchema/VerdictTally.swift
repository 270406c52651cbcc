import OCPP

/// Verdicts counted by who sent the frames (a charger's vendor, model and firmware, or a backend) and by action:
/// frames judged, invalid, and the most frequent reasons with an example each. What `recordings verdicts` prints and
/// the console shows live. Its memory is bounded by the groups and actions seen, and at most ``reasonsKept`` reasons
/// per action.
public struct VerdictTally: Sendable {
    /// Who sent the frames of a group.
    public struct Group: Sendable, Hashable, Comparable {
        public var side: ConversationJudge.Side
        public var vendor: String
        public var model: String
        public var firmware: String
        /// The OCPP version's short name.
        public var version: String

        public static func charger(_ boot: ConversationJudge.Boot, version: OCPPVersion) -> Group {
            Group(
                side: .charger,
                vendor: boot.vendor,
                model: boot.model,
                firmware: boot.firmware,
                version: version.shortName
            )
        }

        /// A backend, named by its URL without the charger's identity.
        public static func backend(_ url: String, version: OCPPVersion) -> Group {
            Group(side: .backend, vendor: url, model: "", firmware: "", version: version.shortName)
        }

        /// Who sent frames of `side` on a connection: the charger, by its boot (`unknown` until one is known), or its
        /// backend, by `upstream`; each in the version of its leg.
        public static func sender(
            _ side: ConversationJudge.Side,
            boot: ConversationJudge.Boot?,
            upstream: String,
            version: OCPPVersion
        ) -> Group {
            side == .backend ? .backend(upstream, version: version) : .charger(boot ?? .unknown, version: version)
        }

        public static func < (a: Group, b: Group) -> Bool {
            (a.side.rawValue, a.vendor, a.model, a.firmware, a.version)
                < (b.side.rawValue, b.vendor, b.model, b.firmware, b.version)
        }

        public var title: String {
            side == .backend
                ? "backend \(vendor) (OCPP \(version))"
                : "charger \(vendor) / \(model) / \(firmware) (OCPP \(version))"
        }
    }

    /// One frame that shows a reason.
    public struct Example: Sendable, Hashable {
        public var charger: String
        /// RFC 3339.
        public var time: String
        /// The frame's text, cut to ``textKept`` characters.
        public var text: String

        public static let textKept = 300

        public init(charger: String, time: String, text: String) {
            self.charger = charger
            self.time = time
            self.text = text.count > Self.textKept ? String(text.prefix(Self.textKept)) + "…" : text
        }
    }

    public struct Reason: Sendable, Hashable {
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

    /// At most this many distinct reasons are kept per action (a peer inventing property names must not grow the
    /// tally); later ones count as ``otherReasons``.
    public static let reasonsKept = 100
    public static let otherReasons = "(other reasons)"

    public private(set) var tallies: [Group: [String: Tally]] = [:]
    public private(set) var chargers: [Group: Set<String>] = [:]

    public init() {}

    /// Counts `frames` judged frames of `action` that `charger`'s connection carried.
    public mutating func count(_ frames: Int, of action: String, in group: Group, charger: String) {
        if chargers[group]?.contains(charger) != true { chargers[group, default: []].insert(charger) }
        tallies[group, default: [:]][action, default: Tally()].frames += frames
    }

    /// Adds an invalid frame (already counted among the frames) with its reasons.
    public mutating func add(invalid verdict: FrameVerdict, of action: String, in group: Group, example: Example) {
        var tally = tallies[group]?[action] ?? Tally()
        tally.invalid += 1
        for (reason, kind) in zip(verdict.reasons, verdict.reasonKinds) {
            let key = tally.reasons[kind] != nil || tally.reasons.count < Self.reasonsKept ? kind : Self.otherReasons
            tally.reasons[key, default: Reason(reason: reason, count: 0, example: example)].count += 1
        }
        tallies[group, default: [:]][action] = tally
    }

    public var frames: Int { tallies.values.flatMap(\.values).map(\.frames).reduce(0, +) }
    public var invalid: Int { tallies.values.flatMap(\.values).map(\.invalid).reduce(0, +) }

    public func invalid(in group: Group) -> Int {
        (tallies[group] ?? [:]).values.map(\.invalid).reduce(0, +)
    }

    /// The groups, those with the most invalid frames first.
    public var groupsByInvalid: [Group] {
        tallies.keys.sorted { a, b in
            let (ia, ib) = (invalid(in: a), invalid(in: b))
            return ia != ib ? ia > ib : a < b
        }
    }

    /// One JSON object per group and action (what `--format jsonl` prints and the console reads), with at most
    /// `reasons` reasons each; without `exampleTexts`, an example names its charger and time only.
    public func rows(reasons limit: Int = .max, exampleTexts: Bool = true) -> [JSONValue] {
        var rows: [JSONValue] = []
        for group in tallies.keys.sorted() {
            for (action, tally) in (tallies[group] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let reasons: [JSONValue] = tally.topReasons.prefix(limit).map { reason in
                    .object([
                        ("reason", .string(reason.reason)), ("count", .number("\(reason.count)")),
                        (
                            "example",
                            .object([
                                ("charger", .string(reason.example.charger)), ("time", .string(reason.example.time)),
                                ("text", exampleTexts ? .string(reason.example.text) : .null),
                            ])
                        ),
                    ])
                }
                rows.append(
                    .object([
                        ("side", .string(group.side.rawValue)), ("vendor", .string(group.vendor)),
                        ("model", .string(group.model)), ("firmware", .string(group.firmware)),
                        ("version", .string(group.version)), ("chargers", .number("\(chargers[group]?.count ?? 0)")),
                        ("action", .string(action)), ("frames", .number("\(tally.frames)")),
                        ("invalid", .number("\(tally.invalid)")), ("reasons", .array(reasons)),
                    ])
                )
            }
        }
        return rows
    }
}
