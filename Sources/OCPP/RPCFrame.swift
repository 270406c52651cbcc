/// One OCPP-J RPC frame: `[2,id,action,payload]`, `[3,id,payload]` or `[4,id,code,description,details]`.
///
/// OCPP 2.1's CALLRESULTERROR (5) and SEND (6) are modelled too so that a relay can name them.
public enum RPCFrame: Sendable, Hashable {
    case call(Call)
    case callResult(CallResult)
    case callError(CallError)
    /// OCPP 2.1: an error about a CALLRESULT (message type 5).
    case callResultError(CallError)
    /// OCPP 2.1: an unconfirmed message (message type 6), shaped like a CALL.
    case send(Call)

    /// A request: `[2, messageId, action, payload]`.
    public struct Call: Sendable, Hashable {
        public var messageID: String
        public var action: String
        public var payload: JSONValue

        public init(messageID: String, action: String, payload: JSONValue) {
            self.messageID = messageID
            self.action = action
            self.payload = payload
        }
    }

    /// A successful response: `[3, messageId, payload]`.
    public struct CallResult: Sendable, Hashable {
        public var messageID: String
        public var payload: JSONValue

        public init(messageID: String, payload: JSONValue) {
            self.messageID = messageID
            self.payload = payload
        }
    }

    /// An error response: `[4, messageId, errorCode, errorDescription, errorDetails]`.
    public struct CallError: Sendable, Hashable {
        public var messageID: String
        public var errorCode: String
        public var errorDescription: String
        public var errorDetails: JSONValue

        public init(
            messageID: String,
            errorCode: String,
            errorDescription: String,
            errorDetails: JSONValue = .object([])
        ) {
            self.messageID = messageID
            self.errorCode = errorCode
            self.errorDescription = errorDescription
            self.errorDetails = errorDetails
        }
    }

    /// The numeric message type on the wire.
    public var messageTypeID: Int {
        switch self {
        case .call: 2
        case .callResult: 3
        case .callError: 4
        case .callResultError: 5
        case .send: 6
        }
    }

    /// The message id that pairs a CALL with its response.
    public var messageID: String {
        switch self {
        case .call(let c), .send(let c): c.messageID
        case .callResult(let r): r.messageID
        case .callError(let e), .callResultError(let e): e.messageID
        }
    }

    /// The action, for CALL and SEND frames.
    public var action: String? {
        switch self {
        case .call(let c), .send(let c): c.action
        default: nil
        }
    }

    /// The frame as compact JSON text.
    public var jsonText: String { jsonValue.jsonText }

    /// The frame as a JSON array.
    public var jsonValue: JSONValue {
        let type = JSONValue.number(String(messageTypeID))
        switch self {
        case .call(let c), .send(let c):
            return .array([type, .string(c.messageID), .string(c.action), c.payload])
        case .callResult(let r):
            return .array([type, .string(r.messageID), r.payload])
        case .callError(let e), .callResultError(let e):
            return .array([
                type, .string(e.messageID), .string(e.errorCode), .string(e.errorDescription), e.errorDetails,
            ])
        }
    }
}
