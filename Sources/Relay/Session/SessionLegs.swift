import RelayRecording

/// One leg of a relayed session: the charger's, or one of its upstreams (0 is the primary, whose answers reach
/// the charger).
package enum LegID: Hashable, Sendable, CustomStringConvertible {
    case charger
    case upstream(Int)
    /// A mirror's leg (its index in the session's mirrors); not one of ``SessionLegs``: a mirror comes and goes
    /// while the session lives (``MirrorLink``).
    case mirror(Int)

    /// The leg as recordings name it.
    var recorded: Leg {
        switch self {
        case .charger: .charger
        case .upstream: .upstream
        case .mirror: .mirror
        }
    }

    package var description: String { recorded.rawValue }
}

/// What broke a leg.
enum LegFailure: Equatable, Sendable {
    /// A frame (or a fragmented message) over the size limit.
    case tooLarge(fragmented: Bool, limit: Int)
    /// A frame that breaks the WebSocket protocol.
    case protocolViolation(String)
    /// A compressed message that is not valid deflate data.
    case invalidData(String)
    /// An I/O error: the connection is going; its end arrives as ``SessionLegs/Event/inactive(_:)``.
    case io(String)
}

/// The legs of one session and how they open, close and stay alive: a pure state machine. Events go in
/// (a close frame, a lost connection, a protocol error, a liveness check), actions come out (record, send a
/// close, disconnect, ping, wait for the recording flush); ``RelaySession`` performs them and owns no leg state.
///
/// Close handshakes are completed per leg and mirrored on the legs that depend on it with the same code: the
/// charger's on every upstream, the primary upstream's on the charger (and on the other upstreams); an upstream
/// that is not the primary affects no other leg. A connection lost without a close is mirrored as lost (no close
/// frame). Mirroring waits for the recording flush, so that what came before the close is delivered first; in a
/// translated session, the charger's going reaches the primary upstream only once the translation has delivered
/// what the relay owes the backend (``Action/drain(then:)``).
struct SessionLegs: Sendable {
    enum State: Equatable, Sendable {
        /// Messages flow.
        case open
        /// The relay sent a close frame and waits for the peer's.
        case closeSent
        /// The close handshake is done, or the connection is gone.
        case closed
    }

    struct Status: Equatable, Sendable {
        var state = State.open
        /// The connection's channel is gone.
        var inactive = false
        /// Whether anything arrived lately, and whether a ping waits for its answer.
        var liveness = Liveness()
    }

    enum Event: Equatable, Sendable {
        /// The peer sent a close frame.
        case closeReceived(LegID, code: Int, reason: String)
        /// The relay starts the close handshake (mirroring, a newer connection, shutdown).
        case close(LegID, code: Int, reason: String)
        /// The peer did not answer the relay's close in time.
        case closeTimedOut(LegID)
        /// The connection is gone.
        case inactive(LegID)
        /// After the flush: `leg` lost its connection; its dependant `target` is dropped the same way.
        case lostMirrored(LegID, because: LegID)
        case failed(LegID, LegFailure)
        /// The periodic check (``Liveness/checksPerInterval`` times per ping interval): silent legs are pinged,
        /// unanswered pings reset the leg.
        case livenessCheck
        /// A newer connection of the same charger takes over: the charger's leg closes, the upstreams follow (the
        /// primary once what the relay owes it is delivered).
        case replaced(code: Int, reason: String)
        /// The primary upstream, lost within a grace, was dialled again: a new connection takes its place.
        case upstreamRedialed
    }

    enum Action: Equatable, Sendable {
        /// Record a close of `leg` (`byPeer`: the peer's close or its lost connection; else the relay's).
        case recordClose(LegID, byPeer: Bool, code: Int, reason: String)
        /// Record (and log) a problem on a leg.
        case recordError(LegID, String)
        /// Send a close frame (with `code`, or none) and disconnect once it is written.
        case closeAndDisconnect(LegID, code: Int?)
        /// Send a close frame and wait for the peer's answer, at most the close timeout.
        case sendClose(LegID, code: Int?, reason: String)
        case startCloseTimer(LegID)
        case disconnect(LegID)
        /// Drop a dead connection for good: reset (SO_LINGER 0), so that what waits unsent in the kernel is
        /// discarded, not delivered seconds later when a partition heals.
        case reset(LegID)
        case ping(LegID)
        /// The primary upstream's connection was lost (counted as an upstream failure).
        case upstreamLost
        /// Feed `event` back once everything recorded so far is written.
        case afterFlush(Event)
        /// The charger is gone: once everything recorded so far is written, deliver what the translation owes the
        /// primary upstream (bounded by the drain timeout), then feed `event` back.
        case drain(then: Event)
        /// The primary upstream went in a way that allows a grace (``UpstreamGrace/closeCodes``, a lost
        /// connection) while the charger is connected: the charger is kept; `resume` is what reaches it if the
        /// upstream does not come back.
        case upstreamInGrace(resume: Event, why: String)
        /// Every leg is gone: the session ends.
        case end
    }

    private(set) var charger = Status()
    /// The primary upstream, and the others (none allocates nothing: an idle charger's session stays small).
    private(set) var primary = Status()
    private(set) var others: [Status]
    private(set) var ended = false
    /// How often liveness is checked (for the message of a dropped leg).
    let pingInterval: Duration?
    /// Whether the primary upstream's close waits for the translation's drain when the charger goes.
    let drainsUpstream: Bool
    /// Whether a primary upstream lost as a backend restart is (``Action/upstreamInGrace(resume:why:)``) keeps
    /// the charger (`timeouts.reconnect_grace`).
    let graceful: Bool

    init(upstreams: Int = 1, pingInterval: Duration? = nil, drainsUpstream: Bool = false, graceful: Bool = false) {
        precondition(upstreams >= 1, "a session has a primary upstream")
        self.others = upstreams > 1 ? Array(repeating: Status(), count: upstreams - 1) : []
        self.pingInterval = pingInterval
        self.drainsUpstream = drainsUpstream
        self.graceful = graceful
    }

    subscript(leg: LegID) -> Status {
        get {
            switch leg {
            case .charger: charger
            case .upstream(0): primary
            case .upstream(let index): others[index - 1]
            case .mirror: preconditionFailure("mirror legs are not session legs")
            }
        }
        set {
            switch leg {
            case .charger: charger = newValue
            case .upstream(0): primary = newValue
            case .upstream(let index): others[index - 1] = newValue
            case .mirror: preconditionFailure("mirror legs are not session legs")
            }
        }
    }

    /// Every upstream leg's status, the primary first.
    var upstreams: [Status] { [primary] + others }

    var legs: [LegID] { [.charger] + (0...others.count).map { LegID.upstream($0) } }

    // MARK: The frame path (no allocation)

    /// Something arrived on `leg`: it is alive.
    mutating func heard(_ leg: LegID) {
        self[leg].liveness.heard()
    }

    /// Whether a message that arrived on `leg` is taken (recorded, forwarded or translated). A peer may still
    /// send after the relay sent it a close: such messages are taken too, and forwarded only while the other
    /// leg is open.
    func takes(from leg: LegID) -> Bool { self[leg].state != .closed }

    /// Whether `leg` can be sent messages (and pongs).
    func isOpen(_ leg: LegID) -> Bool { self[leg].state == .open }

    /// Where a message from `leg` is forwarded, if that leg is open: the charger's to the primary, the primary's
    /// to the charger. Other upstreams' messages are not forwarded.
    func forwardTarget(from leg: LegID) -> LegID? {
        let target: LegID
        switch leg {
        case .charger: target = .upstream(0)
        case .upstream(0): target = .charger
        case .upstream, .mirror: return nil
        }
        return isOpen(target) ? target : nil
    }

    /// The leg whose messages are forwarded to `leg` (its reads are held while `leg` cannot take more).
    static func source(into leg: LegID) -> LegID? {
        switch leg {
        case .charger: .upstream(0)
        case .upstream(0): .charger
        case .upstream, .mirror: nil
        }
    }

    /// The legs that close when `leg` closes.
    func dependants(of leg: LegID) -> [LegID] {
        switch leg {
        case .charger: (0...others.count).map { LegID.upstream($0) }
        case .upstream(0): [.charger] + others.indices.map { LegID.upstream($0 + 1) }
        case .upstream, .mirror: []
        }
    }

    /// How `leg`'s going reaches each of its dependants: after the flush, and for the primary upstream of a
    /// translated session after the drain too. `event` makes the dependant's event.
    private func mirrored(from leg: LegID, _ event: (LegID) -> Event) -> [Action] {
        dependants(of: leg).map { target in
            leg == .charger && target == .upstream(0) && drainsUpstream
                ? .drain(then: event(target)) : .afterFlush(event(target))
        }
    }

    // MARK: Events

    mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .closeReceived(let leg, let code, let reason): closeReceived(leg, code, reason)
        case .close(let leg, let code, let reason): close(leg, code, reason)
        case .closeTimedOut(let leg): closeTimedOut(leg)
        case .inactive(let leg): inactive(leg)
        case .lostMirrored(let target, let leg): lostMirrored(target, because: leg)
        case .failed(let leg, let failure): failed(leg, failure)
        case .livenessCheck: livenessCheck()
        case .replaced(let code, let reason): replaced(code, reason)
        case .upstreamRedialed: upstreamRedialed()
        }
    }

    /// Whether losing the primary upstream now keeps the charger (a grace), rather than reaching it.
    private func keepsCharger(_ leg: LegID) -> Bool {
        graceful && leg == .upstream(0) && charger.state == .open
    }

    private mutating func upstreamRedialed() -> [Action] {
        guard primary.state == .closed else { return [] }
        primary = Status()
        return []
    }

    private mutating func replaced(_ code: Int, _ reason: String) -> [Action] {
        guard charger.state == .open else { return legs.flatMap { close($0, code, reason) } }
        return close(.charger, code, reason) + mirrored(from: .charger) { .close($0, code: code, reason: reason) }
    }

    private mutating func closeReceived(_ leg: LegID, _ code: Int, _ reason: String) -> [Action] {
        switch self[leg].state {
        case .open:
            // The peer starts the close: echo it, then mirror it on the dependants after pending messages.
            self[leg].state = .closed
            if keepsCharger(leg), UpstreamGrace.closeCodes.contains(code) {
                return [
                    .recordClose(leg, byPeer: true, code: code, reason: reason),
                    .closeAndDisconnect(leg, code: code == 1005 ? nil : code),
                    .upstreamInGrace(
                        resume: .close(.charger, code: code, reason: reason),
                        why: "closed with \(code)\(reason.isEmpty ? "" : " (\(reason))")"
                    ),
                ]
            }
            return [
                .recordClose(leg, byPeer: true, code: code, reason: reason),
                .closeAndDisconnect(leg, code: code == 1005 ? nil : code),
            ] + mirrored(from: leg) { .close($0, code: code, reason: reason) }
        case .closeSent:
            // The peer answered the relay's close.
            self[leg].state = .closed
            return [.disconnect(leg)]
        case .closed:
            return []
        }
    }

    private mutating func close(_ leg: LegID, _ code: Int, _ reason: String) -> [Action] {
        guard self[leg].state == .open else { return [] }
        self[leg].state = .closeSent
        // 1005 (none), 1006 (lost) and 1015 (TLS) must not be sent: close without a code then.
        let sendable = !(code == 1005 || code == 1006 || code == 1015)
        return [
            .recordClose(leg, byPeer: false, code: sendable ? code : 1005, reason: reason),
            .sendClose(leg, code: sendable ? code : nil, reason: reason),
            .startCloseTimer(leg),
        ]
    }

    private mutating func closeTimedOut(_ leg: LegID) -> [Action] {
        guard self[leg].state != .closed else { return [] }
        self[leg].state = .closed
        return [.disconnect(leg)]
    }

    private mutating func inactive(_ leg: LegID) -> [Action] {
        self[leg].inactive = true
        var actions: [Action] = []
        if self[leg].state == .open {
            // Lost without a close frame: recorded, and the dependants see the same (after pending messages).
            self[leg].state = .closed
            actions.append(.recordClose(leg, byPeer: true, code: 1006, reason: "connection lost"))
            if leg == .upstream(0) { actions.append(.upstreamLost) }
            if keepsCharger(leg) {
                actions.append(.upstreamInGrace(resume: .lostMirrored(.charger, because: leg), why: "connection lost"))
            } else {
                actions += mirrored(from: leg) { .lostMirrored($0, because: leg) }
            }
        } else {
            self[leg].state = .closed
        }
        if !ended, charger.inactive, primary.inactive, others.allSatisfy(\.inactive) {
            ended = true
            actions.append(.end)
        }
        return actions
    }

    private mutating func lostMirrored(_ target: LegID, because leg: LegID) -> [Action] {
        guard self[target].state == .open else { return [] }
        self[target].state = .closed
        return [
            .recordClose(target, byPeer: false, code: 1006, reason: "\(leg) connection lost"),
            .disconnect(target),
        ]
    }

    private mutating func failed(_ leg: LegID, _ failure: LegFailure) -> [Action] {
        let message: String
        let closeCode: Int
        switch failure {
        case .tooLarge(let fragmented, let limit):
            message =
                "\(fragmented ? "fragmented message" : "message") larger than the \(limit)-byte limit; closed with 1009"
            closeCode = 1009
        case .protocolViolation(let why):
            message = "WebSocket protocol violation (\(why)); closed with 1002"
            closeCode = 1002
        case .invalidData(let why):
            message = "\(why); closed with 1007"
            closeCode = 1007
        case .io(let description):
            // The connection is going; its end says how.
            return [.recordError(leg, description)]
        }
        guard self[leg].state != .closed else { return [.recordError(leg, message)] }
        // What the peer sent broke the protocol: close its leg with the code that says why, and give the
        // dependants a clean close (they did nothing wrong).
        self[leg].state = .closed
        let why = "\(leg) connection closed: \(closeCode == 1009 ? "message too large" : "protocol error")"
        return [
            .recordError(leg, message),
            .recordClose(leg, byPeer: false, code: closeCode, reason: message),
            .closeAndDisconnect(leg, code: closeCode),
        ] + mirrored(from: leg) { .close($0, code: 1001, reason: why) }
    }

    /// Pings a leg that was silent for a whole interval, and resets one that did not answer (``Liveness``): a
    /// charger whose network vanished must not look connected to the backend.
    private mutating func livenessCheck() -> [Action] {
        var actions: [Action] = []
        for leg in legs where self[leg].state == .open {
            switch self[leg].liveness.check() {
            case .alive: break
            case .ping: actions.append(.ping(leg))
            case .dead:
                // Recorded and mirrored like any lost connection when its channel goes.
                let interval = pingInterval?.secondsText ?? "? s"
                actions.append(.recordError(leg, "no answer to a ping within \(interval); connection reset"))
                actions.append(.reset(leg))
            }
        }
        return actions
    }
}
