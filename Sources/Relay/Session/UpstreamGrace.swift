import NIOCore
import NIOWebSocket
import OCPP

/// A message on its way to the primary upstream: a charger's as it came, or one the relay made (a translation).
enum Outgoing: Equatable {
    case forwarded(LegMessage)
    case made(ByteBuffer, WebSocketOpcode)

    var opcode: WebSocketOpcode {
        switch self {
        case .forwarded(let message): message.opcode
        case .made(_, let opcode): opcode
        }
    }

    var size: Int {
        switch self {
        case .forwarded(let message): message.payload.readableBytes
        case .made(let data, _): data.readableBytes
        }
    }
}

/// The grace period of a lost upstream (`timeouts.reconnect_grace`), as a pure state machine: while the primary
/// upstream is redialled the charger stays connected, its calls wait (bounded) and go out on the new connection,
/// after the calls the lost connection never answered, in the order the charger sent them.
///
/// It decides; ``RelaySession`` performs (timers, dials, the new leg, sending). Time is the performer's: the
/// machine learns of it through events (a redial is due, the grace ran out).
struct UpstreamGrace: Sendable {
    /// The close codes of a backend going away or restarting, and a lost connection: the charger is kept. Others
    /// (1000, 1008, …) are meant for this charger and reach it as they came.
    static let closeCodes: Set<Int> = [1001, 1006, 1012, 1013]
    /// A redial refused with one of these means the backend no longer takes this charger: it is closed.
    static let refusals: Set<Int> = [401, 403, 404]

    struct Limits: Equatable, Sendable {
        /// How long the charger is kept while the upstream is redialled.
        var length: Duration
        /// Messages (and their bytes) held for the upstream meanwhile; what does not fit is not answered, so that
        /// the charger's own retry applies.
        var maxHeld = 64
        var maxHeldBytes = 256 << 10
        /// Calls sent upstream and not yet answered, kept to send again on the new connection.
        var maxInFlight = 16
        /// The first redial comes after a random wait in this range; each failure doubles it, up to `maxBackoff`.
        var firstRedial: ClosedRange<Duration> = .milliseconds(50) ... .milliseconds(500)
        var maxBackoff: Duration = .seconds(5)
    }

    enum Phase: Equatable, Sendable {
        /// The upstream is connected (or the session never lost it).
        case connected
        /// The upstream is gone; `attempts` redials failed so far; `dialing` while one is under way. `resume` is
        /// what losing the upstream does to the charger once the grace runs out.
        case redialing(attempts: Int, dialing: Bool, resume: SessionLegs.Event)
        /// The grace ran out, or the charger went: nothing is redialled any more.
        case over
    }

    /// How a redial ended.
    enum DialResult: Equatable, Sendable {
        case accepted
        /// The backend answered the upgrade with this HTTP status.
        case refused(status: Int, reason: String)
        /// No connection, a broken handshake, a timeout, or another subprotocol than the session speaks.
        case failed(String)
    }

    enum Event: Equatable, Sendable {
        /// The legs lost the primary upstream in a way that allows a grace (``closeCodes``, a lost connection).
        case lost(resume: SessionLegs.Event, why: String)
        case redialDue
        case dialed(DialResult)
        /// The grace's time is over.
        case expired
        /// The charger is gone or replaced: stop redialling.
        case chargerGone
    }

    enum Action: Equatable, Sendable {
        /// Keep the charger: start the grace's timer, say so.
        case begin(Duration, why: String)
        /// Redial after a random wait in this range (and the fleet's redial pacing).
        case scheduleRedial(ClosedRange<Duration>)
        case dial(attempt: Int)
        /// The redial succeeded: the new connection becomes the primary upstream; `resend` (calls the lost
        /// connection never answered), then `held`, go out on it in that order.
        case adopt(resend: [Outgoing], held: [Outgoing], attempts: Int)
        /// A connection dialled after the grace ended: close it.
        case discard
        case cancelTimers
        /// The grace is over without an upstream: `resume` reaches the charger; `dropped` held messages go nowhere.
        case giveUp(resume: SessionLegs.Event, reason: String, dropped: Int)
        /// The backend refused the redial: the charger is closed with 1008 and the status.
        case refuse(reason: String, dropped: Int)
        /// The charger went (or was replaced) during the grace: nothing more is redialled.
        case abandon(dropped: Int)
    }

    /// What becomes of a message for the primary upstream.
    enum Sending: Equatable, Sendable {
        case send
        case held
        /// Not sent and not kept: the reason.
        case dropped(String)
    }

    let limits: Limits
    private(set) var phase = Phase.connected
    private(set) var held: [Outgoing] = []
    private var heldBytes = 0
    /// Calls sent on the current connection and not answered yet, by the hash of their message id.
    private var inFlight: [(id: UInt64, message: Outgoing)] = []

    init(limits: Limits) {
        self.limits = limits
    }

    var isRedialing: Bool {
        if case .redialing = phase { return true }
        return false
    }

    var inFlightCount: Int { inFlight.count }

    mutating func handle(_ event: Event) -> [Action] {
        switch (event, phase) {
        case (.lost(let resume, let why), .connected):
            phase = .redialing(attempts: 0, dialing: false, resume: resume)
            return [.begin(limits.length, why: why), .scheduleRedial(limits.firstRedial)]
        case (.lost, _):
            return []
        case (.redialDue, .redialing(let attempts, false, let resume)):
            phase = .redialing(attempts: attempts, dialing: true, resume: resume)
            return [.dial(attempt: attempts + 1)]
        case (.redialDue, _):
            return []
        case (.dialed(let result), .redialing(let attempts, true, let resume)):
            return dialed(result, attempts: attempts + 1, resume: resume)
        case (.dialed(.accepted), _):
            return [.discard]
        case (.dialed, _):
            return []
        case (.expired, .redialing(let attempts, _, let resume)):
            return end([.giveUp(resume: resume, reason: Self.expiredReason(limits.length, attempts), dropped: 0)])
        case (.chargerGone, .redialing):
            return end([.abandon(dropped: 0)])
        case (.expired, _), (.chargerGone, _):
            return []
        }
    }

    private mutating func dialed(_ result: DialResult, attempts: Int, resume: SessionLegs.Event) -> [Action] {
        switch result {
        case .accepted:
            let actions: [Action] = [
                .cancelTimers, .adopt(resend: inFlight.map(\.message), held: held, attempts: attempts),
            ]
            phase = .connected
            inFlight = []
            held = []
            heldBytes = 0
            return actions
        case .refused(let status, let reason) where Self.refusals.contains(status):
            return end([.refuse(reason: "upstream refused the reconnection: \(status) \(reason)", dropped: 0)])
        case .refused, .failed:
            phase = .redialing(attempts: attempts, dialing: false, resume: resume)
            return [.scheduleRedial(backoff(after: attempts))]
        }
    }

    /// Stops redialling: the timers go, what was held is dropped (counted in the final action).
    private mutating func end(_ final: [Action]) -> [Action] {
        let dropped = held.count + inFlight.count
        phase = .over
        held = []
        heldBytes = 0
        inFlight = []
        return [.cancelTimers]
            + final.map { action in
                switch action {
                case .giveUp(let resume, let reason, _): .giveUp(resume: resume, reason: reason, dropped: dropped)
                case .refuse(let reason, _): .refuse(reason: reason, dropped: dropped)
                case .abandon: .abandon(dropped: dropped)
                default: action
                }
            }
    }

    /// The wait before redial `attempts + 1`: doubled per failure, at most ``Limits/maxBackoff``, jittered over
    /// its upper half so that chargers that lost the same backend spread out.
    func backoff(after attempts: Int) -> ClosedRange<Duration> {
        let base = limits.firstRedial.upperBound
        let doubled = base * (1 << min(attempts, 16))
        let upper = min(doubled, limits.maxBackoff)
        return (upper / 2)...upper
    }

    static func expiredReason(_ length: Duration, _ attempts: Int) -> String {
        "no upstream within timeouts.reconnect_grace (\(length.secondsText), \(attempts) redial(s))"
    }

    // MARK: Messages for the upstream

    /// A message for the primary upstream: sent (a call is remembered until its answer), held while redialling
    /// (calls only, within the limits), or dropped. `header` is the frame's start, when it is an RPC frame.
    mutating func sending(_ message: Outgoing, header: RPCFrameHeader?) -> Sending {
        switch phase {
        case .connected:
            if let header, header.messageType == 2 {
                if inFlight.count >= limits.maxInFlight { inFlight.removeFirst() }
                inFlight.append((header.messageIDHash, message))
            }
            return .send
        case .over:
            return .dropped("the upstream is gone")
        case .redialing:
            guard let header, header.messageType == 2, message.opcode == .text else {
                return .dropped(
                    "not a call, while the upstream is redialled (it answers a call of the lost connection)"
                )
            }
            guard held.count < limits.maxHeld, heldBytes + message.size <= limits.maxHeldBytes else {
                return .dropped(
                    "held calls over the limit while the upstream is redialled; the charger's retry applies"
                )
            }
            held.append(message)
            heldBytes += message.size
            return .held
        }
    }

    /// The upstream answered the call with this id hash.
    mutating func answered(_ id: UInt64) {
        if let index = inFlight.firstIndex(where: { $0.id == id }) { inFlight.remove(at: index) }
    }
}

extension Duration {
    /// `30 s`, `0.5 s`: for notes and logs.
    var secondsText: String {
        let seconds = Double(components.seconds) + Double(components.attoseconds) / 1e18
        return seconds == seconds.rounded() ? "\(Int64(seconds)) s" : "\(seconds) s"
    }
}
