extension RPCFrame {
    /// The longest message id OCPP-J allows ("maximum of 36 characters, to allow for GUIDs").
    public static let maximumMessageIDLength = 36

    /// Parses the text of one WebSocket message into an RPC frame.
    ///
    /// Every malformed shape gets its own ``OCPPParseError`` code, with the message id when it could be read,
    /// so that a caller can answer with a CALLERROR for the right id.
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(OCPPParseError) -> RPCFrame {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw OCPPParseError(.notJSON, "not valid JSON: \(error)")
        }
        return try parse(value)
    }

    /// Parses text into an RPC frame.
    public static func parse(_ text: String) throws(OCPPParseError) -> RPCFrame {
        var text = text
        // A native string's bytes are read in place (no copy of the frame).
        text.makeContiguousUTF8()
        return try parse(text.utf8)
    }

    /// Interprets an already parsed JSON value as an RPC frame.
    public static func parse(_ value: JSONValue) throws(OCPPParseError) -> RPCFrame {
        guard case .array(let elements) = value else {
            throw OCPPParseError(.notAnArray, "an OCPP frame is a JSON array, got \(value.typeName)")
        }
        guard let first = elements.first else {
            throw OCPPParseError(.missingMessageType, "empty array")
        }
        guard case .number(let typeText) = first, let type = Int(typeText) else {
            throw OCPPParseError(.missingMessageType, "the first element must be the message type number")
        }
        guard elements.count >= 2, case .string(let messageID) = elements[1] else {
            throw OCPPParseError(.invalidMessageID, "the second element must be the message id string")
        }
        guard !messageID.isEmpty, messageID.utf8.count <= maximumMessageIDLength else {
            throw OCPPParseError(
                .invalidMessageID,
                "message id must be 1 to \(maximumMessageIDLength) characters",
                messageID: messageID
            )
        }
        func expectCount(_ count: Int, _ shape: String) throws(OCPPParseError) {
            guard elements.count == count else {
                throw OCPPParseError(
                    .wrongElementCount,
                    "message type \(type) has \(count) elements (\(shape)), got \(elements.count)",
                    messageID: messageID
                )
            }
        }
        switch type {
        case 2, 6:
            try expectCount(4, "[\(type), id, action, payload]")
            guard case .string(let action) = elements[2], !action.isEmpty else {
                throw OCPPParseError(.invalidAction, "the action must be a non-empty string", messageID: messageID)
            }
            guard case .object = elements[3] else {
                throw OCPPParseError(.invalidPayload, "the payload must be a JSON object", messageID: messageID)
            }
            let call = Call(messageID: messageID, action: action, payload: elements[3])
            return type == 2 ? .call(call) : .send(call)
        case 3:
            try expectCount(3, "[3, id, payload]")
            guard case .object = elements[2] else {
                throw OCPPParseError(.invalidPayload, "the payload must be a JSON object", messageID: messageID)
            }
            return .callResult(CallResult(messageID: messageID, payload: elements[2]))
        case 4, 5:
            try expectCount(5, "[\(type), id, errorCode, errorDescription, errorDetails]")
            guard case .string(let code) = elements[2], case .string(let description) = elements[3] else {
                throw OCPPParseError(
                    .invalidPayload,
                    "errorCode and errorDescription must be strings",
                    messageID: messageID
                )
            }
            guard case .object = elements[4] else {
                throw OCPPParseError(.invalidPayload, "errorDetails must be a JSON object", messageID: messageID)
            }
            let error = CallError(
                messageID: messageID,
                errorCode: code,
                errorDescription: description,
                errorDetails: elements[4]
            )
            return type == 4 ? .callError(error) : .callResultError(error)
        default:
            throw OCPPParseError(.unknownMessageType, "unknown message type \(type)", messageID: messageID)
        }
    }
}

/// Why a WebSocket message is not a well-formed OCPP RPC frame.
public struct OCPPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable, Hashable {
            case notJSON, notAnArray, missingMessageType, invalidMessageID, wrongElementCount
            case invalidAction, invalidPayload, unknownMessageType
        }
        fileprivate let base: Base

        public static let notJSON = Code(base: .notJSON)
        public static let notAnArray = Code(base: .notAnArray)
        public static let missingMessageType = Code(base: .missingMessageType)
        public static let invalidMessageID = Code(base: .invalidMessageID)
        public static let wrongElementCount = Code(base: .wrongElementCount)
        public static let invalidAction = Code(base: .invalidAction)
        public static let invalidPayload = Code(base: .invalidPayload)
        public static let unknownMessageType = Code(base: .unknownMessageType)

        public var description: String { base.rawValue }
    }

    public let code: Code
    public let message: String
    /// The message id, when the frame got far enough to carry one.
    public let messageID: String?

    init(_ code: Code, _ message: String, messageID: String? = nil) {
        self.code = code
        self.message = message
        self.messageID = messageID
    }

    /// The OCPP CALLERROR code a receiver should answer with, spelt as `version` spells it
    /// (1.6 has the typo `FormationViolation`, 2.0.1 corrected it to `FormatViolation`).
    public func rpcErrorCode(for version: OCPPVersion) -> String {
        switch code.base {
        case .unknownMessageType: return version == .v16 ? "ProtocolError" : "MessageTypeNotSupported"
        case .wrongElementCount, .invalidAction, .missingMessageType, .invalidMessageID: return "ProtocolError"
        case .notJSON, .notAnArray, .invalidPayload:
            return version == .v16 ? "FormationViolation" : "FormatViolation"
        }
    }

    public var description: String { message }
}
