import OCPP

/// Charger-initiated messages: a 2.0.1 CALL becomes a 1.6 CALL (or is answered by the relay).
extension ReverseTranslationSession {
    mutating func chargerCall(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) {
        guard let mapping = tableMapping(call, tables.reverseCharger, from: .charger, &out) else { return }
        do throws(Untranslatable) {
            switch mapping.transform {
            case nil:
                let payload = try tables.apply(mapping.request ?? [], to: call.payload, action: call.action, &out)
                forward(call, mapping.action ?? call.action, payload, .generic(mapping), &out)
            case .reverseCharger(let transform):
                switch transform {
                case .bootNotification: try bootNotification(call, &out)
                case .statusNotification: statusNotification(call, &out)
                case .authorize: try authorize(call, &out)
                case .transactionEvent: try transactionEvent(call, &out)
                case .meterValues: try meterValues(call, &out)
                case .logStatusNotification: logStatus(call, &out)
                case .firmwareStatusNotification: firmwareStatus(call, &out)
                case .notifyEvent: notifyEvent(call, &out)
                case .securityEventNotification: try securityEvent(call, mapping, &out)
                case .signCertificate: try signCertificate(call, mapping, &out)
                case .plugAndCharge: plugAndCharge(call, &out)
                }
            case .some(let transform):
                throw Untranslatable(message: "transform \(transform) is not available for 2.0.1 charger messages")
            }
        } catch {
            refuse(call, error, from: .charger, &out)
        }
    }

    /// Sends the translation of a charger CALL; the backend's result answers it.
    mutating func forward(
        _ call: RPCFrame.Call,
        _ action: String,
        _ payload: JSONValue,
        _ context: ChargerAnswer,
        _ out: inout [TranslationOutput]
    ) {
        sendUpstream(action, payload, .answer(chargerID: call.messageID, action: call.action, context: context), &out)
    }

    func answer(_ call: RPCFrame.Call, _ out: inout [TranslationOutput], _ payload: JSONValue = .object([])) {
        out.append(.toCharger(TranslationSession.result(call.messageID, payload)))
    }

    // MARK: Steps

    private mutating func bootNotification(
        _ call: RPCFrame.Call,
        _ out: inout [TranslationOutput]
    ) throws(Untranslatable) {
        let station = call.payload["chargingStation"] ?? .object([])
        let vendor = station["vendorName"]?.stringValue ?? ""
        guard vendor.count <= 20 else {
            throw Untranslatable(
                message: "chargingStation.vendorName is \(vendor.count) characters; 1.6 chargePointVendor allows 20"
            )
        }
        let boot = JSONValue.object(omittingNil: [
            "chargePointVendor": .string(vendor),
            "chargePointModel": station["model"],
            "chargePointSerialNumber": station["serialNumber"],
            "firmwareVersion": station["firmwareVersion"],
            "iccid": station.value(at: "modem.iccid"),
            "imsi": station.value(at: "modem.imsi"),
        ])
        if state.reverse.boot != boot {
            state.reverse.boot = boot
            markChanged()
        }
        forward(call, "BootNotification", boot, .boot, &out)
    }

    private mutating func statusNotification(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) {
        let evseId = call.payload["evseId"]?.intValue ?? 0
        let connector = tables.topology.connector(evseId: evseId, connectorId: call.payload["connectorId"]?.intValue)
        let status = call.payload["connectorStatus"]?.stringValue ?? "Available"
        if state.reverse.connectorStatus[String(connector)] != status {
            state.reverse.connectorStatus[String(connector)] = status
            markChanged()
        }
        // The backend answers the charger when the synthesised 1.6 status changed; otherwise the relay does.
        guard let message = statusChange(connector, timestamp: call.payload["timestamp"]) else {
            answer(call, &out)
            return
        }
        forward(call, "StatusNotification", message, .empty, &out)
    }

    private mutating func authorize(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable) {
        guard let token = call.payload["idToken"], let idTag = idTag(for: token, action: call.action, &out) else {
            throw Untranslatable(
                message: "a token of type NoAuthorization has no 1.6 idTag (tokens.yaml free_vend_id_tag)"
            )
        }
        let plain = JSONValue.object([(key: "idTag", value: .string(idTag))])
        if isContractAuthorization(call.payload) {
            // Wrapped whole; should the backend not take it, the plain Authorize follows.
            let wrapped = PlugAndCharge.wrap(call.action, call.payload)
            return forward(call, "DataTransfer", wrapped, .plugAndCharge(fallback: plain), &out)
        }
        if call.payload["certificate"] != nil || call.payload["iso15118CertificateHashData"] != nil {
            out.append(.note(.lossy, call.action, "the contract certificate data cannot reach a 1.6 backend"))
        }
        forward(call, "Authorize", plain, .authorize, &out)
    }

    /// A contract Authorize the backend did not take wrapped: it goes as a plain Authorize (the contract data lost).
    mutating func plainAuthorize(
        _ chargerID: String,
        _ payload: JSONValue,
        because why: String,
        _ out: inout [TranslationOutput]
    ) {
        out.append(
            .note(.lossy, "Authorize", "\(why); sent as a plain Authorize without the contract's certificate data")
        )
        sendUpstream(
            "Authorize",
            payload,
            .answer(chargerID: chargerID, action: "Authorize", context: .authorize),
            &out
        )
    }

    private mutating func meterValues(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable) {
        let evseId = call.payload["evseId"]?.intValue ?? 0
        let open = state.reverse.transactions.last { $0.evseId == evseId && $0.window == .open && evseId > 0 }
        let connector = open.flatMap(connector(of:)) ?? tables.topology.connector(evseId: evseId, connectorId: nil)
        let values = meterValues16(call.payload["meterValue"], action: call.action, &out)
        guard !values.isEmpty else {
            answer(call, &out)
            return
        }
        var payload = JSONValue.object([
            (key: "connectorId", value: .int(connector)), (key: "meterValue", value: .array(values)),
        ])
        if let open {
            // Clock-aligned data of an open transaction is transaction-related in 1.6: in order, with its id; in
            // step with the backend like the transaction's events, or through the outbox while they are.
            payload.set("transactionId", .int(open.number ?? 0))
            let answering = inStep(open) ? call : nil
            if answering == nil { answer(call, &out) }
            sendUpstream("MeterValues", payload, purpose(open, answering: answering), &out)
        } else {
            forward(call, "MeterValues", payload, .empty, &out)
        }
    }

    private mutating func logStatus(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) {
        if securityLogStatus(call, &out) { return }
        let status = call.payload["status"]?.stringValue ?? ""
        if let requestId = call.payload["requestId"]?.intValue, requestId != state.reverse.logRequestId {
            answer(call, &out)
            out.append(
                .note(.lossy, call.action, "requestId \(requestId) is not the backend's GetDiagnostics; not forwarded")
            )
            return
        }
        guard let mapped = tables.enumMap(.logStatus201To16).map(status) else {
            answer(call, &out)
            out.append(.note(.lossy, call.action, "\(status) has no 1.6 DiagnosticsStatus; not forwarded"))
            return
        }
        forward(call, "DiagnosticsStatusNotification", .object([(key: "status", value: .string(mapped))]), .empty, &out)
    }

    private mutating func firmwareStatus(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) {
        if signedFirmwareStatus(call, &out) { return }
        let status = call.payload["status"]?.stringValue ?? ""
        guard let mapped = tables.enumMap(.firmwareStatus201To16).map(status) else {
            answer(call, &out)
            out.append(.note(.lossy, call.action, "\(status) has no 1.6 FirmwareStatus; not forwarded"))
            return
        }
        forward(call, "FirmwareStatusNotification", .object([(key: "status", value: .string(mapped))]), .empty, &out)
    }

    /// Availability states and problems become 1.6 StatusNotifications (status and errorCode); the relay
    /// answers the charger itself.
    private mutating func notifyEvent(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) {
        answer(call, &out)
        for event in call.payload["eventData"]?.arrayValue ?? [] {
            let component = event.value(at: "component.name")?.stringValue ?? ""
            let variable = event.value(at: "variable.name")?.stringValue ?? ""
            let value = event["actualValue"]?.stringValue ?? ""
            let evseId = event.value(at: "component.evse.id")?.intValue ?? 0
            let connector = tables.topology.connector(
                evseId: evseId,
                connectorId: event.value(at: "component.evse.connectorId")?.intValue
            )
            let key = String(connector)
            let timestamp = event["timestamp"]
            if variable == "AvailabilityState" && (component == "Connector" || component == "ChargingStation") {
                let status = component == "ChargingStation" && value == "Occupied" ? "Available" : value
                if state.reverse.connectorStatus[key] != status {
                    state.reverse.connectorStatus[key] = status
                    markChanged()
                }
                if let message = statusChange(connector, timestamp: timestamp) {
                    sendUpstream("StatusNotification", message, .relay, &out)
                }
                continue
            }
            guard ["Problem", "Tripped", "Overload", "Operated", "SignalStrength"].contains(variable) else {
                out.append(.note(.lossy, call.action, "\(component).\(variable) has no 1.6 counterpart; not forwarded"))
                continue
            }
            let cleared = event["cleared"]?.boolValue == true || value.lowercased() == "false"
            let code = tables.enumMap(.errorCode201To16).map("\(component).\(variable)") ?? "OtherError"
            if cleared {
                guard state.reverse.connectorErrors[key] != nil else { continue }
                state.reverse.connectorErrors[key] = nil
            } else {
                state.reverse.connectorErrors[key] = code
            }
            markChanged()
            var message = statusMessage(connector, status: currentStatus(connector), timestamp: timestamp)
            if !cleared {
                if let techCode = event["techCode"]?.stringValue {
                    message.set("vendorErrorCode", .string(String(techCode.prefix(50))))
                }
                if let techInfo = event["techInfo"]?.stringValue {
                    message.set("info", .string(String(techInfo.prefix(50))))
                }
            }
            state.reverse.reportedStatus[key] = message["status"]?.stringValue
            sendUpstream("StatusNotification", message, .relay, &out)
        }
    }

    // MARK: Results

    mutating func upstreamResult(
        _ entry: CallLane<UpstreamPurpose>.Entry,
        _ payload: JSONValue,
        _ out: inout [TranslationOutput]
    ) {
        switch entry.purpose {
        case .relay:
            break
        case .transaction(let transaction):
            if entry.action == "StartTransaction", let transaction { transactionStarted(transaction, payload, &out) }
        case .answer(let chargerID, let action, let context):
            let result: JSONValue
            switch context {
            case .empty, .inStep:
                result = .object([])
            case .boot:
                let status = payload["status"]?.stringValue ?? "Rejected"
                if state.reverse.bootAccepted != (status == "Accepted") {
                    state.reverse.bootAccepted = status == "Accepted"
                    markChanged()
                }
                result = .object(omittingNil: [
                    "currentTime": payload["currentTime"] ?? .string(now()), "interval": payload["interval"] ?? .int(0),
                    "status": .string(status),
                ])
            case .authorize:
                result = .object(omittingNil: ["idTokenInfo": idTokenInfo(payload["idTagInfo"])])
            case .plugAndCharge(let fallback):
                let unwrapped = PlugAndCharge.unwrapAnswer(payload)
                if let fallback, case .failure(let why) = unwrapped {
                    return plainAuthorize(chargerID, fallback, because: "the backend: \(why.message)", &out)
                }
                result = PlugAndCharge.answer(unwrapped, to: action, from: "the backend", &out)
            case .generic(let mapping):
                do throws(Untranslatable) {
                    result = try tables.apply(mapping.response ?? [], to: payload, action: action, &out)
                } catch {
                    out.append(
                        .toCharger(
                            TranslationSession.callError(chargerID, "PropertyConstraintViolation", error.message)
                        )
                    )
                    out.append(.note(.untranslatable, action, error.message))
                    return
                }
            }
            out.append(.toCharger(TranslationSession.result(chargerID, result)))
        }
    }

    // MARK: Tokens

    /// The 1.6 idTag of a 2.0.1 token: itself when it fits 20 characters, else a stable alias (never a
    /// truncation: two tokens could then bill one account); `nil` for NoAuthorization without a free-vend idTag.
    mutating func idTag(for token: JSONValue, action: String, _ out: inout [TranslationOutput]) -> String? {
        let value = token["idToken"]?.stringValue ?? ""
        let type = token["type"]?.stringValue ?? "ISO14443"
        if type == "NoAuthorization" || value.isEmpty { return tables.freeVendIdTag }
        if value.count <= 20 {
            if state.reverse.tokenTypes[value] != type {
                state.reverse.tokenTypes[value] = type
                markChanged()
            }
            return value
        }
        let alias = Self.alias(type: type, idToken: value, taken: state.reverse.aliases)
        if state.reverse.aliases[alias] == nil {
            state.reverse.aliases[alias] = .init(idToken: value, type: type)
            markChanged()
            out.append(
                .note(
                    .lossy,
                    action,
                    "a \(value.count)-character \(type) token is \(alias) for the 1.6 backend (provision the alias there)"
                )
            )
        }
        return alias
    }

    /// The 2.0.1 token for a 1.6 idTag from the backend: an alias's token, else the type last seen for it, else
    /// `fallback` (Central for remote starts) or the table's rules.
    func token(for idTag: String, fallback: String? = nil) -> JSONValue {
        if let aliased = state.reverse.aliases[idTag] {
            return .object([
                (key: "idToken", value: .string(aliased.idToken)), (key: "type", value: .string(aliased.type)),
            ])
        }
        let type = state.reverse.tokenTypes[idTag] ?? fallback ?? tables.tokenTypes.type(of: idTag)
        return .object([(key: "idToken", value: .string(idTag)), (key: "type", value: .string(type))])
    }

    /// A deterministic alias: "X" and 13 base32 characters of a 64-bit FNV-1a digest of type and token
    /// (another digest character on the rare collision).
    public static func alias(type: String, idToken: String, taken: [String: ReverseState.Token]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var salt = 0
        while true {
            for byte in "\(type):\(idToken):\(salt)".utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0100_0000_01b3
            }
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
            var text = "X"
            var bits = hash
            for _ in 0..<13 {
                text.append(alphabet[Int(bits & 31)])
                bits >>= 5
            }
            if let other = taken[text], other.idToken != idToken || other.type != type {
                salt += 1
                continue
            }
            return text
        }
    }

    /// 1.6 `idTagInfo` → 2.0.1 `idTokenInfo` (the 1.6 statuses are a subset of 2.0.1's).
    func idTokenInfo(_ info: JSONValue?) -> JSONValue? {
        guard let info, let status = info["status"]?.stringValue else { return nil }
        return .object(omittingNil: [
            "status": .string(status),
            "cacheExpiryDateTime": info["expiryDate"],
            "groupIdToken": info["parentIdTag"].map {
                .object([(key: "idToken", value: $0), (key: "type", value: .string("Central"))])
            },
        ])
    }
}
