import OCPP

/// The 1.6 Security Whitepaper and Plug & Charge over 1.6, for a 1.6 charger on a 2.0.1 backend
/// (`ocpp-mapping.md` §2.2, §2.3): certificates, security logs, signed firmware, extended triggers, and the
/// DataTransfers that carry 2.0.1 Plug & Charge messages, unwrapped towards the backend and wrapped towards
/// the charger.
extension ForwardRules {
    /// A charger's DataTransfer: Plug & Charge messages become the 2.0.1 messages they carry; any other goes as a
    /// DataTransfer by the table's field rules.
    mutating func dataTransfer(
        _ call: RPCFrame.Call,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard let (action, payload) = try plugAndChargeMessage(in: call, mapping, from: .charger, &io) else { return }
        // The contract's eMAID is the idTag of the transaction that follows: it keeps its type.
        if action == "Authorize", let token = payload.value(at: "idToken.idToken")?.stringValue,
            let type = payload.value(at: "idToken.type")?.stringValue, state.tokenTypes[token] != type
        {
            state.tokenTypes[token] = type
            markChanged()
        }
        io.forward(call, as: action, payload, .plugAndCharge)
    }

    /// A backend message sent to the charger inside a Plug & Charge DataTransfer.
    mutating func wrapForCharger(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        io.toCharger(call, as: "DataTransfer", PlugAndCharge.wrap(call.action, call.payload), .plugAndCharge)
    }

    mutating func certificateSigned(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let chain = call.payload["certificateChain"] else {
            throw Untranslatable(message: "certificateChain is required")
        }
        if call.payload["certificateType"]?.stringValue == "V2GCertificate" { return wrapForCharger(call, &io) }
        io.toCharger(call, as: "CertificateSigned", .object([(key: "certificateChain", value: chain)]), .passthrough)
    }

    mutating func installCertificate(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let type = call.payload["certificateType"]?.stringValue, let certificate = call.payload["certificate"]
        else { throw Untranslatable(message: "certificateType and certificate are required") }
        guard let type16 = tables.enumMap(.certificateUse201To16).map(type) else {
            return wrapForCharger(call, &io)  // V2G and MO roots: Plug & Charge
        }
        let payload = JSONValue.object([
            (key: "certificateType", value: .string(type16)), (key: "certificate", value: certificate),
        ])
        io.toCharger(call, as: "InstallCertificate", payload, .passthrough)
    }

    /// GetInstalledCertificateIds asks for a list of types; 1.6 for one at a time, and V2G types only through
    /// Plug & Charge: one call per 1.6 type, then one wrapped call for the others, merged into one answer.
    mutating func getInstalledCertificateIds(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let asked =
            call.payload["certificateType"]?.arrayValue?.compactMap(\.stringValue)
            ?? [
                "CSMSRootCertificate", "ManufacturerRootCertificate", "V2GRootCertificate", "MORootCertificate",
                "V2GCertificateChain",
            ]
        let map = tables.enumMap(.certificateUse201To16)
        let native = asked.filter { map.map($0) != nil }
        let wrapped = asked.filter { map.map($0) == nil }
        let job = CertificateQuery(upstreamID: call.messageID, native: native, wrapped: wrapped)
        continueCertificateQuery(job, answer: nil, &io)
    }

    /// Adds the charger's answer to the query in flight and asks the next question, or answers the backend.
    mutating func continueCertificateQuery(
        _ job: CertificateQuery,
        answer: JSONValue?,
        _ io: inout Effects<Self>
    ) {
        var job = job
        switch (job.asking, answer) {
        case (.native(let type), let answer?):
            for hash in answer["certificateHashData"]?.arrayValue ?? [] {
                job.chain.append(
                    .object([(key: "certificateType", value: .string(type)), (key: "certificateHashData", value: hash)])
                )
            }
        case (.wrapped, let answer?):
            if case .success(let inner) = PlugAndCharge.unwrapAnswer(answer) {
                job.chain += inner["certificateHashDataChain"]?.arrayValue ?? []
            }
        default: break
        }
        let caller = Caller(messageID: job.upstreamID, action: "GetInstalledCertificateIds")
        if !job.native.isEmpty {
            let type = job.native.removeFirst()
            job.asking = .native(type)
            let payload = JSONValue.object([
                (key: "certificateType", value: .string(tables.enumMap(.certificateUse201To16).map(type) ?? type))
            ])
            io.sendCharger("GetInstalledCertificateIds", payload, answering: caller, .certificates(job))
        } else if !job.wrapped.isEmpty {
            let payload = PlugAndCharge.wrap(
                "GetInstalledCertificateIds",
                .object([(key: "certificateType", value: .array(job.wrapped.map { .string($0) }))])
            )
            job.wrapped = []
            job.asking = .wrapped
            io.sendCharger("DataTransfer", payload, answering: caller, .certificates(job))
        } else {
            let reply = JSONValue.object(omittingNil: [
                "status": .string(job.chain.isEmpty ? "NotFound" : "Accepted"),
                "certificateHashDataChain": job.chain.isEmpty ? nil : .array(job.chain),
            ])
            io.reply(to: .upstream, job.upstreamID, reply)
        }
    }

    /// TriggerMessage values that only the Security Whitepaper's ExtendedTriggerMessage or Plug & Charge can ask
    /// for; `false` when the value is an ordinary one.
    mutating func securityTrigger(_ call: RPCFrame.Call, _ requested: String, _ io: inout Effects<Self>) -> Bool {
        if requested == "SignV2GCertificate" {
            wrapForCharger(call, &io)
            return true
        }
        guard let extended = tables.enumMap(.extendedTrigger201To16).map(requested) else { return false }
        io.toCharger(
            call,
            as: "ExtendedTriggerMessage",
            .object([(key: "requestedMessage", value: .string(extended))]),
            .passthrough
        )
        return true
    }

    /// GetLog of the security log: the Security Whitepaper's GetLog has the same fields.
    mutating func securityLog(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let p = call.payload
        guard let log = p["log"], let requestId = p["requestId"] else {
            throw Untranslatable(message: "log and requestId are required")
        }
        let payload = JSONValue.object(omittingNil: [
            "logType": .string("SecurityLog"), "requestId": requestId, "log": log, "retries": p["retries"],
            "retryInterval": p["retryInterval"],
        ])
        io.toCharger(call, as: "GetLog", payload, .passthrough)
    }

    /// UpdateFirmware with a signature: the Security Whitepaper's SignedUpdateFirmware has the same fields.
    mutating func signedUpdateFirmware(_ call: RPCFrame.Call, requestId: Int, _ io: inout Effects<Self>) {
        let p = call.payload
        let payload = JSONValue.object(omittingNil: [
            "requestId": .int(requestId), "firmware": p["firmware"], "retries": p["retries"],
            "retryInterval": p["retryInterval"],
        ])
        io.toCharger(call, as: "SignedUpdateFirmware", payload, .passthrough)
    }

}

/// A GetInstalledCertificateIds in progress.
struct CertificateQuery: Sendable {
    enum Asking: Sendable {
        case none
        /// A 1.6 GetInstalledCertificateIds for this 2.0.1 type.
        case native(String)
        /// The wrapped Plug & Charge GetInstalledCertificateIds.
        case wrapped
    }

    var upstreamID: String
    var native: [String]
    var wrapped: [String]
    var asking = Asking.none
    var chain: [JSONValue] = []
}
