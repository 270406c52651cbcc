/// One replay of a suite, a load test or a fleet: a fixture played as one charger, and what came of it.
public struct ReplayRunResult: Sendable {
    /// What a test author calls it: the fixture's file name, with the charger it played when that differs.
    public var name: String
    /// The identity the run connected as (or served, as the backend).
    public var charger: String
    /// The replay's findings; `nil` when it could not run (`couldNotRun` says why).
    public var report: ReplayReport?
    public var couldNotRun: String?
    /// How long the run took, in seconds.
    public var seconds: Double

    public init(name: String, charger: String, report: ReplayReport?, couldNotRun: String? = nil, seconds: Double) {
        self.name = name
        self.charger = charger
        self.report = report
        self.couldNotRun = couldNotRun
        self.seconds = seconds
    }

    public var passed: Bool { report?.passed ?? false }
}

/// The figures of many runs, per action: what a load test reports.
public struct ReplayStatistics: Sendable, Equatable {
    public struct ActionFigures: Sendable, Equatable {
        /// Exchanges that got an answer (either side's CALLs).
        public var roundTrips = 0
        /// The live peer's answer times to the replayer's CALLs, in µs, unsorted.
        public var answerTimes: [Int64] = []
        /// Differences (failing and warnings) by kind.
        public var differences: [Mismatch.Kind: Int] = [:]
        /// CALLs that got no answer.
        public var errors = 0
        /// CALLERRORs among the answers.
        public var callErrors = 0

        /// The `p`-th percentile (0–100) of the answer times in µs, by nearest rank.
        public func percentile(_ p: Double) -> Int64? { percentiles([p])[0] }

        /// Several percentiles from one sort.
        public func percentiles(_ ps: [Double]) -> [Int64?] {
            guard !answerTimes.isEmpty else { return ps.map { _ in nil } }
            let sorted = answerTimes.sorted()
            return ps.map { p in
                let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
                return sorted[min(max(rank, 1), sorted.count) - 1]
            }
        }
    }

    public var actions: [String: ActionFigures] = [:]
    public var runs = 0
    public var passed = 0
    public var couldNotRun = 0
    /// Differences outside any exchange (a closed connection, malformed frames, unexpected CALLs) by kind.
    public var otherDifferences: [Mismatch.Kind: Int] = [:]

    public init(_ results: [ReplayRunResult]) {
        for result in results { add(result) }
    }

    public mutating func add(_ result: ReplayRunResult) {
        runs += 1
        if result.passed { passed += 1 }
        guard let report = result.report else {
            couldNotRun += 1
            return
        }
        for exchange in report.exchanges {
            // Changed in place: a copy taken out and put back would copy the answer times each time.
            Self.count(exchange, into: &actions[exchange.action, default: ActionFigures()])
        }
        for mismatch in report.other {
            if mismatch.action != "?", actions[mismatch.action] != nil || mismatch.kind == .unexpectedCall {
                actions[mismatch.action, default: ActionFigures()].differences[mismatch.kind, default: 0] += 1
            } else {
                otherDifferences[mismatch.kind, default: 0] += 1
            }
        }
    }

    private static func count(_ exchange: ExchangeOutcome, into figures: inout ActionFigures) {
        switch exchange.answer {
        case .result: figures.roundTrips += 1
        case .error:
            figures.roundTrips += 1
            figures.callErrors += 1
        case .none: figures.errors += 1
        }
        if let time = exchange.answerTime { figures.answerTimes.append(time) }
        for mismatch in exchange.mismatches { figures.differences[mismatch.kind, default: 0] += 1 }
    }

    public var roundTrips: Int { actions.values.reduce(0) { $0 + $1.roundTrips } }
    public var differences: Int {
        actions.values.reduce(0) { $0 + $1.differences.values.reduce(0, +) } + otherDifferences.values.reduce(0, +)
    }
    public var errors: Int { actions.values.reduce(0) { $0 + $1.errors } }
}

/// The outcome of a suite, a load test or a fleet: the exit code, the summary, the reports CI reads.
public struct ReplaySuiteReport: Sendable {
    public let results: [ReplayRunResult]
    /// The whole run's length, in seconds.
    public let seconds: Double
    public let statistics: ReplayStatistics

    public init(results: [ReplayRunResult], seconds: Double) {
        self.results = results
        self.seconds = seconds
        self.statistics = ReplayStatistics(results)
    }

    /// 0 every run matched (warnings allowed), 1 differences, 2 a run could not run.
    public var exitCode: Int32 {
        if results.isEmpty || results.contains(where: { $0.report == nil }) { return 2 }
        return results.allSatisfy(\.passed) ? 0 : 1
    }
}
