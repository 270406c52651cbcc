import OCPP

/// What a replay command runs: fixtures, each as one charger, each from a moment after the start. A suite, a
/// fixture as load and a recorded fleet are three ways of making this list.
public struct ReplayPlan: Sendable {
    /// One charger's replay.
    public struct Run: Sendable {
        /// The fixture's name in reports (with the identity, when a fixture is played as many chargers).
        public var name: String
        public var fixture: Fixture
        /// Which of the plan's distinct fixtures this is (runs of one fixture as load share it, and its script).
        public var source: Int
        /// The identity to connect as; `nil`: the fixture's charger.
        public var identity: String?
        /// When to connect, after the plan's start, in µs.
        public var startAfter: Int64
        /// The recorded time the plan's start stands for (a fleet's), so that every CALL keeps its place in the
        /// fleet's timeline; `nil`: the run's own first CALL, at its connection.
        public var origin: Int64?

        public var charger: String { identity ?? fixture.header.charger }
    }

    public var runs: [Run]

    public init(runs: [Run]) { self.runs = runs }

    /// Each distinct fixture's script for `options` (by ``Run/source``), parsed once; a fixture that cannot be
    /// replayed has its error instead.
    public func scripts(_ options: ReplayOptions) -> [Int: Result<ReplayScript, FixtureError>] {
        var scripts: [Int: Result<ReplayScript, FixtureError>] = [:]
        for run in runs where scripts[run.source] == nil {
            scripts[run.source] = Result { () throws(FixtureError) in
                try ReplayScript(run.fixture, role: options.role, leg: options.leg)
            }
        }
        return scripts
    }

    /// Each fixture once, as its own charger, all from the start (`--parallel` decides how many at once).
    public static func suite(_ fixtures: [(name: String, fixture: Fixture)]) -> ReplayPlan {
        ReplayPlan(
            runs: fixtures.enumerated().map { Run(name: $1.name, fixture: $1.fixture, source: $0, startAfter: 0) }
        )
    }

    /// One fixture as `chargers` chargers named by `template`, connecting evenly over `ramp` µs.
    public static func load(
        _ fixture: Fixture,
        name: String,
        chargers: Int,
        template: IdentityTemplate,
        ramp: Int64
    ) -> ReplayPlan {
        ReplayPlan(
            runs: (1...max(chargers, 1)).map { n in
                let identity = template.identity(n)
                return Run(
                    name: "\(name) as \(identity)",
                    fixture: fixture,
                    source: 0,
                    identity: identity,
                    startAfter: chargers > 1 ? ramp * Int64(n - 1) / Int64(chargers) : 0
                )
            }
        )
    }

    /// Every connection of a recorded fleet at its recorded moment, scaled by `speed` (0: all at once, as fast
    /// as possible).
    public static func fleet(
        _ fixtures: [(name: String, fixture: Fixture)],
        speed: Double
    ) throws(FixtureError)
        -> ReplayPlan
    {
        var starts: [Int64] = []
        for (name, fixture) in fixtures {
            guard let first = fixture.entries.first.flatMap({ RFC3339.parse($0.time)?.micros }) else {
                throw FixtureError("\(name) has no timed entries")
            }
            starts.append(first)
        }
        guard let origin = starts.min() else { return ReplayPlan(runs: []) }
        let runs = zip(fixtures, starts).enumerated().map { index, element in
            let (pair, start) = element
            return Run(
                name: pair.name,
                fixture: pair.fixture,
                source: index,
                startAfter: speed > 0 ? Int64(Double(start - origin) / speed) : 0,
                origin: speed > 0 ? origin : nil
            )
        }
        return ReplayPlan(runs: runs.sorted { $0.startAfter < $1.startAfter })
    }
}

/// A charger identity with `{n}` counting from 1: `LOAD-{n}`, `CP-{n}-A`.
public struct IdentityTemplate: Sendable, Hashable {
    public let text: String

    public init(_ text: String) throws(FixtureError) {
        guard text.contains("{n}") else {
            throw FixtureError("the identity template '\(text)' has no {n} (example: LOAD-{n})")
        }
        self.text = text
        // Every identity it makes must be one a charger may have.
        do { _ = try ChargePointIdentity(identity(1)) } catch {
            throw FixtureError("the identity template '\(text)' makes an invalid identity: \(error)")
        }
    }

    public func identity(_ n: Int) -> String {
        var out = ""
        var rest = Substring(text)
        while let range = rest.firstRange(of: "{n}") {
            out += rest[..<range.lowerBound] + "\(n)"
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
