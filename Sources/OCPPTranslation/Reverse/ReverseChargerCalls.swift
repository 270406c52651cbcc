import OCPP

/// Charger-initiated messages: a 2.0.1 CALL becomes a 1.6 CALL (or is answered by the relay).
extension ReverseRules {
    func answer(_ call: RPCFrame.Call, _ io: inout Effects<Self>, _ payload: JSONValue = .object([])) {
        io.reply(to: .charger, call.messageID, payload)
    }

    // MARK: Steps

    mutating func bootNotification(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
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
        if state.boot != boot {
            state.boot = boot
            markChanged()
        }
        io.forward(call, as: "BootNotification", boot, .boot)
    }

    mutating func statusNotification(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let evseId = call.payload["evseId"]?.intValue ?? 0
        let connector = tables.topology.connector(evseId: evseId, connectorId: call.payload["connectorId"]?.intValue)
        let status = call.payload["connectorStatus"]?.stringValue ?? "Available"
        if state.connectorStatus[String(connector)] != status {
            state.connectorStatus[String(connector)] = status
            markChanged()
        }
        // The backend answers the charger when the synthesised 1.6 status changed; otherwise the relay does.
        guard let message = statusChange(connector, timestamp: call.payload["timestamp"]) else {
            answer(call, &io)
            return
        }
        io.forward(call, as: "StatusNotification", message, .empty)
    }

    mutating func authorize(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let token = call.payload["idToken"], let idTag = idTag(for: token, action: call.action, &io) else {
            throw Untranslatable(
                message: "a token of type NoAuthorization has no 1.6 idTag (tokens.yaml free_vend_id_tag)"
            )
        }
        let plain = JSONValue.object([(key: "idTag", value: .string(idTag))])
        if isContractAuthorization(call.payload) {
            // Wrapped whole; should the backend not take it, the plain Authorize follows.
            let wrapped = PlugAndCharge.wrap(call.action, call.payload)
            return io.forward(call, as: "DataTransfer", wrapped, .plugAndCharge(fallback: plain))
        }
        if call.payload["certificate"] != nil || call.payload["iso15118CertificateHashData"] != nil {
            io.note(.lossy, call.action, "the contract certificate data cannot reach a 1.6 backend")
        }
        io.forward(call, as: "Authorize", plain, .authorize)
    }

    /// A contract Authorize the backend did not take wrapped: it goes as a plain Authorize (the contract data lost).
    mutating func plainAuthorize(
        _ chargerID: String,
        _ payload: JSONValue,
        because why: String,
        _ io: inout Effects<Self>
    ) {
        io.note(.lossy, "Authorize", "\(why); sent as a plain Authorize without the contract's certificate data")
        sendUpstream(
            "Authorize",
            payload,
            answering: Caller(messageID: chargerID, action: "Authorize"),
            .authorize,
            &io
        )
    }

    mutating func meterValues(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let evseId = call.payload["evseId"]?.intValue ?? 0
        let open = state.transactions.last { $0.evseId == evseId && $0.window == .open && evseId > 0 }
        let connector = open.flatMap(connector(of:)) ?? tables.topology.connector(evseId: evseId, connectorId: nil)
        let values = meterValues16(call.payload["meterValue"], action: call.action, &io)
        guard !values.isEmpty else {
            answer(call, &io)
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
            if answering == nil { answer(call, &io) }
            sendTransactionMessage("MeterValues", payload, of: open, answering: answering, &io)
        } else {
            io.forward(call, as: "MeterValues", payload, .empty)
        }
    }

    mutating func logStatus(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        if securityLogStatus(call, &io) { return }
        let status = call.payload["status"]?.stringValue ?? ""
        if let requestId = call.payload["requestId"]?.intValue, requestId != state.logRequestId {
            answer(call, &io)
            io.note(.lossy, call.action, "requestId \(requestId) is not the backend's GetDiagnostics; not forwarded")
            return
        }
        guard let mapped = tables.enumMap(.logStatus201To16).map(status) else {
            answer(call, &io)
            io.note(.lossy, call.action, "\(status) has no 1.6 DiagnosticsStatus; not forwarded")
            return
        }
        io.forward(
            call,
            as: "DiagnosticsStatusNotification",
            .object([(key: "status", value: .string(mapped))]),
            .empty
        )
    }

    mutating func firmwareStatus(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        if signedFirmwareStatus(call, &io) { return }
        let status = call.payload["status"]?.stringValue ?? ""
        guard let mapped = tables.enumMap(.firmwareStatus201To16).map(status) else {
            answer(call, &io)
            io.note(.lossy, call.action, "\(status) has no 1.6 FirmwareStatus; not forwarded")
            return
        }
        io.forward(call, as: "FirmwareStatusNotification", .object([(key: "status", value: .string(mapped))]), .empty)
    }

    /// Availability states and problems become 1.6 StatusNotifications (status and errorCode); the relay
    /// answers the charger itself.
    mutating func notifyEvent(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        answer(call, &io)
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
                if state.connectorStatus[key] != status {
                    state.connectorStatus[key] = status
                    markChanged()
                }
                if let message = statusChange(connector, timestamp: timestamp) {
                    sendUpstream("StatusNotification", message, .relay, &io)
                }
                continue
            }
            guard ["Problem", "Tripped", "Overload", "Operated", "SignalStrength"].contains(variable) else {
                io.note(.lossy, call.action, "\(component).\(variable) has no 1.6 counterpart; not forwarded")
                continue
            }
            let cleared = event["cleared"]?.boolValue == true || value.lowercased() == "false"
            let code = tables.enumMap(.errorCode201To16).map("\(component).\(variable)") ?? "OtherError"
            if cleared {
                guard state.connectorErrors[key] != nil else { continue }
                state.connectorErrors[key] = nil
            } else {
                state.connectorErrors[key] = code
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
            state.reportedStatus[key] = message["status"]?.stringValue
            sendUpstream("StatusNotification", message, .relay, &io)
        }
    }

    // MARK: Results

    mutating func upstreamResult(
        _ call: SentCall<UpstreamContext>,
        _ payload: JSONValue,
        _ io: inout Effects<Self>
    ) {
        if case .transaction(let transaction) = call.context {
            delivered(call.id)
            if call.action == "StartTransaction", let transaction { transactionStarted(transaction, payload, &io) }
        }
        guard let caller = call.caller else { return }  // the relay's own, or an outbox message
        let (chargerID, action) = (caller.messageID, caller.action)
        let result: JSONValue
        switch call.context {
        case .relay, .transaction:
            return
        case .empty, .inStep:
            result = .object([])
        case .boot:
            let status = payload["status"]?.stringValue ?? "Rejected"
            if state.bootAccepted != (status == "Accepted") {
                state.bootAccepted = status == "Accepted"
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
                return plainAuthorize(chargerID, fallback, because: "the backend: \(why.message)", &io)
            }
            result = PlugAndCharge.answer(unwrapped, to: action, from: "the backend", &io)
        case .generic(let mapping):
            return answerByFieldRules(mapping, payload, to: caller, on: .charger, &io)
        }
        io.reply(to: .charger, chargerID, result)
    }

    // MARK: Tokens

    /// The 1.6 idTag of a 2.0.1 token: itself when it fits 20 characters, else a stable alias (never a
    /// truncation: two tokens could then bill one account); `nil` for NoAuthorization without a free-vend idTag.
    mutating func idTag(for token: JSONValue, action: String, _ io: inout Effects<Self>) -> String? {
        let value = token["idToken"]?.stringValue ?? ""
        let type = token["type"]?.stringValue ?? "ISO14443"
        if type == "NoAuthorization" || value.isEmpty { return tables.freeVendIdTag }
        if value.count <= 20 {
            if state.tokenTypes[value] != type {
                state.tokenTypes[value] = type
                markChanged()
            }
            return value
        }
        let alias = TokenAlias.make(type: type, idToken: value) { [aliases = state.aliases] in
            aliases[$0].map { ($0.idToken, $0.type) }
        }
        if state.aliases[alias] == nil {
            state.aliases[alias] = .init(idToken: value, type: type)
            markChanged()
            io.note(
                .lossy,
                action,
                "a \(value.count)-character \(type) token is \(alias) for the 1.6 backend (provision the alias there)"
            )
        }
        return alias
    }

    /// The 2.0.1 token for a 1.6 idTag from the backend: an alias's token, else the type last seen for it, else
    /// `fallback` (Central for remote starts) or the table's rules.
    func token(for idTag: String, fallback: String? = nil) -> JSONValue {
        if let aliased = state.aliases[idTag] {
            return .object([
                (key: "idToken", value: .string(aliased.idToken)), (key: "type", value: .string(aliased.type)),
            ])
        }
        let type = state.tokenTypes[idTag] ?? fallback ?? tables.tokenTypes.type(of: idTag)
        return .object([(key: "idToken", value: .string(idTag)), (key: "type", value: .string(type))])
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
