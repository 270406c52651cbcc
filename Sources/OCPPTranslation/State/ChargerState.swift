import OCPP

/// What the relay must remember about one translated charger, across connections and restarts: each version
/// pair's rules own their part (``TranslationRules/stateKey``), and a mirror keeps its transaction ids here.
///
/// Persisted as a whole after every durable change (``TranslationOutput/persist(_:write:)``; the relay's
/// ``TranslationStateStore`` keeps it). The stored form is the one earlier relays wrote: the members of
/// ``ForwardState`` at the top level, ``reverse`` and ``mirrorTransactionIDs`` beside them, missing members taking
/// their defaults.
public struct ChargerState: Codable, Sendable, Equatable {
    /// For a 1.6 charger on a 2.0.1 backend.
    public var forward = ForwardState()
    /// For a 2.0.1 charger on a 1.6 backend.
    public var reverse = ReverseState()
    /// For the OCPP 2.1 ↔ 2.0.1 step of any pair with a 2.1 peer.
    public var step21 = StepState()
    /// For a mirror's state: the charger's (the primary's) 1.6 transaction id → the mirror's, as JSON text.
    public var mirrorTransactionIDs: [String: String] = [:]

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case reverse, mirrorTransactionIDs
        case step21 = "v21"
    }

    /// Rules without state of their own (2.0.1 on 2.0.1, beside the 2.1 step).
    var none: NoState {
        get { NoState() }
        set {}
    }

    public init(from decoder: any Decoder) throws {
        forward = try ForwardState(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reverse = try c.decodeIfPresent(ReverseState.self, forKey: .reverse) ?? ReverseState()
        mirrorTransactionIDs = try c.decodeIfPresent([String: String].self, forKey: .mirrorTransactionIDs) ?? [:]
        step21 = try c.decodeIfPresent(StepState.self, forKey: .step21) ?? StepState()
    }

    public func encode(to encoder: any Encoder) throws {
        try forward.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(reverse, forKey: .reverse)
        try c.encode(mirrorTransactionIDs, forKey: .mirrorTransactionIDs)
        if step21 != StepState() { try c.encode(step21, forKey: .step21) }
    }
}

/// The state of rules that keep none.
struct NoState: Codable, Sendable, Equatable {}
