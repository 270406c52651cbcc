import OCPP

/// One difference between what a live peer sent and what the recording says it sent.
public struct Mismatch: Sendable, Hashable, CustomStringConvertible {
    /// The action concerned (`StartTransaction`, `StartTransaction.result` for its answer).
    public var action: String
    /// Where in the payload (`idTagInfo.status`), or empty for the message as a whole.
    public var path: String
    public var expected: String
    public var got: String

    public var description: String {
        "\(action)\(path.isEmpty ? "" : " \(path)"): expected \(expected), got \(got)"
    }
}

/// Which payload values a comparison ignores (volatile ones) and which it binds (values the live peer chooses).
public struct ComparisonRules: Sendable, Hashable {
    /// Per action (or `*` for all): member names ignored anywhere (`timestamp`), or dotted paths from the
    /// payload root with `[*]` for array elements (`meterValue[*].sampledValue[*].value`).
    public var ignore: [String: [String]]
    /// Member names whose values the live peer may choose; the first differing value is learned and
    /// substituted in later frames instead of being reported.
    public var bind: Set<String>

    public static let defaults = ComparisonRules(
        ignore: ["*": ["currentTime", "timestamp", "generatedAt"]],
        bind: ["transactionId", "reservationId", "requestId", "remoteStartId", "chargingProfileId"]
    )

    public init(ignore: [String: [String]], bind: Set<String>) {
        self.ignore = ignore
        self.bind = bind
    }

    /// These rules with more ignores added.
    public func adding(ignore more: [String: [String]]) -> ComparisonRules {
        var copy = self
        for (action, paths) in more { copy.ignore[action, default: []] += paths }
        return copy
    }

    func ignores(action: String, path: [String]) -> Bool {
        let base = action.split(separator: ".").first.map(String.init) ?? action
        let rules = (ignore["*"] ?? []) + (ignore[base] ?? []) + (ignore[action] ?? [])
        let joined = path.joined(separator: ".")
        for rule in rules {
            if !rule.contains("."), !rule.contains("["), path.last == rule { return true }
            if rule == joined { return true }
        }
        return false
    }
}

/// Recorded ↔ live values of bound members.
public struct Bindings: Sendable, Hashable {
    /// Keyed by the field's name and the recorded value's JSON text: a bound value belongs to its field, so a
    /// reservationId and a transactionId that were both 1 in the recording bind to their own live values.
    public private(set) var values: [String: JSONValue] = [:]

    public init() {}

    mutating func learn(field: String, recorded: JSONValue, live: JSONValue) {
        values[Self.key(field, recorded)] = live
    }

    func live(field: String, for recorded: JSONValue) -> JSONValue? {
        values[Self.key(field, recorded)]
    }

    private static func key(_ field: String, _ recorded: JSONValue) -> String { field + "=" + recorded.jsonText }

    /// `payload` with bound members' recorded values replaced by the live ones.
    func substitute(_ payload: JSONValue, keys: Set<String>) -> JSONValue {
        switch payload {
        case .object(let members):
            return .object(
                members.map { member in
                    if keys.contains(member.key), let live = live(field: member.key, for: member.value) {
                        return (key: member.key, value: live)
                    }
                    return (key: member.key, value: substitute(member.value, keys: keys))
                }
            )
        case .array(let elements):
            return .array(elements.map { substitute($0, keys: keys) })
        default:
            return payload
        }
    }
}

extension JSONValue {
    /// Every RFC 3339 date-time string moved by `offset` microseconds.
    func rebasingTimestamps(by offset: Int64) -> JSONValue {
        switch self {
        case .string(let text):
            guard let (micros, digits) = RFC3339.parse(text) else { return self }
            return .string(RFC3339.format(micros + offset, fractionDigits: digits))
        case .object(let members):
            return .object(members.map { (key: $0.key, value: $0.value.rebasingTimestamps(by: offset)) })
        case .array(let elements):
            return .array(elements.map { $0.rebasingTimestamps(by: offset) })
        default:
            return self
        }
    }
}

/// Compares a live payload with the recorded one under the rules, learning bindings. The relay's mirrors compare
/// a mirror's answer (live) with the primary's (recorded) the same way.
public struct Comparator: Sendable {
    public var rules: ComparisonRules
    public var bindings: Bindings

    public init(rules: ComparisonRules, bindings: Bindings = Bindings()) {
        self.rules = rules
        self.bindings = bindings
    }

    public mutating func compare(action: String, expected: JSONValue, got: JSONValue) -> [Mismatch] {
        var out: [Mismatch] = []
        walk(action, [], expected, got, &out)
        return out
    }

    private mutating func walk(
        _ action: String,
        _ path: [String],
        _ expected: JSONValue,
        _ got: JSONValue,
        _ out: inout [Mismatch]
    ) {
        if rules.ignores(action: action, path: path) { return }
        switch (expected, got) {
        case (.object(let e), .object(let g)):
            let gotKeys = Dictionary(g.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let expectedKeys = Dictionary(e.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            for member in e {
                let childPath = path + [member.key]
                guard let live = gotKeys[member.key] else {
                    if !rules.ignores(action: action, path: childPath) {
                        out.append(
                            Mismatch(
                                action: action,
                                path: childPath.joined(separator: "."),
                                expected: member.value.jsonText,
                                got: "(absent)"
                            )
                        )
                    }
                    continue
                }
                walk(action, childPath, member.value, live, &out)
            }
            for member in g where expectedKeys[member.key] == nil {
                let childPath = path + [member.key]
                if !rules.ignores(action: action, path: childPath) {
                    out.append(
                        Mismatch(
                            action: action,
                            path: childPath.joined(separator: "."),
                            expected: "(absent)",
                            got: member.value.jsonText
                        )
                    )
                }
            }
        case (.array(let e), .array(let g)):
            if e.count != g.count {
                out.append(
                    Mismatch(
                        action: action,
                        path: path.joined(separator: "."),
                        expected: "\(e.count) elements",
                        got: "\(g.count) elements"
                    )
                )
            }
            for (index, pair) in zip(e, g).enumerated() {
                walkElement(action, path, index, pair.0, pair.1, &out)
            }
        default:
            if Self.same(expected, got) { return }
            if let key = path.last?.split(separator: "[").first.map(String.init), rules.bind.contains(key) {
                if let bound = bindings.live(field: key, for: expected) {
                    if Self.same(bound, got) { return }
                } else {
                    bindings.learn(field: key, recorded: expected, live: got)
                    return
                }
            }
            out.append(
                Mismatch(
                    action: action,
                    path: path.joined(separator: "."),
                    expected: expected.jsonText,
                    got: got.jsonText
                )
            )
        }
    }

    private mutating func walkElement(
        _ action: String,
        _ path: [String],
        _ index: Int,
        _ expected: JSONValue,
        _ got: JSONValue,
        _ out: inout [Mismatch]
    ) {
        // Array elements take the array's name with [*] for ignore rules and [i] for reports.
        var rulePath = path
        if let last = rulePath.popLast() { rulePath.append("\(last)[*]") }
        if rules.ignores(action: action, path: rulePath) { return }
        var reports: [Mismatch] = []
        walk(action, rulePath, expected, got, &reports)
        let shown = path.joined(separator: ".") + "[\(index)]"
        let ruleText = rulePath.joined(separator: ".")
        out += reports.map { m in
            var m = m
            if m.path.hasPrefix(ruleText) { m.path = shown + m.path.dropFirst(ruleText.count) }
            return m
        }
    }

    /// Equal, numbers compared by value (`10` and `10.0`).
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if case .number(let x) = a, case .number(let y) = b, let dx = Double(x), let dy = Double(y) { return dx == dy }
        return a == b
    }
}
