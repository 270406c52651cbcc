import OCPP

/// The relay's own refusals of 2.x messages, shared by the rule sets.
enum Refusal {
    /// The refusal of a 2.0.1 message that the other side does not take (a wrapped Plug & Charge message nobody
    /// unwraps, a Security Whitepaper command a charger does not implement): each answer type's own refusal, with
    /// the reason, instead of a CALLERROR for a message the sender had every right to send.
    static func answer(_ action: String, _ why: Untranslatable) -> JSONValue {
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
