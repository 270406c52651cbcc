import OCPP

/// A message that cannot be translated; its sender gets a rejection or a CALLERROR saying why.
struct Untranslatable: Error, Sendable {
    let message: String
    /// A short reason code for `statusInfo.reasonCode` (≤ 20 characters).
    var reasonCode = "Untranslatable"
}

extension TranslationSession {
    /// The 2.0.1 token for a 1.6 idTag: the type the backend used for it, else the table's rules.
    func idToken(_ idTag: String) -> JSONValue {
        .object([(key: "idToken", value: .string(idTag)), (key: "type", value: .string(tokenType(idTag)))])
    }

    func tokenType(_ idTag: String) -> String {
        state.tokenTypes[idTag] ?? tables.tokenTypes.type(of: idTag)
    }

    /// 2.0.1 `idTokenInfo` → 1.6 `idTagInfo`.
    func idTagInfo(_ info: JSONValue?) -> JSONValue? {
        guard let info, let status = info["status"]?.stringValue else { return nil }
        let mapped = tables.enumMap(.authorizationStatus201To16).map(status) ?? "Invalid"
        var parent: JSONValue?
        if let group = info.value(at: "groupIdToken.idToken")?.stringValue, group.count <= 20 {
            parent = .string(group)
        }
        return .object(omittingNil: [
            "status": .string(mapped),
            "expiryDate": info["cacheExpiryDateTime"],
            "parentIdTag": parent,
        ])
    }

    /// The refusal of a 2.0.1 message that the other side does not take (a wrapped Plug & Charge message nobody
    /// unwraps, a Security Whitepaper command a charger does not implement): each answer type's own refusal, with
    /// the reason, instead of a CALLERROR for a message the sender had every right to send.
    static func refusal(_ action: String, _ why: Untranslatable) -> JSONValue {
        let status: String
        switch action {
        case "DeleteCertificate": status = "Failed"
        case "GetInstalledCertificateIds": status = "NotFound"
        case "TriggerMessage": status = "NotImplemented"
        case "Get15118EVCertificate", "GetCertificateStatus": status = "Failed"
        case "Authorize":
            return .object([(key: "idTokenInfo", value: .object([(key: "status", value: .string("Unknown"))]))])
        default: status = "Rejected"
        }
        var payload = JSONValue.object([(key: "status", value: .string(status))])
        payload.set("statusInfo", statusInfo(why.reasonCode, why.message))
        if action == "Get15118EVCertificate" { payload.set("exiResponse", .string("")) }
        return payload
    }

    /// A `statusInfo` for a rejection the relay decides.
    static func statusInfo(_ reasonCode: String, _ info: String) -> JSONValue {
        .object([
            (key: "reasonCode", value: .string(String(reasonCode.prefix(20)))),
            (key: "additionalInfo", value: .string(String(info.prefix(512)))),
        ])
    }
}

extension MappingTables {
    /// Applies field rules to a payload: the generic mapper behind `request:`/`response:` in the message tables.
    func apply(
        _ rules: [FieldRule],
        to payload: JSONValue,
        action: String,
        _ out: inout [TranslationOutput]
    ) throws(Untranslatable) -> JSONValue {
        var result = JSONValue.object([])
        for rule in rules {
            guard var value = rule.constant ?? rule.source.flatMap({ payload.value(at: $0) }) ?? rule.defaultValue
            else {
                continue
            }
            if let name = rule.enumName {
                guard case .string(let text) = value else {
                    throw Untranslatable(message: "\(rule.source ?? rule.target) is not a string")
                }
                guard let mapped = enums[name, default: EnumMap()].map(text) else {
                    out.append(
                        .note(.lossy, action, "\(rule.target): \(text) has no counterpart; left out")
                    )
                    continue
                }
                value = .string(mapped)
            }
            if let limit = rule.maxLength, case .string(let text) = value, text.count > limit {
                throw Untranslatable(
                    message:
                        "\(rule.source ?? rule.target) is \(text.count) characters; the other version allows \(limit)",
                    reasonCode: "ValueTooLong"
                )
            }
            if rule.format == .string, !(value.stringValue != nil) {
                value = .string(value.jsonText)
            }
            result.set(path: rule.target, value)
        }
        return result
    }

}
