/// What one relayed session decides, as a pure state machine: its legs (``SessionLegs``), the charger's message
/// budget, where each message goes, the drain of a translated session when the charger has gone, and when the
/// primary upstream is released to a newer connection. ``RelaySession`` feeds it events and performs the actions
/// it returns, in order; it keeps no decision of its own.
struct SessionCore: Sendable {
    /// What arrived on a session leg.
    enum Message: Equatable, Sendable {
        case text
        case binary
        case ping
        case pong
        case close(code: Int, reason: String)
    }

    /// Where a data message goes once the mirrors (when offered it) did not take it.
    enum Route: Equatable, Sendable {
        /// Into the translation (which records and sends what it makes).
        case translate
        /// Recorded, then forwarded as it came to this leg after the flush; `nil`: recorded only (the other leg is
        /// closing).
        case forward(to: LegID?)
    }

    enum Event: Equatable, Sendable {
        /// A message on a session leg (mirrors' legs are the mirrors' own), at `now` (monotonic nanoseconds).
        case received(LegID, Message, now: UInt64)
        case legs(SessionLegs.Event)
        /// The flush the legs waited for is done: a translated session's drain begins, or `then` follows at once.
        case drainCanBegin(then: SessionLegs.Event)
        /// The translation owes the backend nothing more, or the drain's time ran out with `undelivered` calls.
        case drainEnded(undelivered: Int)
    }

    enum Action: Equatable, Sendable {
        /// What the legs decided (records, close frames, disconnects, pings, the end).
        case leg(SessionLegs.Action)
        /// Feed `event` back once everything recorded so far is written.
        case afterFlush(Event)
        /// The charger spent its budget: hold its reads for `resumeAfter` nanoseconds (`report`: say so).
        case holdChargerReads(resumeAfter: Int64, report: Bool)
        /// Answer a ping on its own leg (never forwarded: each leg keeps its own liveness).
        case pong(LegID)
        /// A data message from `leg`: shown to the mirrors first when `offerToMirrors` (the charger's answer to a
        /// mirror's call stops there), then sent on its `route`.
        case deliver(LegID, offerToMirrors: Bool, route: Route)
        /// The drain of a translated session: its bound starts, the translation hears the charger left (and
        /// delivers what it owes, ending the drain when done), the bound is cancelled when the drain ends.
        case startDrainTimer
        case tellTranslationChargerLeft
        case cancelDrainTimer
        /// The drain ended with calls the backend never got (logged, recorded, counted).
        case reportUndelivered(Int)
        /// The primary upstream is closed or gone: a newer connection of the charger may dial now.
        case releaseUpstream
    }

    private(set) var legs: SessionLegs
    private var budget: MessageBudget?
    /// Whether upstream messages go through a translation, and whether the session has mirrors.
    let translated: Bool
    let mirrored: Bool
    /// The event that closes the primary upstream once the drain ends.
    private(set) var draining: SessionLegs.Event?
    private(set) var upstreamReleased = false

    init(legs: SessionLegs, budget: MessageBudget? = nil, translated: Bool, mirrored: Bool) {
        self.legs = legs
        self.budget = budget
        self.translated = translated
        self.mirrored = mirrored
    }

    mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action]
        switch event {
        case .received(let leg, let message, let now): actions = received(message, on: leg, now: now)
        case .legs(let event): actions = legsHandle(event)
        case .drainCanBegin(let then): actions = drainCanBegin(then)
        case .drainEnded(let undelivered): actions = drainEnded(undelivered)
        }
        if !upstreamReleased, !legs.isOpen(.upstream(0)) {
            upstreamReleased = true
            actions.append(.releaseUpstream)
        }
        return actions
    }

    // MARK: Messages

    private mutating func received(_ message: Message, on leg: LegID, now: UInt64) -> [Action] {
        legs.heard(leg)
        switch message {
        case .text, .binary:
            guard legs.takes(from: leg) else { return [] }
            var actions: [Action] = []
            if leg == .charger, case .exhausted(let wait, let report)? = budget?.spend(at: now) {
                actions.append(.holdChargerReads(resumeAfter: wait, report: report))
            }
            let offer = mirrored && message == .text && (leg != .upstream(0) || !translated)
            let route: Route = translated ? .translate : .forward(to: legs.forwardTarget(from: leg))
            actions.append(.deliver(leg, offerToMirrors: offer, route: route))
            return actions
        case .ping:
            return legs.isOpen(leg) ? [.pong(leg)] : []
        case .pong:
            return []
        case .close(let code, let reason):
            return legsHandle(.closeReceived(leg, code: code, reason: reason))
        }
    }

    /// The budget's description, for the report of a charger slowed to it.
    var budgetDescription: String? { budget?.description }

    /// Whether the charger's messages are counted against a budget (the clock is read for them only then).
    var budgeted: Bool { budget != nil }

    // MARK: Legs and the drain

    private mutating func legsHandle(_ event: SessionLegs.Event) -> [Action] {
        legs.handle(event).map { action in
            switch action {
            case .drain(let then): .afterFlush(.drainCanBegin(then: then))
            case .afterFlush(let event): .afterFlush(.legs(event))
            default: .leg(action)
            }
        }
    }

    private mutating func drainCanBegin(_ then: SessionLegs.Event) -> [Action] {
        guard translated, draining == nil else { return legsHandle(then) }
        draining = then
        return [.startDrainTimer, .tellTranslationChargerLeft]
    }

    private mutating func drainEnded(_ undelivered: Int) -> [Action] {
        guard let then = draining else { return [] }
        draining = nil
        return [.cancelDrainTimer] + (undelivered > 0 ? [.reportUndelivered(undelivered)] : [])
            + [.afterFlush(.legs(then))]
    }
}
