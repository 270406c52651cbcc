import OCPP

/// The 1.6 Security Whitepaper and Plug & Charge over 1.6, for a 2.0.1 charger on a 1.6 backend
/// (`ocpp-mapping.md` §6.1, §6.3): the charger's security messages reach a backend that implements the Whitepaper
/// (``TranslationOptions/upstreamSecurity``), its Plug & Charge messages go wrapped in DataTransfers to one that
/// speaks that (``TranslationOptions/upstreamPlugAndCharge``); the backend's Whitepaper commands and wrapped Plug &
/// Charge messages become the 2.0.1 messages they are.
extension ReverseRules {
    // MARK: From the charger

    /// SecurityEventNotification: the Whitepaper's has the same fields; without it the relay answers.
    mutating func securityEvent(
        _ call: RPCFrame.Call,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard options.upstreamSecurity else {
            answer(call, &io)
            io.note(
                .lossy,
                call.action,
                "\(call.payload["type"]?.stringValue ?? "?") recorded, not forwarded: the backend does not implement the 1.6 Security Whitepaper (upstream_extensions)"
            )
            return
        }
        try translateByFieldRules(call, mapping, from: .charger, &io)
    }

    /// SignCertificate: the station's own certificate through the Whitepaper's SignCertificate, a V2G certificate
    /// through Plug & Charge; refused when the backend has neither.
    mutating func signCertificate(
        _ call: RPCFrame.Call,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        if call.payload["certificateType"]?.stringValue == "V2GCertificate" { return plugAndCharge(call, &io) }
        guard options.upstreamSecurity else {
            return refuseLocally(
                call,
                "NoSecurityExtension",
                "the backend does not implement the 1.6 Security Whitepaper",
                &io
            )
        }
        try translateByFieldRules(call, mapping, from: .charger, &io)
    }

    /// A Plug & Charge message (Get15118EVCertificate, GetCertificateStatus, a V2G SignCertificate, a contract
    /// Authorize): wrapped in a DataTransfer, or refused when the backend does not speak Plug & Charge.
    mutating func plugAndCharge(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        guard options.upstreamPlugAndCharge else {
            return refuseLocally(call, "NoPlugAndCharge", "the backend does not speak Plug & Charge over 1.6", &io)
        }
        io.forward(
            call,
            as: "DataTransfer",
            PlugAndCharge.wrap(call.action, call.payload),
            .plugAndCharge(fallback: nil)
        )
    }

    /// Whether an Authorize is a contract's (ISO 15118): it then goes wrapped when the backend speaks Plug & Charge.
    func isContractAuthorization(_ payload: JSONValue) -> Bool {
        options.upstreamPlugAndCharge
            && (payload["certificate"] != nil || payload["iso15118CertificateHashData"] != nil
                || payload.value(at: "idToken.type")?.stringValue == "eMAID")
    }

    private func refuseLocally(_ call: RPCFrame.Call, _ code: String, _ why: String, _ io: inout Effects<Self>) {
        let reason = Untranslatable(message: why, reasonCode: code)
        answer(call, &io, Refusal.answer(call.action, reason))
        io.note(.lossy, call.action, "answered by the relay: \(why)")
    }

    /// The LogStatusNotification of the backend's Whitepaper GetLog: the Whitepaper's, with the backend's id.
    mutating func securityLogStatus(_ call: RPCFrame.Call, _ io: inout Effects<Self>) -> Bool {
        guard let ids = state.securityLog, call.payload["requestId"]?.intValue == ids.relay else {
            return false
        }
        let status = call.payload["status"]?.stringValue ?? ""
        guard status != "AcceptedCanceled" else {
            answer(call, &io)
            io.note(.lossy, call.action, "AcceptedCanceled has no 1.6 UploadLogStatus; not forwarded")
            return true
        }
        let payload = JSONValue.object([
            (key: "status", value: .string(status)), (key: "requestId", value: .int(ids.backend)),
        ])
        io.forward(call, as: "LogStatusNotification", payload, .empty)
        return true
    }

    /// The FirmwareStatusNotification of the backend's SignedUpdateFirmware: the Whitepaper's (same 14 values).
    mutating func signedFirmwareStatus(_ call: RPCFrame.Call, _ io: inout Effects<Self>) -> Bool {
        guard let ids = state.signedFirmware, call.payload["requestId"]?.intValue == ids.relay else {
            return false
        }
        let payload = JSONValue.object([
            (key: "status", value: call.payload["status"] ?? .string("Idle")),
            (key: "requestId", value: .int(ids.backend)),
        ])
        io.forward(call, as: "SignedFirmwareStatusNotification", payload, .empty)
        return true
    }

    // MARK: From the backend

    /// The Whitepaper's GetInstalledCertificateIds asks for one type; 2.0.1 for a list and answers a chain.
    mutating func getInstalledCertificateIds(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let mapped = try tables.map(
            call.payload["certificateType"],
            through: .certificateUse16To201,
            or: "certificateType has no 2.0.1 counterpart"
        )
        let request = JSONValue.object([(key: "certificateType", value: .array([.string(mapped)]))])
        io.toCharger(call, as: "GetInstalledCertificateIds", request, .installedCertificates)
    }

    mutating func extendedTriggerMessage(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let mapped = try tables.map(
            call.payload["requestedMessage"],
            through: .extendedTrigger16To201,
            or: "requestedMessage has no 2.0.1 counterpart"
        )
        var request = JSONValue.object([(key: "requestedMessage", value: .string(mapped))])
        if let connector = call.payload["connectorId"]?.intValue, connector > 0 {
            let (evseId, connectorId) = tables.topology.evse(forConnector: connector)
            request.set(
                "evse",
                .object([(key: "id", value: .int(evseId)), (key: "connectorId", value: .int(connectorId))])
            )
        }
        io.toCharger(call, as: "TriggerMessage", request, .status(nil))
    }

    /// The Whitepaper's GetLog has 2.0.1's fields.
    mutating func securityGetLog(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        io.toCharger(call, as: "GetLog", try withRelayRequestId(call, \.securityLog), .logAnswer)
    }

    /// SignedUpdateFirmware is 2.0.1's UpdateFirmware with its signature.
    mutating func signedUpdateFirmware(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        io.toCharger(call, as: "UpdateFirmware", try withRelayRequestId(call, \.signedFirmware), .status(nil))
    }

    /// The backend's request with a requestId of the relay's, remembered beside the backend's: the charger's
    /// notifications can then not be taken for those of the relay's own GetLog or UpdateFirmware (of a
    /// GetDiagnostics, an UpdateFirmware), and go back with the backend's id.
    private mutating func withRelayRequestId(
        _ call: RPCFrame.Call,
        _ origin: WritableKeyPath<ReverseState, ReverseState.RequestIds?>
    ) throws(Untranslatable) -> JSONValue {
        var request = call.payload
        guard let backendId = request["requestId"]?.intValue else {
            throw Untranslatable(message: "requestId is required")
        }
        let relayId = mint(\.lastRequestId)
        state[keyPath: origin] = .init(relay: relayId, backend: backendId)
        request.set("requestId", .int(relayId))
        return request
    }

    /// A backend's DataTransfer: Plug & Charge messages become the 2.0.1 messages they carry (their answers go back
    /// wrapped); any other goes as a DataTransfer by the table's field rules.
    mutating func backendDataTransfer(
        _ call: RPCFrame.Call,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard let (action, payload) = try plugAndChargeMessage(in: call, mapping, from: .upstream, &io) else { return }
        io.toCharger(call, as: action, payload, .plugAndCharge)
    }

    /// The charger's answers to the backend's security and Plug & Charge commands, in 1.6 form.
    static func securityAnswer(_ context: BackendRequest, _ payload: JSONValue) -> JSONValue? {
        switch context {
        case .installedCertificates:
            let hashes = (payload["certificateHashDataChain"]?.arrayValue ?? []).compactMap {
                $0["certificateHashData"]
            }
            return .object(omittingNil: [
                "status": .string(hashes.isEmpty ? "NotFound" : "Accepted"),
                "certificateHashData": hashes.isEmpty ? nil : .array(hashes),
            ])
        case .logAnswer:
            return .object(omittingNil: [
                "status": payload["status"] ?? .string("Rejected"), "filename": payload["filename"],
            ])
        case .plugAndCharge:
            return PlugAndCharge.wrapAnswer(payload)
        default:
            return nil
        }
    }
}
