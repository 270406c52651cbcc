import OCPP

/// Something the translation wants the relay to do or know.
public enum TranslationOutput: Sendable, Equatable {
    /// Send this frame text to the backend.
    case toUpstream(String)
    /// Send this frame text to the charger.
    case toCharger(String)
    /// A translation problem or loss worth logging and recording.
    case diagnostic(TranslationDiagnostic)
    /// Store this state of the charger as write number `write`. Always first when present: the frames of the same
    /// event, and of every later one, wait inside the engine until ``TranslationEngine/stored(_:)`` says the write
    /// is done (persistence first: a relay killed after answering still knows what it answered).
    case persist(ChargerState, write: Int)
    /// The charger accepted a new Basic-auth password from the backend: the relay, when it checks the charger's
    /// password itself, must accept the new one from now on (and no longer the old). The password in the clear:
    /// never logged or recorded.
    case passwordChanged(String)
}

/// Outputs an event produced that waited for a state write, released once it was stored; `cause` is what the relay
/// gave the event (the console pairs a translation with its original by it).
public struct HeldOutputs: Sendable, Equatable {
    public var cause: UInt64?
    public var outputs: [TranslationOutput]
    /// The write they waited for.
    var write: Int
}

/// A lossy or failed translation, for logs, metrics and recordings.
public struct TranslationDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Information was dropped because the other version cannot carry it, or the relay answered a message
        /// itself.
        case lossy
        /// A message could not be translated; its sender got an error or a rejection.
        case untranslatable
        /// A frame that is not valid OCPP-J (not JSON, not an RPC frame, an unknown answer).
        case malformed
        /// A call that breaks its version's schema: refused with the CALLERROR OCPP prescribes.
        case invalid
        /// A SEND (an OCPP 2.1 message that is never answered) towards a peer of an older version: recorded, not
        /// forwarded.
        case send
        /// The OCPP 2.1 peer answered one of the relay's answers with a CALLRESULTERROR: it says the answer was wrong.
        case refusedAnswer
        /// A call that broke its version's schema in a way that reads one way only (a number sent as a numeric
        /// string): mended, then translated.
        case normalised
    }

    public let kind: Kind
    /// The action concerned.
    public let action: String
    public let message: String
    /// The side whose frame the note is about (`nil`: the relay's own doing, such as a timeout).
    public let side: Side?

    public init(kind: Kind, action: String, message: String, side: Side? = nil) {
        self.kind = kind
        self.action = action
        self.message = message
        self.side = side
    }

    public var description: String { "\(kind.rawValue) \(action): \(message)" }
}

/// A message that cannot be translated; its sender gets a rejection or a CALLERROR saying why.
struct Untranslatable: Error, Sendable {
    let message: String
    /// A short reason code for `statusInfo.reasonCode` (≤ 20 characters).
    var reasonCode = "Untranslatable"
    /// The CALLERROR the sender gets when the message is refused with one.
    var code = RPCErrorCode.propertyConstraintViolation
}
