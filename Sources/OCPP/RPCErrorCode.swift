/// The CALLERROR codes of OCPP-J, as each version spells them (1.6 writes `FormationViolation` and
/// `OccurenceConstraintViolation`, and has no `MessageTypeNotSupported` or `RpcFrameworkError`).
public enum RPCErrorCode: Sendable, Hashable, CaseIterable {
    /// The action is not known to the receiver.
    case notImplemented
    /// The action is known to the receiver and not supported.
    case notSupported
    case internalError
    case protocolError
    case securityError
    /// The payload is not syntactically what the action takes.
    case formatViolation
    /// A field holds a value its rules do not allow (a length, an enumeration, a bound).
    case propertyConstraintViolation
    /// A field is missing, or occurs too often or too seldom.
    case occurrenceConstraintViolation
    /// A field has another data type than the action's.
    case typeConstraintViolation
    case genericError
    case messageTypeNotSupported
    case rpcFrameworkError

    /// The code as `version` writes it on the wire.
    public func spelled(for version: OCPPVersion) -> String {
        switch (self, version) {
        case (.notImplemented, _): "NotImplemented"
        case (.notSupported, _): "NotSupported"
        case (.internalError, _): "InternalError"
        case (.protocolError, _): "ProtocolError"
        case (.securityError, _): "SecurityError"
        case (.formatViolation, .v16): "FormationViolation"
        case (.formatViolation, _): "FormatViolation"
        case (.propertyConstraintViolation, _): "PropertyConstraintViolation"
        case (.occurrenceConstraintViolation, .v16): "OccurenceConstraintViolation"
        case (.occurrenceConstraintViolation, _): "OccurrenceConstraintViolation"
        case (.typeConstraintViolation, _): "TypeConstraintViolation"
        case (.genericError, _): "GenericError"
        case (.messageTypeNotSupported, .v16), (.rpcFrameworkError, .v16): "ProtocolError"
        case (.messageTypeNotSupported, _): "MessageTypeNotSupported"
        case (.rpcFrameworkError, _): "RpcFrameworkError"
        }
    }

    /// The code a peer wrote, in either version's spelling.
    public init?(_ text: String) {
        switch text {
        case "FormationViolation", "FormatViolation": self = .formatViolation
        case "OccurenceConstraintViolation", "OccurrenceConstraintViolation": self = .occurrenceConstraintViolation
        default:
            guard let code = Self.allCases.first(where: { $0.spelled(for: .v201) == text }) else { return nil }
            self = code
        }
    }

    /// A code a peer wrote, as `version` spells it; a code OCPP does not define passes unchanged.
    public static func respell(_ text: String, for version: OCPPVersion) -> String {
        RPCErrorCode(text)?.spelled(for: version) ?? text
    }
}
