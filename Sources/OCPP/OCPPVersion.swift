/// An OCPP-J protocol version, identified by its WebSocket subprotocol token.
public enum OCPPVersion: String, Sendable, Hashable, CaseIterable, Codable {
    case v16 = "ocpp1.6"
    case v201 = "ocpp2.0.1"
    case v21 = "ocpp2.1"

    /// The short name users type and read: `1.6`, `2.0.1`, `2.1`.
    public var shortName: String {
        switch self {
        case .v16: "1.6"
        case .v201: "2.0.1"
        case .v21: "2.1"
        }
    }

    /// Accepts either the short name (`1.6`) or the subprotocol token (`ocpp1.6`).
    public init?(name: String) {
        let lowered = name.lowercased()
        if let version = OCPPVersion(rawValue: lowered) {
            self = version
        } else if let version = OCPPVersion.allCases.first(where: { $0.shortName == lowered }) {
            self = version
        } else {
            return nil
        }
    }

    /// The short name for any subprotocol token: `ocpp2.1` → `2.1`; tokens not starting with `ocpp` are kept.
    public static func shortName(ofSubprotocol token: String) -> String {
        let lowered = token.lowercased()
        return lowered.hasPrefix("ocpp") ? String(token.dropFirst(4)) : token
    }
}
