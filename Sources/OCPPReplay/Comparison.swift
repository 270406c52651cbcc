import OCPP

/// One difference between what a live peer sent and what the recording says it sent.
public struct Mismatch: Sendable, Hashable, CustomStringConvertible {
    /// What kind of difference: reports count them per kind.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A value differs.
        case value
        /// A member the recording has is absent.
        case missing
        /// A member the recording lacks is present.
        case extra
        /// An array has another number of elements.
        case count
        /// A CALL got no answer (within the timeout, or the peer closed first).
        case unanswered
        /// A CALLRESULT where the recording has a CALLERROR, or the other way round, or another error code.
        case answerKind = "answer"
        /// The peer sent a CALL the recording lacks at this point.
        case unexpectedCall = "unexpected-call"
        /// A CALL the peer sent in the recording did not come.
        case missingCall = "missing-call"
        /// The peer closed the connection before the recording's end.
        case closed
        /// Not an OCPP frame, or an answer to no CALL.
        case malformed
        /// A frame of the live peer that breaks its version's schema (a CALL by its action, an answer by the call it
        /// answers), whatever the recording says.
        case invalid
    }

    /// The action concerned (`StartTransaction`, `StartTransaction.result` for its answer).
    public var action: String
    /// Where in the payload (`idTagInfo.status`), or empty for the message as a whole.
    public var path: String
    public var expected: String
    public var got: String
    public var kind: Kind
    /// Whether it fails the replay (the rules' `severity`; `ignore`d differences are not reported at all).
    public var severity: Severity

    public init(
        action: String,
        path: String,
        expected: String,
        got: String,
        kind: Kind = .value,
        severity: Severity = .fail
    ) {
        self.action = action
        self.path = path
        self.expected = expected
        self.got = got
        self.kind = kind
        self.severity = severity
    }

    public var description: String {
        "\(action)\(path.isEmpty ? "" : " \(path)"): expected \(expected), got \(got)"
    }
}

/// How much a difference weighs.
public enum Severity: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Fails the replay.
    case fail
    /// Reported, but the replay passes.
    case warn
    /// Not reported.
    case ignore

    public static func < (a: Severity, b: Severity) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// What the replayer does with a CALL from the live peer that the fixture lacks at that point. Each way answers it
/// alike: with the fixture's last answer to that action, else `NotImplemented`.
public enum UnexpectedCalls: String, Sendable, Hashable, CaseIterable {
    /// Answered without a word.
    case answer
    /// Answered and reported as a warning.
    case report
    /// Answered and reported as a failure.
    case fail
}

/// How a live payload must match the recorded one.
public enum MatchMode: String, Sendable, Hashable, CaseIterable {
    /// The same members, the same values.
    case exact
    /// The recorded members, with the same values; the live payload may have more members (arrays keep their
    /// length).
    case subset
}

/// Which payload values a comparison ignores (volatile ones) and which it binds (values the live peer chooses);
/// how much each action's differences weigh, what becomes of CALLs the fixture lacks, how strictly payloads match.
public struct ComparisonRules: Sendable, Hashable {
    /// Per action (or `*` for all): member names ignored anywhere (`timestamp`), or dotted paths from the
    /// payload root with `[*]` for array elements (`meterValue[*].sampledValue[*].value`).
    public var ignore: [String: [String]]
    /// Member names whose values the live peer may choose; the first differing value is learned and
    /// substituted in later frames instead of being reported.
    public var bind: Set<String>
    /// Per action (`Authorize`: its CALL and answer; `Authorize.result`: the answer only; `*`: every action): how
    /// much a difference weighs. The most specific entry wins; without one, a difference fails.
    public var severity: [String: Severity]
    public var unexpectedCalls: UnexpectedCalls
    public var match: MatchMode

    public static let defaults = ComparisonRules(
        ignore: ["*": ["currentTime", "timestamp", "generatedAt"]],
        bind: ["transactionId", "reservationId", "requestId", "remoteStartId", "chargingProfileId"]
    )

    public init(
        ignore: [String: [String]],
        bind: Set<String>,
        severity: [String: Severity] = [:],
        unexpectedCalls: UnexpectedCalls = .report,
        match: MatchMode = .exact
    ) {
        self.ignore = ignore
        self.bind = bind
        self.severity = severity
        self.unexpectedCalls = unexpectedCalls
        self.match = match
    }

    /// How much a difference of `action` (`Authorize`, `Authorize.result`, `Authorize.error`) weighs.
    public func severity(of action: String) -> Severity {
        let base = action.split(separator: ".").first.map(String.init) ?? action
        return severity[action] ?? severity[base] ?? severity["*"] ?? .fail
    }

    /// `mismatches` weighed by the severity rules: ignored ones dropped, the others marked.
    public func weigh(_ mismatches: [Mismatch]) -> [Mismatch] {
        mismatches.compactMap { mismatch in
            let weight = max(mismatch.severity, severity(of: mismatch.action))
            guard weight != .ignore else { return nil }
            var weighed = mismatch
            weighed.severity = weight
            return weighed
        }
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
    /// Every string equal to `old` replaced by `new` (members' names stay).
    func replacingStrings(_ old: String, with new: String) -> JSONValue {
        switch self {
        case .string(let text): text == old ? .string(new) : self
        case .object(let members):
            .object(members.map { (key: $0.key, value: $0.value.replacingStrings(old, with: new)) })
        case .array(let elements): .array(elements.map { $0.replacingStrings(old, with: new) })
        default: self
        }
    }

    /// Every RFC 3339 date-time string moved to the time `move` gives for it (µs since the epoch).
    func rebasingTimestamps(_ move: (Int64) -> Int64) -> JSONValue {
        switch self {
        case .string(let text):
            guard let (micros, digits) = RFC3339.parse(text) else { return self }
            return .string(RFC3339.format(move(micros), fractionDigits: digits))
        case .object(let members):
            return .object(members.map { (key: $0.key, value: $0.value.rebasingTimestamps(move)) })
        case .array(let elements):
            return .array(elements.map { $0.rebasingTimestamps(move) })
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
                                got: "(absent)",
                                kind: .missing
                            )
                        )
                    }
                    continue
                }
                walk(action, childPath, member.value, live, &out)
            }
            for member in g where expectedKeys[member.key] == nil && rules.match == .exact {
                let childPath = path + [member.key]
                if !rules.ignores(action: action, path: childPath) {
                    out.append(
                        Mismatch(
                            action: action,
                            path: childPath.joined(separator: "."),
                            expected: "(absent)",
                            got: member.value.jsonText,
                            kind: .extra
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
                        got: "\(g.count) elements",
                        kind: .count
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
