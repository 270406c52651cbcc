import OCPP

/// Backend-initiated messages: a 1.6 CALL becomes a 2.0.1 CALL to the charger (or is answered by the relay),
/// and the charger's result goes back in 1.6 form (`ocpp-mapping.md` §6.3).
extension ReverseRules {
    private func reply(_ call: RPCFrame.Call, _ payload: JSONValue, _ io: inout Effects<Self>) {
        io.reply(to: .upstream, call.messageID, payload)
    }

    private func status(_ value: String) -> JSONValue {
        .object([(key: "status", value: .string(value))])
    }

    /// The EVSE (and its connector) of a 1.6 connector; 0 is the station.
    private func evse(_ connector: Int) -> (evseId: Int, connectorId: Int) {
        tables.topology.evse(forConnector: connector)
    }

    mutating func mint(_ counter: WritableKeyPath<ReverseState, Int>) -> Int {
        state[keyPath: counter] = state[keyPath: counter] % Int(Int32.max) + 1
        markChanged()
        return state[keyPath: counter]
    }

    // MARK: Steps

    mutating func remoteStart(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let idTag = call.payload["idTag"]?.stringValue else { throw Untranslatable(message: "idTag is required") }
        let connector = call.payload["connectorId"]?.intValue
        let remoteStartId = mint(\.lastRemoteStartId)
        var request = JSONValue.object([
            (key: "idToken", value: token(for: idTag, fallback: "Central")),
            (key: "remoteStartId", value: .int(remoteStartId)),
        ])
        if let connector, connector > 0 { request.set("evseId", .int(evse(connector).evseId)) }
        if let profile = call.payload["chargingProfile"] {
            request.set("chargingProfile", try chargingProfile201(profile, transactionID: nil))
        }
        let start = ReverseState.RemoteStart(remoteStartId: remoteStartId, idTag: idTag, connector: connector)
        io.toCharger(call, as: "RequestStartTransaction", request, .remoteStart(start))
    }

    mutating func remoteStop(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let number = call.payload["transactionId"]?.intValue
        guard let t = state.transactions.last(where: { $0.number == number && number != nil }), !t.ended else {
            reply(call, status("Rejected"), &io)
            return
        }
        io.toCharger(
            call,
            as: "RequestStopTransaction",
            .object([(key: "transactionId", value: .string(t.id))]),
            .status(nil)
        )
    }

    mutating func reset(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let type = call.payload["type"]?.stringValue ?? "Hard"
        if state.lastReset != type {
            state.lastReset = type
            markChanged()
        }
        let mapped = tables.enumMap(.resetType16To201).map(type) ?? "Immediate"
        io.toCharger(call, as: "Reset", .object([(key: "type", value: .string(mapped))]), .status(.resetStatus201To16))
    }

    mutating func changeAvailability(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let connector = call.payload["connectorId"]?.intValue ?? 0
        var request = JSONValue.object([(key: "operationalStatus", value: call.payload["type"] ?? .string("Operative"))]
        )
        if connector > 0 {
            let (evseId, connectorId) = evse(connector)
            request.set(
                "evse",
                .object([(key: "id", value: .int(evseId)), (key: "connectorId", value: .int(connectorId))])
            )
        }
        io.toCharger(call, as: "ChangeAvailability", request, .status(nil))
    }

    mutating func unlockConnector(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let (evseId, connectorId) = evse(call.payload["connectorId"]?.intValue ?? 1)
        io.toCharger(
            call,
            as: "UnlockConnector",
            .object([(key: "evseId", value: .int(evseId)), (key: "connectorId", value: .int(connectorId))]),
            .status(.unlockStatus201To16)
        )
    }

    mutating func triggerMessage(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let requested = call.payload["requestedMessage"]?.stringValue ?? ""
        let connector = call.payload["connectorId"]?.intValue
        switch requested {
        case "BootNotification":
            // An accepted 2.0.1 charger refuses a triggered boot (F06.FR.17): the relay sends the one it has.
            guard let boot = state.boot else {
                reply(call, status("Rejected"), &io)
                return
            }
            reply(call, status("Accepted"), &io)
            sendUpstream("BootNotification", boot, .relay, &io)
            return
        case "StatusNotification" where connector == 0:
            reply(call, status("Accepted"), &io)
            sendUpstream(
                "StatusNotification",
                statusMessage(0, status: currentStatus(0), timestamp: .string(now())),
                .relay,
                &io
            )
            return
        default:
            break
        }
        guard var mapped = tables.enumMap(.triggerMessage16To201).map(requested) else {
            reply(call, status("NotImplemented"), &io)
            return
        }
        var request = JSONValue.object([])
        if let connector, connector > 0 {
            let (evseId, connectorId) = evse(connector)
            let open = state.transactions.contains { $0.evseId == evseId && $0.window == .open && !$0.ended }
            if mapped == "MeterValues" && open { mapped = "TransactionEvent" }
            var target = JSONValue.object([(key: "id", value: .int(evseId))])
            if mapped == "StatusNotification" { target.set("connectorId", .int(connectorId)) }
            request.set("evse", target)
        }
        request.set("requestedMessage", .string(mapped))
        io.toCharger(call, as: "TriggerMessage", request, .status(nil))
    }

    mutating func getConfiguration(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let keys = call.payload["key"]?.arrayValue?.compactMap(\.stringValue)
        var read = ConfigurationRead(asked: [], unknown: [], known: [])
        let wanted = keys ?? tables.configurationKeys.filter { $0.characteristic == nil }.map(\.key)
        for key in wanted {
            if let value = relayOwnedKey(key) {
                read.known.append(configurationKey(key, value: value, readonly: true))
                continue
            }
            let mapping = tables.configurationKey(key)
            guard tables.configurationKeys.contains(where: { $0.key == key }) || keys != nil else { continue }
            if tables.configurationKeys.contains(where: { $0.key == key && $0.characteristic != nil }) {
                read.unknown.append(key)  // a limit, not a variable's value: GetVariables cannot read it
                continue
            }
            read.asked.append(mapping)
        }
        guard !read.asked.isEmpty else {
            reply(call, configurationAnswer(read, results: []), &io)
            return
        }
        let data = read.asked.map { mapping -> JSONValue in
            var variable = JSONValue.object([(key: "name", value: .string(mapping.variable))])
            if let instance = mapping.variableInstance { variable.set("instance", .string(instance)) }
            return .object([
                (key: "component", value: .object([(key: "name", value: .string(mapping.component))])),
                (key: "variable", value: variable),
            ])
        }
        io.toCharger(
            call,
            as: "GetVariables",
            .object([(key: "getVariableData", value: .array(data))]),
            .getConfiguration(read)
        )
    }

    /// Keys whose value the relay knows better than the charger (`ocpp-mapping.md` §6.3.1).
    private func relayOwnedKey(_ key: String) -> String? {
        switch key {
        case "NumberOfConnectors":
            let connectors = state.connectorStatus.keys.compactMap(Int.init).filter { $0 > 0 }
            return String(connectors.max() ?? 1)
        case "SupportedFeatureProfiles":
            return "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
        default:
            return nil
        }
    }

    private func configurationKey(_ key: String, value: String?, readonly: Bool) -> JSONValue {
        .object(omittingNil: [
            "key": .string(key), "readonly": .bool(readonly), "value": value.map { .string(String($0.prefix(500))) },
        ])
    }

    private func configurationAnswer(_ read: ConfigurationRead, results: [JSONValue]) -> JSONValue {
        var known = read.known
        var unknown = read.unknown
        for (index, mapping) in read.asked.enumerated() {
            let result =
                results.first {
                    $0.value(at: "component.name")?.stringValue == mapping.component
                        && $0.value(at: "variable.name")?.stringValue == mapping.variable
                        && $0.value(at: "variable.instance")?.stringValue == mapping.variableInstance
                } ?? (index < results.count ? results[index] : nil)
            switch result?["attributeStatus"]?.stringValue {
            case "Accepted":
                var value = result?["attributeValue"]?.stringValue ?? ""
                let reverse = Dictionary(mapping.values.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
                if !reverse.isEmpty {
                    value = value.split(separator: ",").map { reverse[String($0)] ?? String($0) }.joined(separator: ",")
                }
                known.append(configurationKey(mapping.key, value: value, readonly: mapping.readOnly))
            case "Rejected":
                known.append(configurationKey(mapping.key, value: nil, readonly: mapping.readOnly))
            default:
                unknown.append(mapping.key)
            }
        }
        return .object(omittingNil: [
            "configurationKey": known.isEmpty ? nil : .array(known),
            "unknownKey": unknown.isEmpty ? nil : .array(unknown.map(JSONValue.string)),
        ])
    }

    mutating func changeConfiguration(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let key = call.payload["key"]?.stringValue ?? ""
        var value = call.payload["value"]?.stringValue ?? ""
        if ["SecurityProfile", "CpoName"].contains(key) || relayOwnedKey(key) != nil {
            reply(call, status("Rejected"), &io)
            io.note(.lossy, call.action, "\(key) concerns the relay, not the charger; rejected")
            return
        }
        let mapping = tables.configurationKey(key)
        let listed = tables.configurationKeys.filter { $0.key == key }
        if listed.contains(where: { $0.characteristic != nil || $0.readOnly }) {
            reply(call, status("Rejected"), &io)
            return
        }
        if !mapping.values.isEmpty {
            value = value.split(separator: ",").map { mapping.values[String($0)] ?? String($0) }.joined(separator: ",")
        }
        if ["true", "false"].contains(value.lowercased()) { value = value.lowercased() }
        var password: String?
        if mapping.hexEncoded {
            guard let text = AuthorizationKey.password(fromHex: value), (16...40).contains(text.count) else {
                reply(call, status("Rejected"), &io)
                io.note(.untranslatable, call.action, "\(key) is not the hex of a 16 to 40 character password")
                return
            }
            value = text
            password = text
        }
        var variable = JSONValue.object([(key: "name", value: .string(mapping.variable))])
        if let instance = mapping.variableInstance { variable.set("instance", .string(instance)) }
        let data = JSONValue.object([
            (key: "attributeValue", value: .string(value)),
            (key: "component", value: .object([(key: "name", value: .string(mapping.component))])),
            (key: "variable", value: variable),
        ])
        io.toCharger(
            call,
            as: "SetVariables",
            .object([(key: "setVariableData", value: .array([data]))]),
            .changeConfiguration(password: password)
        )
    }

    mutating func setChargingProfile(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        guard let profile = call.payload["csChargingProfiles"] else {
            throw Untranslatable(message: "csChargingProfiles is required")
        }
        let connector = call.payload["connectorId"]?.intValue ?? 0
        let evseId = evse(connector).evseId
        var transactionID: String?
        if profile["chargingProfilePurpose"]?.stringValue == "TxProfile" {
            let number = profile["transactionId"]?.intValue
            let t = state.transactions.last { candidate in
                guard !candidate.ended else { return false }
                if let number { return candidate.number == number }
                return candidate.evseId == evseId && candidate.window == .open
            }
            guard let t else {
                // 1.6 applies a TxProfile to the running transaction; with none there is nothing to apply it to.
                reply(call, status("Rejected"), &io)
                return
            }
            transactionID = t.id
        }
        let converted: JSONValue
        do throws(Untranslatable) {
            converted = try chargingProfile201(profile, transactionID: transactionID)
        } catch {
            reply(call, status("Rejected"), &io)
            io.note(.untranslatable, call.action, error.message)
            return
        }
        io.toCharger(
            call,
            as: "SetChargingProfile",
            .object([(key: "evseId", value: .int(evseId)), (key: "chargingProfile", value: converted)]),
            .setChargingProfile
        )
    }

    /// A 1.6 charging profile in 2.0.1 form: one schedule (its id the profile's), the purpose renamed, the
    /// transaction id the charger's.
    private func chargingProfile201(_ profile: JSONValue, transactionID: String?) throws(Untranslatable) -> JSONValue {
        guard let id = profile["chargingProfileId"], let schedule = profile["chargingSchedule"],
            let purpose = profile["chargingProfilePurpose"]?.stringValue
        else {
            throw Untranslatable(message: "chargingProfileId, chargingProfilePurpose and chargingSchedule are required")
        }
        let periods = schedule["chargingSchedulePeriod"]?.arrayValue ?? []
        guard periods.first?["startPeriod"]?.intValue == 0 else {
            throw Untranslatable(message: "2.0.1 needs a first chargingSchedulePeriod starting at 0")
        }
        let schedule201 = JSONValue.object(omittingNil: [
            "id": id, "startSchedule": schedule["startSchedule"], "duration": schedule["duration"],
            "chargingRateUnit": schedule["chargingRateUnit"], "minChargingRate": schedule["minChargingRate"],
            "chargingSchedulePeriod": .array(
                periods.map { period in
                    .object(omittingNil: [
                        "startPeriod": period["startPeriod"], "limit": period["limit"],
                        "numberPhases": period["numberPhases"],
                    ])
                }
            ),
        ])
        return .object(omittingNil: [
            "id": id, "stackLevel": profile["stackLevel"] ?? .int(0),
            "chargingProfilePurpose": .string(tables.enumMap(.chargingProfilePurpose16To201).map(purpose) ?? purpose),
            "chargingProfileKind": profile["chargingProfileKind"], "recurrencyKind": profile["recurrencyKind"],
            "validFrom": profile["validFrom"], "validTo": profile["validTo"],
            "transactionId": transactionID.map(JSONValue.string), "chargingSchedule": .array([schedule201]),
        ])
    }

    mutating func clearChargingProfile(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let p = call.payload
        var criteria = JSONValue.object([])
        if let connector = p["connectorId"]?.intValue { criteria.set("evseId", .int(evse(connector).evseId)) }
        if let purpose = p["chargingProfilePurpose"]?.stringValue {
            criteria.set(
                "chargingProfilePurpose",
                .string(tables.enumMap(.chargingProfilePurpose16To201).map(purpose) ?? purpose)
            )
        }
        if let stackLevel = p["stackLevel"] { criteria.set("stackLevel", stackLevel) }
        var request = JSONValue.object([])
        if let id = p["id"] { request.set("chargingProfileId", id) }
        if criteria != .object([]) { request.set("chargingProfileCriteria", criteria) }
        io.toCharger(call, as: "ClearChargingProfile", request, .status(nil))
    }

    mutating func getCompositeSchedule(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let connector = call.payload["connectorId"]?.intValue ?? 0
        let request = JSONValue.object(omittingNil: [
            "duration": call.payload["duration"] ?? .int(0), "chargingRateUnit": call.payload["chargingRateUnit"],
            "evseId": .int(evse(connector).evseId),
        ])
        io.toCharger(call, as: "GetCompositeSchedule", request, .compositeSchedule(connectorId: connector))
    }

    mutating func reserveNow(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let p = call.payload
        let connector = p["connectorId"]?.intValue ?? 0
        let request = JSONValue.object(omittingNil: [
            "id": p["reservationId"] ?? .int(0), "expiryDateTime": p["expiryDate"] ?? .string(now()),
            "idToken": token(for: p["idTag"]?.stringValue ?? ""),
            "groupIdToken": p["parentIdTag"].map {
                .object([(key: "idToken", value: $0), (key: "type", value: .string("Central"))])
            },
            "evseId": connector > 0 ? .int(evse(connector).evseId) : nil,
        ])
        io.toCharger(call, as: "ReserveNow", request, .status(nil))
    }

    mutating func sendLocalList(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let p = call.payload
        let entries = (p["localAuthorizationList"]?.arrayValue ?? []).map { entry -> JSONValue in
            .object(omittingNil: [
                "idToken": token(for: entry["idTag"]?.stringValue ?? ""),
                "idTokenInfo": idTokenInfo(entry["idTagInfo"]),
            ])
        }
        let request = JSONValue.object(omittingNil: [
            "versionNumber": p["listVersion"] ?? .int(0), "updateType": p["updateType"] ?? .string("Full"),
            "localAuthorizationList": entries.isEmpty ? nil : .array(entries),
        ])
        io.toCharger(call, as: "SendLocalList", request, .status(nil))
    }

    mutating func getDiagnostics(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let p = call.payload
        let location = p["location"]?.stringValue ?? ""
        guard location.count <= 512 else {
            reply(call, .object([]), &io)
            io.note(.lossy, call.action, "the location is longer than 2.0.1's 512 characters")
            return
        }
        let requestId = mint(\.lastRequestId)
        state.logRequestId = requestId
        let request = JSONValue.object(omittingNil: [
            "logType": .string("DiagnosticsLog"), "requestId": .int(requestId),
            "log": .object(omittingNil: [
                "remoteLocation": .string(location), "oldestTimestamp": p["startTime"],
                "latestTimestamp": p["stopTime"],
            ]),
            "retries": p["retries"], "retryInterval": p["retryInterval"],
        ])
        io.toCharger(call, as: "GetLog", request, .getDiagnostics)
    }

    mutating func updateFirmware(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        let p = call.payload
        let requestId = mint(\.lastRequestId)
        state.firmwareRequestId = requestId
        let request = JSONValue.object(omittingNil: [
            "requestId": .int(requestId),
            "firmware": .object(omittingNil: [
                "location": p["location"] ?? .string(""), "retrieveDateTime": p["retrieveDate"] ?? .string(now()),
            ]),
            "retries": p["retries"], "retryInterval": p["retryInterval"],
        ])
        io.toCharger(call, as: "UpdateFirmware", request, .updateFirmware)
    }

    // MARK: The charger's results

    /// The charger answered a CALL the relay sent for the backend.
    mutating func chargerResult(_ call: SentCall<ChargerContext>, _ payload: JSONValue, _ io: inout Effects<Self>) {
        guard let caller = call.caller else { return }  // the relay's own
        let backendID = caller.messageID
        let answer: JSONValue
        switch call.context {
        case .relay:
            return
        case .generic(let mapping):
            return answerByFieldRules(mapping, payload, to: caller, on: .upstream, &io)
        case .status(let map):
            let value = payload["status"]?.stringValue ?? "Rejected"
            answer = status(map.flatMap { tables.enumMap($0).map(value) } ?? value)
        case .remoteStart(let start):
            let value = payload["status"]?.stringValue ?? "Rejected"
            if value == "Accepted" {
                state.remoteStarts.append(start)
                if state.remoteStarts.count > 16 { state.remoteStarts.removeFirst() }
                markChanged()
            }
            answer = status(value)
        case .getConfiguration(let read):
            answer = configurationAnswer(read, results: payload["getVariableResult"]?.arrayValue ?? [])
        case .changeConfiguration(let password):
            let value = payload["setVariableResult"]?.arrayValue?.first?["attributeStatus"]?.stringValue ?? "Rejected"
            if value == "Accepted", let password { io.emit(.passwordChanged(password)) }
            answer = status(tables.enumMap(.setVariableStatus201To16).map(value) ?? "Rejected")
        case .setChargingProfile:
            answer = status(payload["status"]?.stringValue == "Accepted" ? "Accepted" : "Rejected")
        case .installedCertificates, .logAnswer, .plugAndCharge:
            answer = Self.securityAnswer(call.context, payload) ?? .object([])
        case .compositeSchedule(let connectorId):
            answer = compositeSchedule16(payload, connectorId: connectorId)
        case .getDiagnostics:
            let accepted = ["Accepted", "AcceptedCanceled"].contains(payload["status"]?.stringValue ?? "")
            answer = .object(omittingNil: ["fileName": accepted ? payload["filename"] : nil])
        case .updateFirmware:
            answer = .object([])
            if payload["status"]?.stringValue != "Accepted" {
                io.reply(to: .upstream, backendID, answer)
                sendUpstream(
                    "FirmwareStatusNotification",
                    .object([(key: "status", value: .string("DownloadFailed"))]),
                    .relay,
                    &io
                )
                return
            }
        }
        io.reply(to: .upstream, backendID, answer)
    }

    private func compositeSchedule16(_ payload: JSONValue, connectorId: Int) -> JSONValue {
        let value = payload["status"]?.stringValue == "Accepted" ? "Accepted" : "Rejected"
        guard value == "Accepted", let schedule = payload["schedule"] else { return status(value) }
        let periods = (schedule["chargingSchedulePeriod"]?.arrayValue ?? []).map { period in
            JSONValue.object(omittingNil: [
                "startPeriod": period["startPeriod"], "limit": period["limit"], "numberPhases": period["numberPhases"],
            ])
        }
        return .object(omittingNil: [
            "status": .string(value), "connectorId": .int(connectorId), "scheduleStart": schedule["scheduleStart"],
            "chargingSchedule": .object(omittingNil: [
                "duration": schedule["duration"], "startSchedule": schedule["scheduleStart"],
                "chargingRateUnit": schedule["chargingRateUnit"], "chargingSchedulePeriod": .array(periods),
            ]),
        ])
    }
}
