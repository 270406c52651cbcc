import OCPP
import RelayConfig

/// The mirrors of one session and the charger's one-outstanding-call rule between the primary's calls and the
/// secondaries': a pure state machine over ``MirrorLink``s.
///
/// The primary's calls are never held (nothing a mirror does may delay the primary path); a secondary's call goes
/// to the charger only while no other call is outstanding, and waits in order otherwise.
struct MirrorSet: Sendable {
    enum Action: Equatable, Sendable {
        case mirror(Int, MirrorLink.Action)
        /// A mirror's permitted call, for the charger.
        case toCharger(String)
    }

    private(set) var links: [MirrorLink]
    /// Whether any mirror may call the charger (then the primary's calls are tracked for the slot).
    private let secondaries: Bool
    /// The primary's call the charger has not answered yet.
    private var primaryCall: String?
    /// The mirrors' calls for the charger (their frames by relay-made id): one outstanding, the others waiting.
    private var mirrorCalls = CallLane<String, String>()
    let callTimeout: Duration

    init(links: [MirrorLink]) {
        self.links = links
        self.secondaries = links.contains { $0.mode == .secondary }
        self.callTimeout = links.first?.callTimeout ?? .zero
    }

    mutating func start() -> [Action] {
        links.indices.flatMap { index in links[index].start().map { Action.mirror(index, $0) } }
    }

    /// A frame from the charger. Returns whether it was an answer to a mirror's call (which the primary must not
    /// get) and what to do.
    mutating func fromCharger(_ text: String, now: Duration) -> (consumed: Bool, actions: [Action]) {
        guard let envelope = FrameEnvelope(text) else { return (false, []) }
        if envelope.type == 2 {
            var actions: [Action] = []
            for index in links.indices {
                actions += links[index].chargerCall(envelope, text: text, now: now).map { .mirror(index, $0) }
            }
            return (false, actions)
        }
        if let index = links.firstIndex(where: { $0.owns(envelope.messageID) }) {
            var actions = links[index].chargerAnswered(envelope).map { Action.mirror(index, $0) }
            if mirrorCalls.answered(envelope.messageID) != nil { actions += nextCall(now: now) }
            return (true, actions)
        }
        if primaryCall == envelope.messageID {
            primaryCall = nil
            return (false, nextCall(now: now))
        }
        return (false, [])
    }

    /// A frame the primary sent the charger, as the charger gets it.
    mutating func toCharger(_ text: String) -> [Action] {
        guard let envelope = FrameEnvelope(text) else { return [] }
        if envelope.type == 2 {
            if secondaries { primaryCall = envelope.messageID }
            return []
        }
        var actions: [Action] = []
        for index in links.indices {
            actions += links[index].primaryAnswered(envelope).map { .mirror(index, $0) }
        }
        return actions
    }

    /// A frame from mirror `index`, in the charger's terms.
    mutating func fromMirror(_ index: Int, _ text: String, now: Duration) -> [Action] {
        route(index, links[index].mirrorFrame(text, now: now), now: now)
    }

    mutating func connected(_ index: Int, now: Duration) -> [Action] {
        route(index, links[index].connected(now: now), now: now)
    }

    mutating func lost(_ index: Int, _ why: String) -> [Action] {
        route(index, links[index].lost(why), now: .zero)
    }

    mutating func heard(_ index: Int) {
        links[index].heardFrom()
    }

    /// The liveness check of every mirror.
    mutating func livenessCheck() -> [Action] {
        links.indices.flatMap { index in links[index].livenessCheck().map { Action.mirror(index, $0) } }
    }

    /// The session ends.
    mutating func stop() -> [Action] {
        _ = mirrorCalls.removeAll()
        return links.indices.flatMap { index in links[index].stop().map { Action.mirror(index, $0) } }
    }

    /// Whether any mirror is still to get or to answer something.
    var owesAnything: Bool { links.contains(where: \.owesAnything) }

    mutating func dialling(_ index: Int) {
        links[index].dialling()
    }

    mutating func restore(_ index: Int, transactionIDs: [String: String]) {
        links[index].restore(transactionIDs: transactionIDs)
    }

    /// Unanswered calls: the mirrors' messages, and a mirror's call the charger never answered (the slot frees).
    mutating func expire(now: Duration) -> [Action] {
        var actions: [Action] = []
        for index in links.indices where links[index].hasPending {
            actions += links[index].expire(now: now).map { .mirror(index, $0) }
        }
        if let call = mirrorCalls.expired(at: now, after: callTimeout) {
            if let index = links.firstIndex(where: { $0.owns(call.id) }) {
                actions += links[index].chargerNeverAnswered(call.id).map { .mirror(index, $0) }
            }
            actions += nextCall(now: now)
        }
        return actions
    }

    private mutating func route(_ index: Int, _ actions: [MirrorLink.Action], now: Duration) -> [Action] {
        var out: [Action] = []
        for action in actions {
            if case .callCharger(let id, let text) = action {
                mirrorCalls.enqueue(text, id: id)
                out += nextCall(now: now)
            } else {
                out.append(.mirror(index, action))
            }
        }
        return out
    }

    private mutating func nextCall(now: Duration) -> [Action] {
        guard primaryCall == nil, let next = mirrorCalls.next(at: now) else { return [] }
        return [.toCharger(next.call)]
    }
}
