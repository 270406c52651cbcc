import OCPP
import OCPPReplay

/// What the console shows of a frame: never a password (Basic-auth passwords, AuthorizationKey values,
/// credentials in URLs), and idTokens as keyed pseudonyms when `console.redact_tokens` says so (the replay's
/// redaction, keyed per run: the same token keeps its pseudonym while the relay runs).
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
        let redacted = redactor.redact(payload: payload, action: action)
        guard !tokens else { return redacted }
        // Secrets only: tokens as they are, passwords as the redactor replaced them.
        return Self.secrets(of: redacted, into: payload, action: action)
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
