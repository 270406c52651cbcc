import OCPP

/// What one relayed session decides, as a pure state machine: its legs (``SessionLegs``), the charger's message
/// budget, where each message goes, the drain of a translated session when the charger has gone, and when the
/// primary upstream is released to a newer connection. ``RelaySession`` feeds it events and performs the actions
/// it returns, in order; it keeps no decision of its own.
struct SessionCore: Sendable {
    /// What arrived on a session leg.
    enum Message: Equatable, Sendable {
        case text
        /// A charger's Heartbeat CALL while the upstream is redialled (the performer looks only then): the relay
        /// answers it with its clock. Otherwise a text message like any other.
        case heartbeat(id: String)
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
        /// Of the grace of a lost upstream: a redial is due, how it ended, the grace's time is over.
        case grace(UpstreamGrace.Event)
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
        /// The primary upstream's connection is gone: a newer connection of the charger may dial now.
        case releaseUpstream
        /// Answer the charger's Heartbeat with the relay's clock (the upstream is being redialled); the call is
        /// recorded, not forwarded.
        case answerHeartbeat(id: String)
        /// What the grace of a lost upstream decided (its legs' consequences are already among the actions).
        case grace(UpstreamGrace.Action)
    }

    private(set) var legs: SessionLegs
    private var budget: MessageBudget?
    /// Whether upstream messages go through a translation, and whether the session has mirrors.
    let translated: Bool
    let mirrored: Bool
    /// The event that closes the primary upstream once the drain ends.
    private(set) var draining: SessionLegs.Event?
    private(set) var upstreamReleased = false
    /// The grace of a lost upstream, when the session has one (`timeouts.reconnect_grace`): out of line, so that a
    /// session without one keeps a nil reference, not the grace's fields.
    private var grace: OutOfLine<UpstreamGrace>?

    /// `grace`: the legs keep the charger when the primary upstream is lost as a restarting backend's is.
    init(
        legs: SessionLegs,
        budget: MessageBudget? = nil,
        translated: Bool,
        mirrored: Bool,
        grace: UpstreamGrace.Limits? = nil
    ) {
        precondition(legs.graceful == (grace != nil), "the legs keep the charger exactly when there is a grace")
        self.legs = legs
        self.budget = budget
        self.translated = translated
        self.mirrored = mirrored
        self.grace = grace.map { OutOfLine(UpstreamGrace(limits: $0)) }
    }

    /// Whether the primary upstream is being redialled (its messages are held or dropped, never sent).
    var redialing: Bool { grace?.value.isRedialing ?? false }

    /// What becomes of a message for the primary upstream (``UpstreamGrace/sending(_:header:)``); without a grace,
    /// it is sent.
    mutating func sending(_ message: Outgoing, header: RPCFrameHeader?) -> UpstreamGrace.Sending {
        grace?.value.sending(message, header: header) ?? .send
    }

    /// The primary upstream answered the call whose id has this hash.
    mutating func upstreamAnswered(_ id: UInt64) {
        grace?.value.answered(id)
    }

    mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action]
        switch event {
        case .received(let leg, let message, let now): actions = received(message, on: leg, now: now)
        case .legs(let event): actions = legsHandle(event)
        case .drainCanBegin(let then): actions = drainCanBegin(then)
        case .drainEnded(let undelivered): actions = drainEnded(undelivered)
        case .grace(let event): actions = graceHandle(event)
        }
        if redialing, !legs.isOpen(.charger) {
            actions += graceHandle(.chargerGone)
        }
        // Released once the primary's connection is gone (its close handshake done, or lost), not while it closes:
        // the backend then sees one connection of the charger at a time.
        if !upstreamReleased, legs[.upstream(0)].inactive, !redialing {
            upstreamReleased = true
            actions.append(.releaseUpstream)
        }
        return actions
    }

    // MARK: Messages

    private mutating func received(_ message: Message, on leg: LegID, now: UInt64) -> [Action] {
        legs.heard(leg)
        switch message {
        case .heartbeat(let id) where leg == .charger && redialing:
            guard legs.isOpen(leg) else { return [] }
            return [.answerHeartbeat(id: id)]
        case .text, .binary, .heartbeat:
            guard legs.takes(from: leg) else { return [] }
            var actions: [Action] = []
            if leg == .charger, case .exhausted(let wait, let report)? = budget?.spend(at: now) {
                actions.append(.holdChargerReads(resumeAfter: wait, report: report))
            }
            let offer = mirrored && message != .binary && (leg != .upstream(0) || !translated)
            // While the upstream is redialled, the charger's messages go to it all the same: the grace holds them.
            let target = leg == .charger && redialing ? .upstream(0) : legs.forwardTarget(from: leg)
            let route: Route = translated ? .translate : .forward(to: target)
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
        var actions: [Action] = []
        for action in legs.handle(event) {
            switch action {
            case .drain(let then): actions.append(.afterFlush(.drainCanBegin(then: then)))
            case .afterFlush(let event): actions.append(.afterFlush(.legs(event)))
            case .upstreamInGrace(let resume, let why): actions += graceHandle(.lost(resume: resume, why: why))
            default: actions.append(.leg(action))
            }
        }
        return actions
    }

    // MARK: The grace of a lost upstream

    /// Feeds the grace; what it decides for the legs (the new upstream, the charger's close) happens here, the rest
    /// is the performer's.
    private mutating func graceHandle(_ event: UpstreamGrace.Event) -> [Action] {
        guard let decided = grace?.value.handle(event) else { return [] }
        var actions: [Action] = []
        for action in decided {
            actions.append(.grace(action))
            switch action {
            case .adopt:
                _ = legs.handle(.upstreamRedialed)
            case .giveUp(let resume, _, _):
                actions += legsHandle(resume)
            case .refuse(let reason, _):
                actions += legsHandle(.close(.charger, code: 1008, reason: reason))
            default:
                break
            }
        }
        return actions
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

/// A value kept out of line, copied on write: its holder keeps one reference, not the value's fields (for state most
/// sessions never have). Confined, as its holder, to one event loop.
struct OutOfLine<Value: Sendable>: @unchecked Sendable {
    private final class Storage {
        var value: Value

        init(_ value: Value) {
            self.value = value
        }
    }

    private var storage: Storage

    init(_ value: Value) {
        storage = Storage(value)
    }

    var value: Value {
        get { storage.value }
        _modify {
            if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.value) }
            yield &storage.value
        }
    }
}
