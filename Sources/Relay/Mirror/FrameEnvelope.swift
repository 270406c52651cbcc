import OCPP

/// An RPC frame's envelope read without parsing its payload: type, message id, action, and the payload's text.
/// Mirrors read every charger message and every answer this way, and re-address frames (a relay-made message id,
/// the caller's id back) by rewriting the envelope only.
struct FrameEnvelope: Equatable, Sendable {
    /// 2 CALL, 3 CALLRESULT, 4 CALLERROR.
    var type: Int
    var messageID: String
    /// For a CALL.
    var action: String?
    /// The rest of the frame after the id (and action), without the closing bracket: a CALL's or CALLRESULT's
    /// payload, or a CALLERROR's code, description and details.
    var rest: Substring

    init(type: Int, messageID: String, action: String?, rest: Substring) {
        self.type = type
        self.messageID = messageID
        self.action = action
        self.rest = rest
    }

    /// Reads `text`; `nil` when it is not an RPC frame of type 2 to 4.
    init?(_ text: String) {
        if let fast = Self.scan(text) {
            self = fast
            return
        }
        guard let frame = try? RPCFrame.parse(text) else { return nil }
        // Escapes in the id or action: the parsed frame says it.
        switch frame {
        case .call(let call):
            self.init(type: 2, messageID: call.messageID, action: call.action, rest: Substring(call.payload.jsonText))
        case .callResult(let result):
            self.init(type: 3, messageID: result.messageID, action: nil, rest: Substring(result.payload.jsonText))
        case .callError(let error):
            let parts: [JSONValue] = [.string(error.errorCode), .string(error.errorDescription), error.errorDetails]
            self.init(
                type: 4,
                messageID: error.messageID,
                action: nil,
                rest: Substring(parts.map(\.jsonText).joined(separator: ","))
            )
        default:
            return nil
        }
    }

    /// The frame with another message id.
    func readdressed(to id: String) -> String {
        var text = "[\(type),\(JSONValue.string(id).jsonText),"
        if let action { text += JSONValue.string(action).jsonText + "," }
        return text + rest + "]"
    }

    /// The payload parsed (a CALL's or CALLRESULT's).
    var payload: JSONValue? {
        try? JSONParser.parse(String(rest))
    }

    /// A CALLERROR's code.
    var errorCode: String? {
        guard type == 4, case .array(let parts)? = try? JSONParser.parse("[\(rest)]") else { return nil }
        return parts.first?.stringValue
    }

    /// The envelope of a frame whose id and action hold no escapes (nearly all).
    private static func scan(_ text: String) -> FrameEnvelope? {
        let utf8 = text.utf8
        var i = utf8.startIndex
        func skipSpace() {
            while i < utf8.endIndex, [0x20, 0x0A, 0x0D, 0x09].contains(utf8[i]) { i = utf8.index(after: i) }
        }
        func expect(_ byte: UInt8) -> Bool {
            skipSpace()
            guard i < utf8.endIndex, utf8[i] == byte else { return false }
            i = utf8.index(after: i)
            return true
        }
        func string() -> String? {
            guard expect(UInt8(ascii: "\"")) else { return nil }
            let start = i
            while i < utf8.endIndex, utf8[i] != UInt8(ascii: "\"") {
                if utf8[i] == UInt8(ascii: "\\") { return nil }
                i = utf8.index(after: i)
            }
            guard i < utf8.endIndex else { return nil }
            defer { i = utf8.index(after: i) }
            return String(text[start..<i])
        }
        guard expect(UInt8(ascii: "[")) else { return nil }
        skipSpace()
        guard i < utf8.endIndex, (0x32...0x34).contains(utf8[i]) else { return nil }
        let type = Int(utf8[i] - 0x30)
        i = utf8.index(after: i)
        guard expect(UInt8(ascii: ",")), let id = string() else { return nil }
        var action: String?
        if type == 2 {
            guard expect(UInt8(ascii: ",")), let name = string() else { return nil }
            action = name
        }
        guard expect(UInt8(ascii: ",")) else { return nil }
        var end = utf8.endIndex
        repeat {
            guard end > i else { return nil }
            end = utf8.index(before: end)
        } while [0x20, 0x0A, 0x0D, 0x09].contains(utf8[end])
        guard utf8[end] == UInt8(ascii: "]") else { return nil }
        return FrameEnvelope(type: type, messageID: id, action: action, rest: text[i..<end])
    }
}
