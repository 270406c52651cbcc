import Crypto
import Foundation
import OCPP

/// Makes fixtures safe to share: keyed pseudonyms for tokens that keep their length and kind of characters
/// (an idTag stays ≤ 20 characters, hex stays hex; the same token under the same key gets the same pseudonym in
/// every file), and secrets replaced (Basic-auth passwords and AuthorizationKey values, URL credentials).
/// Integers are never touched, so transaction ids and the like stay valid.
public struct Redactor: Sendable {
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// - Parameter key: the secret that keys the pseudonyms; keep it outside the fixtures.
    public init(key: String) {
        self.keyBytes = Array(key.utf8)
    }

    /// Member names whose string values are tokens.
    static let tokenKeys: Set<String> = ["idTag", "parentIdTag", "additionalIdToken"]
    /// Objects whose `idToken` member is a token.
    static let tokenObjects: Set<String> = ["idToken", "groupIdToken"]

    /// A pseudonym of `value`: same length, same kind of character at each position.
    public func pseudonym(_ value: String) -> String {
        var digest = Array(HMAC<SHA256>.authenticationCode(for: Array(value.utf8), using: key))
        var counter: UInt8 = 0
        func nextByte() -> UInt8 {
            if digest.isEmpty {
                counter &+= 1
                digest = Array(HMAC<SHA256>.authenticationCode(for: Array(value.utf8) + [counter], using: key))
            }
            return digest.removeFirst()
        }
        let isHex = !value.isEmpty && value.allSatisfy(\.isHexDigit)
        let upper = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let lower = Array("abcdefghijklmnopqrstuvwxyz")
        let digits = Array("0123456789")
        let hexUpper = Array("0123456789ABCDEF")
        let hexLower = Array("0123456789abcdef")
        return String(
            value.map { c -> Character in
                let b = Int(nextByte())
                if isHex { return c.isLowercase ? hexLower[b % 16] : hexUpper[b % 16] }
                if c.isNumber { return digits[b % 10] }
                if c.isUppercase { return upper[b % 26] }
                if c.isLowercase { return lower[b % 26] }
                return c  // separators (-, _, …) stay where they are
            }
        )
    }

    /// A frame's payload redacted; `action` is the CALL's (or, for a result, the action it answers).
    public func redact(payload: JSONValue, action: String?) -> JSONValue {
        var redacted = walk(payload, key: nil)
        switch action {
        case "ChangeConfiguration":
            if redacted["key"]?.stringValue == "AuthorizationKey", let value = redacted["value"]?.stringValue {
                redacted.set("value", .string(pseudonym(value)))
            }
        case "SetVariables":
            redacted = redactPasswords(redacted, list: "setVariableData")
        case "GetVariables":
            redacted = redactPasswords(redacted, list: "getVariableResult")
        default:
            break
        }
        return redacted
    }

    private func redactPasswords(_ payload: JSONValue, list: String) -> JSONValue {
        guard let entries = payload[list]?.arrayValue else { return payload }
        var copy = payload
        copy.set(
            list,
            .array(
                entries.map { entry in
                    guard entry.value(at: "variable.name")?.stringValue == "BasicAuthPassword",
                        let value = entry["attributeValue"]?.stringValue
                    else { return entry }
                    var e = entry
                    e.set("attributeValue", .string(pseudonym(value)))
                    return e
                }
            )
        )
        return copy
    }

    private func walk(_ value: JSONValue, key: String?) -> JSONValue {
        switch value {
        case .string(let text):
            if let key, Self.tokenKeys.contains(key) { return .string(pseudonym(text)) }
            return .string(Self.withoutCredentials(text))
        case .object(let members):
            return .object(
                members.map { member in
                    if Self.tokenObjects.contains(member.key), case .object = member.value,
                        let token = member.value["idToken"]?.stringValue
                    {
                        var object = walk(member.value, key: member.key)
                        object.set("idToken", .string(pseudonym(token)))
                        return (key: member.key, value: object)
                    }
                    return (key: member.key, value: walk(member.value, key: member.key))
                }
            )
        case .array(let elements):
            return .array(elements.map { walk($0, key: key) })
        default:
            return value
        }
    }

    /// `ftp://user:secret@host/x` → `ftp://host/x`.
    static func withoutCredentials(_ text: String) -> String {
        guard let scheme = text.range(of: "://") else { return text }
        let rest = text[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return text }
        return String(text[..<scheme.upperBound]) + String(rest[rest.index(after: at)...])
    }

    /// A whole fixture redacted: every frame's payload, with results redacted as the action they answer.
    public func redact(_ fixture: Fixture) throws -> Fixture {
        var actions: [String: String] = [:]  // "leg sender id" → action, for results
        var entries: [FixtureEntry] = []
        for entry in fixture.entries {
            guard let text = entry.text, let frame = try? RPCFrame.parse(text) else {
                entries.append(entry)
                continue
            }
            let leg = entry.leg ?? ""
            let redacted: RPCFrame
            switch frame {
            case .call(var call):
                actions["\(leg) \(call.messageID)"] = call.action
                call.payload = redact(payload: call.payload, action: call.action)
                redacted = .call(call)
            case .callResult(var result):
                result.payload = redact(payload: result.payload, action: actions["\(leg) \(result.messageID)"])
                redacted = .callResult(result)
            default:
                redacted = frame
            }
            var value = entry.value
            value.set("text", .string(redacted.jsonText))
            entries.append(try FixtureEntry(value))
        }
        var header = fixture.header
        header.source = (header.source.map { $0 + ", " } ?? "") + "redacted"
        return Fixture(header: header, entries: entries)
    }
}
