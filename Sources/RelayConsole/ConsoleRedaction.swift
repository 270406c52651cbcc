import OCPP
import OCPPReplay

/// What the console shows of a frame: never a password (Basic-auth passwords, AuthorizationKey values,
/// credentials in URLs), and idTokens as keyed pseudonyms when `console.redact_tokens` says so (the replay's
/// redaction, keyed per run: the same token keeps its pseudonym while the relay runs). A replaced value is marked
/// as such (`[redacted F150C041]`), the same on both sides of a translation.
struct ConsoleRedaction: Sendable {
    private let redactor: Redactor
    private let tokens: Bool

    init(redactTokens: Bool) {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in String(UInt8.random(in: 0...255, using: &generator), radix: 16) }.joined()
        redactor = Redactor(key: key)
        tokens = redactTokens
    }

    /// A frame's text as the console shows it; `action` is the call's (or, for an answer, the call it answers).
    func frame(_ text: String, action: String?) -> String {
        guard let frame = try? RPCFrame.parse(text) else { return text }
        switch frame {
        case .call(var call):
            call.payload = payload(call.payload, action: call.action)
            return RPCFrame.call(call).jsonText
        case .callResult(var result):
            result.payload = payload(result.payload, action: action)
            return RPCFrame.callResult(result).jsonText
        default:
            return text
        }
    }

    /// A differing value of a mirror comparison (JSON text at `path` of a payload) as the console shows it.
    func value(_ text: String, at path: String) -> String {
        guard tokens, !path.isEmpty, let value = try? JSONParser.parse(text) else { return text }
        var payload = JSONValue.object([])
        payload.set(path: path, value)
        return redactor.redact(payload: payload, action: nil).value(at: path)?.jsonText ?? text
    }

    private func payload(_ payload: JSONValue, action: String?) -> JSONValue {
        let action = action ?? (payload["getVariableResult"] != nil ? "GetVariables" : nil)
        let original = Self.canonical(payload, action: action)
        let redacted = redactor.redact(payload: original, action: action)
        // Secrets only unless tokens are redacted too: tokens as they are, passwords as the redactor replaced them.
        let shown = tokens ? redacted : Self.secrets(of: redacted, into: original, action: action)
        return marked(shown, original: original)
    }

    /// Every value the redactor replaced, shown as replaced: `[redacted F150C041]`, the start of its keyed
    /// pseudonym, so that the same secret or token carries the same mark wherever it appears.
    private func marked(_ shown: JSONValue, original: JSONValue) -> JSONValue {
        switch (shown, original) {
        case (.string(let text), .string(let value)) where text != value && text == redactor.pseudonym(value):
            return .string("[redacted \(text.prefix(8))]")
        case (.object(let members), .object(let originals)) where members.count == originals.count:
            return .object(
                zip(members, originals).map { member, original in
                    (key: member.key, value: marked(member.value, original: original.value))
                }
            )
        case (.array(let elements), .array(let originals)) where elements.count == originals.count:
            return .array(zip(elements, originals).map { marked($0, original: $1) })
        default:
            return shown
        }
    }

    /// The payload with a secret in the form its other version writes it: a 1.6 AuthorizationKey is the hex of the
    /// 2.0.1 BasicAuthPassword's bytes, so that both sides of a translated rotation carry the same mark.
    private static func canonical(_ payload: JSONValue, action: String?) -> JSONValue {
        guard action == "ChangeConfiguration", payload["key"]?.stringValue == "AuthorizationKey",
            let hex = payload["value"]?.stringValue, hex.count % 2 == 0, !hex.isEmpty
        else { return payload }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return payload }
            bytes.append(byte)
            index = next
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return payload }
        var copy = payload
        copy.set("value", .string(text))
        return copy
    }

    /// `original` with only the secret values taken from `redacted`.
    private static func secrets(of redacted: JSONValue, into original: JSONValue, action: String?) -> JSONValue {
        var result = original
        switch action {
        case "ChangeConfiguration":
            if original["key"]?.stringValue == "AuthorizationKey", let value = redacted["value"] {
                result.set("value", value)
            }
        case "SetVariables", "GetVariables":
            for list in ["setVariableData", "getVariableResult"] {
                guard let entries = redacted[list] else { continue }
                result.set(list, entries)
            }
        default:
            break
        }
        return result
    }
}
