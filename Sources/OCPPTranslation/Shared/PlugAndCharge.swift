import OCPP

/// The OCA's "Using ISO 15118 Plug & Charge with OCPP 1.6": 2.0.1 Plug & Charge messages carried by 1.6
/// DataTransfer, `vendorId` org.openchargealliance.iso15118pnc, `messageId` the 2.0.1 action, `data` the 2.0.1
/// payload as JSON text, and the answer's `data` the 2.0.1 answer as JSON text (MaEVe's `routing.go` does the same).
public enum PlugAndCharge {
    public static let vendorId = "org.openchargealliance.iso15118pnc"
    /// The messages a charger sends this way.
    static let chargerMessages: Set<String> = [
        "Authorize", "GetCertificateStatus", "SignCertificate", "Get15118EVCertificate",
    ]
    /// The messages a backend sends this way.
    static let backendMessages: Set<String> = [
        "CertificateSigned", "InstallCertificate", "DeleteCertificate", "GetInstalledCertificateIds", "TriggerMessage",
    ]

    /// The 2.0.1 message a DataTransfer carries, or `nil` when it carries none of `messages` (another vendor, an
    /// unknown messageId): such a DataTransfer is translated as any other.
    static func unwrap(
        _ dataTransfer: JSONValue,
        messages: Set<String>
    ) throws(Untranslatable) -> (action: String, payload: JSONValue)? {
        guard dataTransfer["vendorId"]?.stringValue == vendorId, let action = dataTransfer["messageId"]?.stringValue,
            messages.contains(action)
        else { return nil }
        guard let text = dataTransfer["data"]?.stringValue, let payload = try? JSONParser.parse(text),
            case .object = payload
        else {
            throw Untranslatable(
                message: "Plug & Charge \(action): data is not the JSON text of a 2.0.1 \(action) request",
                reasonCode: "InvalidPnCData"
            )
        }
        return (action, payload)
    }

    /// The DataTransfer request carrying a 2.0.1 message.
    static func wrap(_ action: String, _ payload: JSONValue) -> JSONValue {
        .object([
            (key: "vendorId", value: .string(vendorId)),
            (key: "messageId", value: .string(action)),
            (key: "data", value: .string(payload.jsonText)),
        ])
    }

    /// The DataTransfer answer carrying a 2.0.1 answer.
    static func wrapAnswer(_ payload: JSONValue) -> JSONValue {
        .object([(key: "status", value: .string("Accepted")), (key: "data", value: .string(payload.jsonText))])
    }

    /// The 2.0.1 answer a DataTransfer answer carries, or why there is none (the peer does not speak the
    /// wrapping: UnknownVendorId, UnknownMessageId, Rejected, or data that is not a JSON object).
    static func unwrapAnswer(_ answer: JSONValue) -> Result<JSONValue, Untranslatable> {
        let status = answer["status"]?.stringValue ?? "Rejected"
        guard status == "Accepted" else {
            return .failure(
                Untranslatable(message: "the Plug & Charge DataTransfer was answered \(status)", reasonCode: status)
            )
        }
        guard let text = answer["data"]?.stringValue, let payload = try? JSONParser.parse(text),
            case .object = payload
        else {
            return .failure(
                Untranslatable(message: "the Plug & Charge answer carries no JSON object", reasonCode: "InvalidPnCData")
            )
        }
        return .success(payload)
    }

    /// What the sender of a wrapped message is told: the 2.0.1 answer inside, or (noted) the message's refusal.
    static func answer(
        _ unwrapped: Result<JSONValue, Untranslatable>,
        to action: String,
        from peer: String,
        _ notes: inout some TranslationNotes
    ) -> JSONValue {
        switch unwrapped {
        case .success(let answer): return answer
        case .failure(let why):
            notes.note(.untranslatable, action, "\(peer): \(why.message)")
            return Refusal.answer(action, why)
        }
    }
}
