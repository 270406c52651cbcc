/// What the OCPP 2.1 ↔ 2.0.1 step remembers of a charger (part of ``ChargerState``, stored as `v21`): the 2.1
/// tokens 2.0.1 cannot carry as they are, and the requestIds of a 2.1 charger's certificate signing requests.
public struct StepState: Codable, Sendable, Equatable {
    /// A 2.1 token as the 2.1 peer gave it.
    public struct Token: Codable, Sendable, Equatable {
        public var idToken: String
        public var type: String
    }

    /// The 2.0.1 idToken (an alias for one over 36 characters, else the token itself when only its type changed)
    /// → the 2.1 token it stands for.
    public var tokens: [String: Token] = [:]
    /// The requestId of the charger's last SignCertificate, per certificate type: the backend's CertificateSigned
    /// carries it back (2.1 requires it; 2.0.1 has no such member).
    public var signRequests: [String: Int] = [:]

    public init() {}

    private enum CodingKeys: String, CodingKey { case tokens, signRequests }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tokens = try c.decodeIfPresent([String: Token].self, forKey: .tokens) ?? [:]
        signRequests = try c.decodeIfPresent([String: Int].self, forKey: .signRequests) ?? [:]
    }
}
