import OCPP

/// Backend-initiated messages: a 2.0.1 CALL becomes a 1.6 CALL, or the relay answers it.
extension TranslationSession {
    mutating func backendCall(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) {
        guard let mapping = tables.backend[call.action] else {
            out.append(
                .toUpstream(
                    Self.callError(
                        call.messageID,
                        "NotSupported",
                        "\(call.action) is not supported by this OCPP 1.6 charger"
                    )
                )
            )
            out.append(
                .note(.untranslatable, call.action, "no mapping in messages.yaml")
            )
            return
        }
        if let error = mapping.error {
            out.append(
                .toUpstream(
                    Self.callError(call.messageID, error, "\(call.action) is not supported by this OCPP 1.6 charger")
                )
            )
            return
        }
        if let answer = mapping.answer {
            out.append(.toUpstream(Self.result(call.messageID, answer)))
            return
        }
        do throws(Untranslatable) {
            switch mapping.transform {
            case nil:
                let payload = try tables.apply(mapping.request ?? [], to: call.payload, action: call.action, &out)
                toCharger(call, mapping.action ?? call.action, payload, .generic(mapping), &out)
            case .backend(let transform):
                switch transform {
                case .requestStartTransaction: try requestStartTransaction(call, &out)
                case .requestStopTransaction: try requestStopTransaction(call, &out)
                case .reset: try reset(call, &out)
                case .changeAvailability: try changeAvailability(call, &out)
                case .unlockConnector: try unlockConnector(call, &out)
                case .triggerMessage: try triggerMessage(call, &out)
                case .getVariables: getVariables(call, &out)
                case .setVariables: setVariables(call, &out)
                case .getBaseReport: try baseReport(call, &out)
                case .setChargingProfile: try setChargingProfile(call, &out)
                case .getCompositeSchedule: try getCompositeSchedule(call, &out)
                case .sendLocalList: try sendLocalList(call, &out)
                case .getLog: try getLog(call, &out)
                case .updateFirmware: try updateFirmware(call, &out)
                case .getTransactionStatus: getTransactionStatus(call, &out)
                case .clearChargingProfile: try clearChargingProfile(call, &out)
                case .getChargingProfiles: try getChargingProfiles(call, &out)
                case .certificateSigned: try certificateSigned(call, &out)
                case .installCertificate: try installCertificate(call, &out)
                case .getInstalledCertificateIds: getInstalledCertificateIds(call, &out)
                case .reserveNow: try reserveNow(call, mapping, &out)
                case .cancelReservation: try cancelReservation(call, mapping, &out)
                }
            case .some(let transform):
                throw Untranslatable(message: "transform \(transform) is not available for backend messages")
            }
        } catch {
            out.append(.toUpstream(Self.callError(call.messageID, "PropertyConstraintViolation", error.message)))
            out.append(.note(.untranslatable, call.action, error.message))
        }
    }

    mutating func toCharger(
        _ call: RPCFrame.Call,
        _ action: String,
        _ payload: JSONValue,
        _ context: BackendCallContext,
        _ out: inout [TranslationOutput]
    ) {
        sendToCharger(
            action,
            payload,
            ChargerCall(upstreamID: call.messageID, action: call.action, context: context),
            &out
        )
    }

    /// Answers the backend with a status the relay decides (a rejection it need not ask the charger about).
    func answer(
        _ call: RPCFrame.Call,
        status: String,
        reason: String? = nil,
        info: String = "",
        _ out: inout [TranslationOutput]
    ) {
        var payload = JSONValue.object([(key: "status", value: .string(status))])
        if let reason { payload.set("statusInfo", Self.statusInfo(reason, info)) }
        out.append(.toUpstream(Self.result(call.messageID, payload)))
        if let reason {
            out.append(
                .note(.untranslatable, call.action, "answered \(status) (\(reason)): \(info)")
            )
        }
    }

    private func connector(evse: JSONValue?) -> Int {
        guard let evse, let id = evse["id"]?.intValue else { return 0 }
        return tables.topology.connector(evseId: id, connectorId: evse["connectorId"]?.intValue)
    }

    private mutating func requestStartTransaction(
        _ call: RPCFrame.Call,
        _ out: inout [TranslationOutput]
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
                &out
            )
            return
        }
        let type = p.value(at: "idToken.type")?.stringValue ?? tokenType(token)
        let connector = p["evseId"]?.intValue.map { tables.topology.connector(evseId: $0, connectorId: nil) }
        var payload = JSONValue.object(omittingNil: [
            "connectorId": connector.map(JSONValue.int), "idTag": .string(token),
        ])
        if let profile = p["chargingProfile"] {
            payload.set("chargingProfile", try chargingProfile16(profile, action: call.action, &out))
        }
        state.tokenTypes[token] = type
        state.pendingRemoteStarts.removeAll { $0.remoteStartId == remoteStartId }
        state.pendingRemoteStarts.append(
            .init(remoteStartId: remoteStartId, idTag: token, tokenType: type, connector: connector)
        )
        markChanged()
        toCharger(call, "RemoteStartTransaction", payload, .requestStart(remoteStartId: remoteStartId), &out)
    }

    private mutating func requestStopTransaction(
        _ call: RPCFrame.Call,
        _ out: inout [TranslationOutput]
    ) throws(Untranslatable) {
        guard let id = call.payload["transactionId"]?.stringValue else {
            throw Untranslatable(message: "transactionId is required")
        }
        guard let transaction = state.transaction(id: id), !transaction.ended else {
            answer(call, status: "Rejected", reason: "UnknownTransaction", info: "no open transaction \(id)", &out)
            return
        }
        toCharger(
            call,
            "RemoteStopTransaction",
            .object([(key: "transactionId", value: .number(String(transaction.number)))]),
            .statusMap(nil),
            &out
        )
    }

    private mutating func reset(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable) {
        guard call.payload["evseId"] == nil else {
            answer(call, status: "Rejected", reason: "NoEvseReset", info: "a 1.6 charger resets as a whole", &out)
            return
        }
        guard let type = call.payload["type"]?.stringValue,
            let type16 = tables.enumMap(.resetType201To16).map(type)
        else {
            throw Untranslatable(message: "Reset type must be Immediate or OnIdle")
        }
        if type == "OnIdle" && state.transactions.contains(where: { !$0.ended }) {
            state.scheduledReset = type16
            markChanged()
            answer(call, status: "Scheduled", &out)
            return
        }
        state.nextBootReason = "RemoteReset"
        markChanged()
        toCharger(call, "Reset", .object([(key: "type", value: .string(type16))]), .reset, &out)
    }

    private mutating func changeAvailability(
        _ call: RPCFrame.Call,
        _ out: inout [TranslationOutput]
    ) throws(Untranslatable) {
        guard let status = call.payload["operationalStatus"] else {
            throw Untranslatable(message: "operationalStatus is required")
        }
        let payload = JSONValue.object([
            (key: "connectorId", value: .int(connector(evse: call.payload["evse"]))), (key: "type", value: status),
        ])
        toCharger(call, "ChangeAvailability", payload, .statusMap(nil), &out)
    }

    private mutating func unlockConnector(
        _ call: RPCFrame.Call,
        _ out: inout [TranslationOutput]
    ) throws(Untranslatable) {
        guard let evseId = call.payload["evseId"]?.intValue else { throw Untranslatable(message: "evseId is required") }
        let connector = tables.topology.connector(evseId: evseId, connectorId: call.payload["connectorId"]?.intValue)
        toCharger(
            call,
            "UnlockConnector",
            .object([(key: "connectorId", value: .int(connector))]),
            .statusMap(.unlockStatus16To201),
            &out
        )
    }

    private mutating func triggerMessage(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable)
    {
        guard let requested = call.payload["requestedMessage"]?.stringValue else {
            throw Untranslatable(message: "requestedMessage is required")
        }
        if securityTrigger(call, requested, &out) { return }
        guard let message16 = tables.enumMap(.triggerMessage201To16).map(requested) else {
            answer(call, status: "NotImplemented", &out)
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
        toCharger(call, "TriggerMessage", payload, .statusMap(nil), &out)
    }

    private mutating func getCompositeSchedule(
        _ call: RPCFrame.Call,
        _ out: inout [TranslationOutput]
    ) throws(Untranslatable) {
        guard let evseId = call.payload["evseId"]?.intValue, let duration = call.payload["duration"]?.intValue else {
            throw Untranslatable(message: "evseId and duration are required")
        }
        let payload = JSONValue.object(omittingNil: [
            "connectorId": .int(tables.topology.connector(evseId: evseId, connectorId: nil)),
            "duration": .int(duration),
            "chargingRateUnit": call.payload["chargingRateUnit"],
        ])
        toCharger(
            call,
            "GetCompositeSchedule",
            payload,
            .getCompositeSchedule(evseId: evseId, duration: duration),
            &out
        )
    }

    private mutating func sendLocalList(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable)
    {
        let p = call.payload
        guard let version = p["versionNumber"], let updateType = p["updateType"] else {
            throw Untranslatable(message: "versionNumber and updateType are required")
        }
        var entries: [JSONValue] = []
        for entry in p["localAuthorizationList"]?.arrayValue ?? [] {
            guard let token = entry.value(at: "idToken.idToken")?.stringValue else { continue }
            guard token.count <= 20 else {
                out.append(
                    .note(
                        .lossy,
                        call.action,
                        "token \(token.prefix(8))… is longer than 20 characters; left out of the 1.6 list"
                    )
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
        toCharger(call, "SendLocalList", payload, .statusMap(.sendLocalListStatus16To201), &out)
    }

    private mutating func getLog(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable) {
        let p = call.payload
        guard p["logType"]?.stringValue == "DiagnosticsLog" else { return try securityLog(call, &out) }
        guard let location = p.value(at: "log.remoteLocation"), let requestId = p["requestId"]?.intValue else {
            throw Untranslatable(message: "log.remoteLocation and requestId are required")
        }
        state.logRequestId = requestId
        markChanged()
        let payload = JSONValue.object(omittingNil: [
            "location": location, "retries": p["retries"], "retryInterval": p["retryInterval"],
            "startTime": p.value(at: "log.oldestTimestamp"), "stopTime": p.value(at: "log.latestTimestamp"),
        ])
        toCharger(call, "GetDiagnostics", payload, .getLog, &out)
    }

    private mutating func updateFirmware(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable)
    {
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
            return signedUpdateFirmware(call, requestId: requestId, &out)
        }
        for lost in ["installDateTime", "signingCertificate", "signature"] where p.value(at: "firmware.\(lost)") != nil
        {
            out.append(
                .note(.lossy, call.action, "firmware.\(lost) has no 1.6 field")
            )
        }
        let payload = JSONValue.object(omittingNil: [
            "location": location, "retrieveDate": retrieve, "retries": p["retries"],
            "retryInterval": p["retryInterval"],
        ])
        toCharger(call, "UpdateFirmware", payload, .updateFirmware, &out)
    }

    private func getTransactionStatus(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) {
        let asked = call.payload["transactionId"]?.stringValue
        let queued = transactionEventsUndelivered(transactionID: asked)
        var payload = JSONValue.object([(key: "messagesInQueue", value: .bool(queued))])
        if let id = asked {
            let open = state.transaction(id: id).map { !$0.ended } ?? false
            payload.set("ongoingIndicator", .bool(open))
        }
        out.append(.toUpstream(Self.result(call.messageID, payload)))
    }

    /// The charger answered a CALL the relay sent for the backend.
    mutating func chargerResult(_ call: ChargerCall, _ result: CallOutcome, _ out: inout [TranslationOutput]) {
        let payload: JSONValue
        switch result {
        case .result(let p):
            payload = p
        case .error(let error):
            // Fan-out jobs turn a failed item into a failed entry; everything else passes the error on.
            switch call.context {
            case .setVariables(let job):
                continueSetVariables(job, itemStatus: "Rejected", &out)
                return
            case .certificates(let job):
                continueCertificateQuery(job, answer: nil, &out)
                return
            case .plugAndCharge,
                .passthrough where ["NotImplemented", "NotSupported"].contains(error.errorCode):
                // A charger without Plug & Charge or the Security Whitepaper: the message's own refusal.
                let why = Untranslatable(
                    message: "the charger answered \(error.errorCode)",
                    reasonCode: error.errorCode
                )
                if let id = call.upstreamID {
                    out.append(.toUpstream(Self.result(id, Self.refusal(call.action, why))))
                }
                return
            default: break
            }
            if let id = call.upstreamID {
                out.append(
                    .toUpstream(Self.callError(id, Self.errorCode(error.errorCode, for: .v201), error.errorDescription))
                )
            }
            return
        }
        guard let upstreamID = call.upstreamID else { return }  // the relay's own (a scheduled Reset)
        let reply: JSONValue
        switch call.context {
        case .generic(let mapping), .reservation(let mapping, _):
            if case .reservation(_, let change) = call.context {
                reservationAnswered(change, status: payload["status"]?.stringValue)
            }
            do throws(Untranslatable) {
                reply = try tables.apply(mapping.response ?? [], to: payload, action: call.action, &out)
            } catch {
                out.append(
                    .toUpstream(
                        Self.callError(
                            upstreamID,
                            "InternalError",
                            "the charger's answer could not be translated: \(error.message)"
                        )
                    )
                )
                return
            }
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
                &out
            )
            return
        case .baseReport(let requestId):
            sendReport(requestId: requestId, configuration: payload, &out)
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
                to: call.action,
                from: "the charger",
                &out
            )
        case .certificates(let job):
            continueCertificateQuery(job, answer: payload, &out)
            return
        }
        out.append(.toUpstream(Self.result(upstreamID, reply)))
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
