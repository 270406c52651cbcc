import OCPP

/// Backend-initiated messages: a 2.0.1 CALL becomes a 1.6 CALL, or the relay answers it.
extension ForwardRules {
    /// Answers the backend with a status the relay decides (a rejection it need not ask the charger about).
    func answer(
        _ call: RPCFrame.Call,
        status: String,
        reason: String? = nil,
        info: String = "",
        _ io: inout Effects<Self>
    ) {
        var payload = JSONValue.object([(key: "status", value: .string(status))])
        if let reason { payload.set("statusInfo", Refusal.statusInfo(reason, info)) }
        io.reply(to: .upstream, call.messageID, payload)
        if let reason {
            io.note(.untranslatable, call.action, "answered \(status) (\(reason)): \(info)")
        }
    }

    private func connector(evse: JSONValue?) -> Int {
        guard let evse, let id = evse["id"]?.intValue else { return 0 }
        return tables.topology.connector(evseId: id, connectorId: evse["connectorId"]?.intValue)
    }

    mutating func requestStartTransaction(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let p = call.payload
        guard let token = p.value(at: "idToken.idToken")?.stringValue, let remoteStartId = p["remoteStartId"]?.intValue
        else {
            throw Untranslatable(message: "idToken and remoteStartId are required")
        }
        guard token.count <= 20 else {
            answer(
                call,
                status: "Rejected",
                reason: "InvalidIdToken",
                info: "a 1.6 idTag has at most 20 characters",
                &io
            )
            return
        }
        let type = p.value(at: "idToken.type")?.stringValue ?? tokenType(token)
        let connector = p["evseId"]?.intValue.map { tables.topology.connector(evseId: $0, connectorId: nil) }
        var payload = JSONValue.object(omittingNil: [
            "connectorId": connector.map(JSONValue.int), "idTag": .string(token),
        ])
        if let profile = p["chargingProfile"] {
            payload.set("chargingProfile", try chargingProfile16(profile, action: call.action, &io))
        }
        state.tokenTypes[token] = type
        state.pendingRemoteStarts.removeAll { $0.remoteStartId == remoteStartId }
        state.pendingRemoteStarts.append(
            .init(remoteStartId: remoteStartId, idTag: token, tokenType: type, connector: connector)
        )
        markChanged()
        io.toCharger(call, as: "RemoteStartTransaction", payload, .requestStart(remoteStartId: remoteStartId))
    }

    mutating func requestStopTransaction(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard let id = call.payload["transactionId"]?.stringValue else {
            throw Untranslatable(message: "transactionId is required")
        }
        guard let transaction = state.transaction(id: id), !transaction.ended else {
            answer(call, status: "Rejected", reason: "UnknownTransaction", info: "no open transaction \(id)", &io)
            return
        }
        io.toCharger(
            call,
            as: "RemoteStopTransaction",
            .object([(key: "transactionId", value: .number(String(transaction.number)))]),
            .statusMap(nil)
        )
    }

    mutating func reset(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard call.payload["evseId"] == nil else {
            answer(call, status: "Rejected", reason: "NoEvseReset", info: "a 1.6 charger resets as a whole", &io)
            return
        }
        let type = call.payload["type"]?.stringValue ?? ""
        let type16 = try tables.map(
            call.payload["type"],
            through: .resetType201To16,
            or: "Reset type must be Immediate or OnIdle"
        )
        if type == "OnIdle" && state.transactions.contains(where: { !$0.ended }) {
            state.scheduledReset = type16
            markChanged()
            answer(call, status: "Scheduled", &io)
            return
        }
        state.nextBootReason = "RemoteReset"
        markChanged()
        io.toCharger(call, as: "Reset", .object([(key: "type", value: .string(type16))]), .reset)
    }

    mutating func changeAvailability(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard let status = call.payload["operationalStatus"] else {
            throw Untranslatable(message: "operationalStatus is required")
        }
        let payload = JSONValue.object([
            (key: "connectorId", value: .int(connector(evse: call.payload["evse"]))), (key: "type", value: status),
        ])
        io.toCharger(call, as: "ChangeAvailability", payload, .statusMap(nil))
    }

    mutating func unlockConnector(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard let evseId = call.payload["evseId"]?.intValue else { throw Untranslatable(message: "evseId is required") }
        let connector = tables.topology.connector(evseId: evseId, connectorId: call.payload["connectorId"]?.intValue)
        io.toCharger(
            call,
            as: "UnlockConnector",
            .object([(key: "connectorId", value: .int(connector))]),
            .statusMap(.unlockStatus16To201)
        )
    }

    mutating func triggerMessage(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let requested = call.payload["requestedMessage"]?.stringValue else {
            throw Untranslatable(message: "requestedMessage is required")
        }
        if securityTrigger(call, requested, &io) { return }
        guard let message16 = tables.enumMap(.triggerMessage201To16).map(requested) else {
            answer(call, status: "NotImplemented", &io)
            return
        }
        if message16 == "BootNotification" {
            state.nextBootReason = "Triggered"
            markChanged()
        }
        let target = connector(evse: call.payload["evse"])
        let connectorField: JSONValue? = target > 0 ? JSONValue.int(target) : nil
        let payload = JSONValue.object(omittingNil: [
            "requestedMessage": .string(message16), "connectorId": connectorField,
        ])
        io.toCharger(call, as: "TriggerMessage", payload, .statusMap(nil))
    }

    mutating func getCompositeSchedule(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard let evseId = call.payload["evseId"]?.intValue, let duration = call.payload["duration"]?.intValue else {
            throw Untranslatable(message: "evseId and duration are required")
        }
        let payload = JSONValue.object(omittingNil: [
            "connectorId": .int(tables.topology.connector(evseId: evseId, connectorId: nil)),
            "duration": .int(duration),
            "chargingRateUnit": call.payload["chargingRateUnit"],
        ])
        io.toCharger(
            call,
            as: "GetCompositeSchedule",
            payload,
            .getCompositeSchedule(evseId: evseId, duration: duration)
        )
    }

    mutating func sendLocalList(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let p = call.payload
        guard let version = p["versionNumber"], let updateType = p["updateType"] else {
            throw Untranslatable(message: "versionNumber and updateType are required")
        }
        var entries: [JSONValue] = []
        for entry in p["localAuthorizationList"]?.arrayValue ?? [] {
            guard let token = entry.value(at: "idToken.idToken")?.stringValue else { continue }
            guard token.count <= 20 else {
                io.note(
                    .lossy,
                    call.action,
                    "token \(token.prefix(8))… is longer than 20 characters; left out of the 1.6 list"
                )
                continue
            }
            if let type = entry.value(at: "idToken.type")?.stringValue { state.tokenTypes[token] = type }
            entries.append(
                .object(omittingNil: ["idTag": .string(token), "idTagInfo": idTagInfo(entry["idTokenInfo"])])
            )
        }
        markChanged()
        var payload = JSONValue.object([(key: "listVersion", value: version), (key: "updateType", value: updateType)])
        if p["localAuthorizationList"] != nil { payload.set("localAuthorizationList", .array(entries)) }
        io.toCharger(call, as: "SendLocalList", payload, .statusMap(.sendLocalListStatus16To201))
    }

    mutating func getLog(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let p = call.payload
        guard p["logType"]?.stringValue == "DiagnosticsLog" else { return try securityLog(call, &io) }
        guard let location = p.value(at: "log.remoteLocation"), let requestId = p["requestId"]?.intValue else {
            throw Untranslatable(message: "log.remoteLocation and requestId are required")
        }
        state.logRequestId = requestId
        markChanged()
        let payload = JSONValue.object(omittingNil: [
            "location": location, "retries": p["retries"], "retryInterval": p["retryInterval"],
            "startTime": p.value(at: "log.oldestTimestamp"), "stopTime": p.value(at: "log.latestTimestamp"),
        ])
        io.toCharger(call, as: "GetDiagnostics", payload, .getLog)
    }

    mutating func updateFirmware(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let p = call.payload
        guard let location = p.value(at: "firmware.location"), let retrieve = p.value(at: "firmware.retrieveDateTime"),
            let requestId = p["requestId"]?.intValue
        else {
            throw Untranslatable(message: "firmware.location, firmware.retrieveDateTime and requestId are required")
        }
        state.firmwareRequestId = requestId
        state.nextBootReason = "FirmwareUpdate"
        markChanged()
        if p.value(at: "firmware.signature") != nil, p.value(at: "firmware.signingCertificate") != nil {
            return signedUpdateFirmware(call, requestId: requestId, &io)
        }
        for lost in ["installDateTime", "signingCertificate", "signature"] where p.value(at: "firmware.\(lost)") != nil
        {
            io.note(.lossy, call.action, "firmware.\(lost) has no 1.6 field")
        }
        let payload = JSONValue.object(omittingNil: [
            "location": location, "retrieveDate": retrieve, "retries": p["retries"],
            "retryInterval": p["retryInterval"],
        ])
        io.toCharger(call, as: "UpdateFirmware", payload, .updateFirmware)
    }

    func getTransactionStatus(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let asked = call.payload["transactionId"]?.stringValue
        // Whether TransactionEvents (of the transaction asked about, or of any) still wait to be delivered.
        let queued = io.upstream.contains { sent in
            sent.action == "TransactionEvent"
                && (asked == nil || sent.payload.value(at: "transactionInfo.transactionId")?.stringValue == asked)
        }
        var payload = JSONValue.object([(key: "messagesInQueue", value: .bool(queued))])
        if let id = asked {
            let open = state.transaction(id: id).map { !$0.ended } ?? false
            payload.set("ongoingIndicator", .bool(open))
        }
        io.reply(to: .upstream, call.messageID, payload)
    }

    /// The charger answered a CALL the relay sent with a CALLERROR: fan-out jobs turn a failed item into a failed
    /// entry, a Plug & Charge or Whitepaper command the charger does not implement gets the message's own refusal;
    /// `false` for any other (the engine passes the error on).
    mutating func chargerError(
        _ call: SentCall<ChargerContext>,
        _ error: RPCFrame.CallError,
        _ io: inout Effects<Self>
    ) -> Bool {
        switch call.context {
        case .setVariables(let job):
            continueSetVariables(job, itemStatus: "Rejected", &io)
        case .certificates(let job):
            continueCertificateQuery(job, answer: nil, &io)
        case .plugAndCharge,
            .passthrough where ["NotImplemented", "NotSupported"].contains(error.errorCode):
            // A charger without Plug & Charge or the Security Whitepaper: the message's own refusal.
            let why = Untranslatable(message: "the charger answered \(error.errorCode)", reasonCode: error.errorCode)
            if let caller = call.caller {
                io.reply(to: .upstream, caller.messageID, Refusal.answer(caller.action, why))
            }
        default:
            return false
        }
        return true
    }

    /// The charger answered a CALL the relay sent for the backend.
    mutating func chargerResult(_ call: SentCall<ChargerContext>, _ payload: JSONValue, _ io: inout Effects<Self>) {
        guard let caller = call.caller else { return }  // the relay's own (a scheduled Reset)
        let upstreamID = caller.messageID
        let action = caller.action
        let reply: JSONValue
        switch call.context {
        case .generic(let mapping), .reservation(let mapping, _):
            if case .reservation(_, let change) = call.context {
                reservationAnswered(change, status: payload["status"]?.stringValue)
            }
            return answerByFieldRules(mapping, payload, to: caller, on: .upstream, &io)
        case .statusMap(let name):
            let status = payload["status"]?.stringValue ?? "Rejected"
            reply = .object([
                (
                    key: "status",
                    value: .string(name.map { tables.enumMap($0).map(status) ?? "Rejected" } ?? status)
                )
            ])
        case .requestStart(let remoteStartId):
            let status = payload["status"]?.stringValue ?? "Rejected"
            if status != "Accepted" {
                state.pendingRemoteStarts.removeAll { $0.remoteStartId == remoteStartId }
                markChanged()
            }
            reply = .object([(key: "status", value: .string(status))])
        case .reset:
            reply = .object([(key: "status", value: .string(payload["status"]?.stringValue ?? "Rejected"))])
        case .getVariables(let job):
            reply = finishGetVariables(job, payload)
        case .setVariables(let job):
            continueSetVariables(
                job,
                itemStatus: payload["status"]?.stringValue.flatMap {
                    tables.enumMap(.changeConfigurationStatus16To201).map($0)
                } ?? "Rejected",
                &io
            )
            return
        case .baseReport(let requestId):
            sendReport(requestId: requestId, configuration: payload, &io)
            return
        case .getCompositeSchedule(let evseId, let duration):
            reply = compositeSchedule(payload, evseId: evseId, duration: duration)
        case .setChargingProfile(let evseId, let profile):
            let status =
                payload["status"]?.stringValue.flatMap {
                    tables.enumMap(.setChargingProfileStatus16To201).map($0)
                } ?? "Rejected"
            if status == "Accepted" {
                state.chargingProfiles.removeAll { $0.profile["id"] == profile["id"] }
                state.chargingProfiles.append(.init(evseId: evseId, profile: profile))
                markChanged()
            }
            reply = .object([(key: "status", value: .string(status))])
        case .clearChargingProfile(let request):
            let status = payload["status"]?.stringValue ?? "Unknown"
            if status == "Accepted" {
                state.chargingProfiles.removeAll { Self.matches($0, clear: request) }
                markChanged()
            }
            reply = .object([(key: "status", value: .string(status))])
        case .getLog:
            reply = .object(omittingNil: ["status": .string("Accepted"), "filename": payload["fileName"]])
        case .updateFirmware:
            reply = .object([(key: "status", value: .string("Accepted"))])
        case .passthrough:
            reply = payload
        case .plugAndCharge:
            reply = PlugAndCharge.answer(
                PlugAndCharge.unwrapAnswer(payload),
                to: action,
                from: "the charger",
                &io
            )
        case .certificates(let job):
            continueCertificateQuery(job, answer: payload, &io)
            return
        }
        io.reply(to: .upstream, upstreamID, reply)
    }

    private func compositeSchedule(_ payload: JSONValue, evseId: Int, duration: Int) -> JSONValue {
        let status = payload["status"]?.stringValue ?? "Rejected"
        guard status == "Accepted", let schedule = payload["chargingSchedule"], let unit = schedule["chargingRateUnit"],
            let periods = schedule["chargingSchedulePeriod"]
        else {
            return .object([(key: "status", value: .string(status))])
        }
        return .object([
            (key: "status", value: .string(status)),
            (
                key: "schedule",
                value: .object([
                    (key: "evseId", value: .int(evseId)),
                    (key: "duration", value: schedule["duration"] ?? .int(duration)),
                    (
                        key: "scheduleStart",
                        value: payload["scheduleStart"] ?? schedule["startSchedule"] ?? .string(now())
                    ),
                    (key: "chargingRateUnit", value: unit),
                    (key: "chargingSchedulePeriod", value: periods),
                ])
            ),
        ])
    }
}
