/// How many messages a charger may send: `perSecond` on average, `burst` at once.
struct MessageRate: Equatable, Sendable {
    var perSecond: Double
    var burst: Double
}

/// A charger's message budget: a token bucket, pure (the caller reads the clock). An empty budget holds the
/// charger's reads until it has refilled: the charger is slowed by its own TCP backpressure, nobody else is.
struct MessageBudget: Sendable {
    let rate: MessageRate
    private var tokens: Double
    private var refilledAt: UInt64
    private var lastReport: UInt64?

    /// How often an exhausted budget is reported (logged, counted, recorded).
    static let reportInterval: UInt64 = 60_000_000_000

    enum Outcome: Equatable, Sendable {
        case spent
        /// Hold the charger's reads for `nanoseconds`; `report`: say so (at most once a minute).
        case exhausted(resumeAfter: Int64, report: Bool)
    }

    /// A full budget at `now` (monotonic nanoseconds).
    init(rate: MessageRate, now: UInt64) {
        self.rate = rate
        self.tokens = rate.burst
        self.refilledAt = now
    }

    /// Takes one message from the budget at `now`.
    mutating func spend(at now: UInt64) -> Outcome {
        let elapsed = Double(now &- refilledAt) / 1e9
        tokens = min(rate.burst, tokens + elapsed * rate.perSecond)
        refilledAt = now
        tokens -= 1
        guard tokens < 0 else { return .spent }
        let report = lastReport.map { now &- $0 >= Self.reportInterval } ?? true
        if report { lastReport = now }
        return .exhausted(resumeAfter: Int64(-tokens / rate.perSecond * 1e9), report: report)
    }

    var description: String { "more than \(rate.perSecond) messages/s (burst \(Int(rate.burst)))" }
}
