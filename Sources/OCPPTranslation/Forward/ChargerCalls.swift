import OCPP

/// Charger-initiated messages: a 1.6 CALL becomes a 2.0.1 CALL (or is answered by the relay).
extension ForwardRules {
    private func required(_ payload: JSONValue, _ key: String) throws(Untranslatable) -> JSONValue {
        guard let value = payload[key] else { throw Untranslatable(message: "required field \(key) is missing") }
        return value
    }

    private func string(_ payload: JSONValue, _ key: String) throws(Untranslatable) -> String {
        guard let value = payload[key]?.stringValue else { throw Untranslatable(message: "\(key) is missing") }
        return value
    }

    private func int(_ payload: JSONValue, _ key: String) throws(Untranslatable) -> Int {
        guard let value = payload[key]?.intValue else { throw Untranslatable(message: "\(key) must be an integer") }
        return value
    }

    mutating func bootNotification(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let p = call.payload
        let modem: JSONValue? =
            (p["iccid"] != nil || p["imsi"] != nil)
            ? .object(omittingNil: ["iccid": p["iccid"], "imsi": p["imsi"]]) : nil
        let station = JSONValue.object(omittingNil: [
            "serialNumber": p["chargePointSerialNumber"] ?? p["chargeBoxSerialNumber"],
            "model": try required(p, "chargePointModel"),
            "modem": modem,
            "vendorName": try required(p, "chargePointVendor"),
            "firmwareVersion": p["firmwareVersion"],
        ])
        for lost in ["meterType", "meterSerialNumber"] where p[lost] != nil {
            io.note(.lossy, call.action, "\(lost) has no 2.0.1 field")
        }
        let reason = state.nextBootReason ?? "PowerUp"
        if state.nextBootReason != nil {
            state.nextBootReason = nil
            markChanged()
        }
        io.forward(
            call,
            as: "BootNotification",
            .object([(key: "chargingStation", value: station), (key: "reason", value: .string(reason))]),
            .boot
        )
    }

    mutating func statusNotification(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let p = call.payload
        let connector = try int(p, "connectorId")
        let status = try string(p, "status")
        guard let connectorStatus = tables.enumMap(.connectorStatus16To201).map(status) else {
            throw Untranslatable(message: "status \(status) has no 2.0.1 connectorStatus")
        }
        let timestamp = p["timestamp"] ?? .string(now())
        let previous = state.connectorStatus[String(connector)]
        state.connectorStatus[String(connector)] = status
        markChanged()
        reservationEnded(connector: connector, previous: previous, status: status, timestamp: timestamp, &io)
        let (evseId, connectorId) = tables.topology.evse(forConnector: connector)
        var events: [JSONValue] = []
        if connector == 0 {
            // The whole charge point: 2.0.1 reports it as ChargingStation.AvailabilityState.
            events.append(
                event(
                    component: "ChargingStation",
                    variable: "AvailabilityState",
                    actual: connectorStatus,
                    trigger: "Delta",
                    timestamp: timestamp,
                    evse: nil
                )
            )
        }
        events += errorEvents(
            p,
            connector: connector,
            timestamp: timestamp,
            evse: connector == 0 ? nil : (evseId, connectorId)
        )
        if connector == 0 {
            io.forward(call, as: "NotifyEvent", notifyEvent(events), .emptyResult)
            return
        }
        io.forward(
            call,
            as: "StatusNotification",
            .object([
                (key: "timestamp", value: timestamp),
                (key: "connectorStatus", value: .string(connectorStatus)),
                (key: "evseId", value: .int(evseId)),
                (key: "connectorId", value: .int(connectorId)),
            ]),
            .emptyResult
        )
        if !events.isEmpty {
            io.sendUpstream("NotifyEvent", notifyEvent(events), .relay)
        }
        // During a transaction, Charging/SuspendedEV/SuspendedEVSE are a change of the charging state.
        if let chargingState = tables.enumMap(.chargingState16To201).map(status), status != previous,
            var transaction = state.openTransaction(onConnector: connector), transaction.chargingState != chargingState
        {
            transaction.chargingState = chargingState
            let event = transactionEvent(
                &transaction,
                type: "Updated",
                trigger: "ChargingStateChanged",
                timestamp: timestamp,
                info: [(key: "chargingState", value: .string(chargingState))]
            )
            state.update(transaction)
            io.sendUpstream("TransactionEvent", event, .relay)
        }
    }

    /// NotifyEvent data for a change of a connector's errorCode: raised with the 1.6 code as techCode,
    /// cleared (actualValue false) when NoError follows an error.
    private mutating func errorEvents(
        _ p: JSONValue,
        connector: Int,
        timestamp: JSONValue,
        evse: (Int, Int)?
    ) -> [JSONValue] {
        let code = p["errorCode"]?.stringValue ?? "NoError"
        let key = String(connector)
        let previous = state.connectorErrors[key]
        var events: [JSONValue] = []
        if code == "NoError" {
            guard let previous else { return [] }
            state.connectorErrors[key] = nil
            let (component, variable) = errorVariable(previous)
            events.append(
                event(
                    component: component,
                    variable: variable,
                    actual: "false",
                    trigger: "Alerting",
                    timestamp: timestamp,
                    evse: evse,
                    cleared: true,
                    techCode: previous
                )
            )
        } else if code != previous || p["vendorErrorCode"] != nil {
            state.connectorErrors[key] = code
            let (component, variable) = errorVariable(code)
            let techCode = p["vendorErrorCode"]?.stringValue ?? code
            let info = [p["info"]?.stringValue, p["vendorId"]?.stringValue].compactMap { $0 }.joined(separator: "; ")
            events.append(
                event(
                    component: component,
                    variable: variable,
                    actual: "true",
                    trigger: "Alerting",
                    timestamp: timestamp,
                    evse: evse,
                    techCode: techCode,
                    techInfo: info.isEmpty ? nil : info
                )
            )
        }
        markChanged()
        return events
    }

    private func errorVariable(_ code: String) -> (String, String) {
        let target = tables.enumMap(.errorCode16To201).map(code) ?? "EVSE.Problem"
        let parts = target.split(separator: ".", maxSplits: 1).map(String.init)
        return parts.count == 2 ? (parts[0], parts[1]) : (target, "Problem")
    }

    private mutating func event(
        component: String,
        variable: String,
        actual: String,
        trigger: String,
        timestamp: JSONValue,
        evse: (Int, Int)?,
        cleared: Bool? = nil,
        techCode: String? = nil,
        techInfo: String? = nil
    ) -> JSONValue {
        state.lastEventId += 1
        let evseValue: JSONValue? = evse.map {
            .object([(key: "id", value: .int($0.0)), (key: "connectorId", value: .int($0.1))])
        }
        return .object(omittingNil: [
            "eventId": .int(state.lastEventId),
            "timestamp": timestamp,
            "trigger": .string(trigger),
            "actualValue": .string(actual),
            "techCode": techCode.map { .string(String($0.prefix(50))) },
            "techInfo": techInfo.map { .string(String($0.prefix(500))) },
            "cleared": cleared.map(JSONValue.bool),
            "eventNotificationType": .string("HardWiredNotification"),
            "component": .object(omittingNil: ["name": .string(component), "evse": evseValue]),
            "variable": .object([(key: "name", value: .string(variable))]),
        ])
    }

    func notifyEvent(_ events: [JSONValue]) -> JSONValue {
        .object([
            (key: "generatedAt", value: .string(now())),
            (key: "seqNo", value: .int(0)),
            (key: "tbc", value: .bool(false)),
            (key: "eventData", value: .array(events)),
        ])
    }

    mutating func authorize(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let idTag = try string(call.payload, "idTag")
        io.forward(call, as: "Authorize", .object([(key: "idToken", value: idToken(idTag))]), .authorize)
    }

    /// A TransactionEvent for `transaction`, taking its next seqNo (and, when its reserved block is used up,
    /// reserving the next one: the state is then persisted).
    mutating func transactionEvent(
        _ transaction: inout ForwardState.Transaction,
        type: String,
        trigger: String,
        timestamp: JSONValue,
        info extra: [(key: String, value: JSONValue)] = [],
        fields: [(key: String, value: JSONValue)] = []
    ) -> JSONValue {
        let (seqNo, reserved) = transaction.takeSeqNo()
        if reserved { seqNosReserved = true }
        let info = JSONValue.object([(key: "transactionId", value: .string(transaction.id))] + extra)
        return .object(
            [
                (key: "eventType", value: .string(type)),
                (key: "timestamp", value: timestamp),
                (key: "triggerReason", value: .string(trigger)),
                (key: "seqNo", value: .int(seqNo)),
                (key: "transactionInfo", value: info),
            ] + fields
        )
    }

    mutating func startTransaction(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let p = call.payload
        let connector = try int(p, "connectorId")
        let idTag = try string(p, "idTag")
        let meterStart = try required(p, "meterStart")
        let timestamp = try required(p, "timestamp")
        let (evseId, connectorId) = tables.topology.evse(forConnector: connector)
        // A remote start the backend asked for on this connector (or on any) with this token.
        let remote = state.pendingRemoteStarts.firstIndex {
            $0.idTag == idTag && ($0.connector == nil || $0.connector == connector)
        }
        let remoteStart = remote.map { state.pendingRemoteStarts.remove(at: $0) }
        let lastStatus = state.connectorStatus[String(connector)]
        let chargingState = lastStatus.flatMap { tables.enumMap(.chargingState16To201).map($0) } ?? "EVConnected"
        var transaction = ForwardState.Transaction(
            number: state.nextTransactionNumber(),
            id: makeID(),
            connector: connector,
            evseId: evseId,
            connectorId: connectorId,
            idTag: idTag,
            tokenType: remoteStart?.tokenType ?? tokenType(idTag),
            remoteStartId: remoteStart?.remoteStartId,
            chargingState: chargingState
        )
        var info: [(key: String, value: JSONValue)] = [(key: "chargingState", value: .string(chargingState))]
        if let remoteStart { info.append((key: "remoteStartId", value: .int(remoteStart.remoteStartId))) }
        var fields: [(key: String, value: JSONValue)] = [
            (
                key: "meterValue",
                value: .array([Self.energyReading(meterStart, context: "Transaction.Begin", timestamp: timestamp)])
            ),
            (
                key: "evse",
                value: .object([(key: "id", value: .int(evseId)), (key: "connectorId", value: .int(connectorId))])
            ),
            (
                key: "idToken",
                value: .object([
                    (key: "idToken", value: .string(idTag)),
                    (key: "type", value: .string(transaction.tokenType ?? "ISO14443")),
                ])
            ),
        ]
        if let reservation = p["reservationId"] { fields.append((key: "reservationId", value: reservation)) }
        reservationUsed(p["reservationId"]?.intValue, connector: connector)
        let event = transactionEvent(
            &transaction,
            type: "Started",
            trigger: remoteStart != nil ? "RemoteStart" : "Authorized",
            timestamp: timestamp,
            info: info,
            fields: fields
        )
        // Persisted before the backend answers: a relay restarted now still knows this transaction.
        state.update(transaction)
        markChanged()
        guard options.answerStartEarly else {
            return io.forward(call, as: "TransactionEvent", event, .startTransaction(transactionID: transaction.id))
        }
        io.reply(to: .charger, call.messageID, Self.startTransactionConf(transaction, idTagInfo: nil))
        io.sendUpstream("TransactionEvent", event, .verdict(transactionID: transaction.id))
    }

    mutating func stopTransaction(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let p = call.payload
        let number = try int(p, "transactionId")
        let meterStop = try required(p, "meterStop")
        let timestamp = try required(p, "timestamp")
        // transactionId -1 (1.6 errata 3.18): the charger never got a StartTransaction.conf; the open
        // transaction is the one meant (StopTransaction names no connector).
        let found =
            number > 0
            ? state.transaction(number: Int32(clamping: number))
            : state.transactions.last { !$0.ended }
        guard var transaction = found else {
            io.note(
                .untranslatable,
                call.action,
                "transaction \(number) is unknown to the relay; answered without telling the backend"
            )
            io.reply(to: .charger, call.messageID, .object([]))
            return
        }
        if transaction.ended {
            // A retry of a stop already sent: answer it again without a second Ended event.
            io.reply(to: .charger, call.messageID, .object([]))
            return
        }
        let reason = p["reason"]?.stringValue ?? "Local"
        let stopped = tables.enumMap(.stoppedReason16To201).map(reason) ?? "Other"
        let trigger = tables.enumMap(.stopTriggerReason16To201).map(reason) ?? "AbnormalCondition"
        if reason == "SoftReset" || reason == "UnlockCommand" {
            io.note(.lossy, call.action, "reason \(reason) becomes stoppedReason \(stopped)")
        }
        var meterValues = convertMeterValues(p["transactionData"], action: call.action, &io)
        meterValues.append(Self.energyReading(meterStop, context: "Transaction.End", timestamp: timestamp))
        var fields: [(key: String, value: JSONValue)] = [(key: "meterValue", value: .array(meterValues))]
        if let idTag = p["idTag"]?.stringValue {
            fields.append((key: "idToken", value: idToken(idTag)))
        }
        let event = transactionEvent(
            &transaction,
            type: "Ended",
            trigger: trigger,
            timestamp: timestamp,
            info: [(key: "stoppedReason", value: .string(stopped))],
            fields: fields
        )
        transaction.ended = true
        state.update(transaction)
        markChanged()
        io.forward(call, as: "TransactionEvent", event, .stopTransaction)
        resetIfIdle(&io)
    }

    mutating func meterValues(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let p = call.payload
        let connector = try int(p, "connectorId")
        let values = convertMeterValues(p["meterValue"], action: call.action, &io)
        guard !values.isEmpty else {
            io.reply(to: .charger, call.messageID, .object([]))
            return
        }
        guard var open = openTransaction(number: p["transactionId"]?.intValue, connector: connector) else {
            let evseId = tables.topology.evse(forConnector: connector).evseId
            io.forward(
                call,
                as: "MeterValues",
                .object([(key: "evseId", value: .int(evseId)), (key: "meterValue", value: .array(values))]),
                .emptyResult
            )
            return
        }
        let context =
            call.payload["meterValue"]?.arrayValue?.first?["sampledValue"]?.arrayValue?.first?["context"]?.stringValue
        let trigger = meterTrigger(context: context)
        let timestamp = values.first?["timestamp"] ?? .string(now())
        let event = transactionEvent(
            &open,
            type: "Updated",
            trigger: trigger,
            timestamp: timestamp,
            fields: [(key: "meterValue", value: .array(values))]
        )
        // Only its seqNo changed: written when that needs a new reservation (transactionEvent says so).
        state.update(open)
        io.forward(call, as: "TransactionEvent", event, .emptyResult)
    }

    /// The open transaction a 1.6 MeterValues is about: the one its `transactionId` names, else the connector's.
    func openTransaction(number: Int?, connector: Int) -> ForwardState.Transaction? {
        if let number, number > 0,
            let named = state.transaction(number: Int32(clamping: number)), !named.ended
        {
            return named
        }
        return connector > 0 ? state.openTransaction(onConnector: connector) : nil
    }

    /// The trigger reason of a MeterValues' TransactionEvent, by the context of its first sample.
    func meterTrigger(context: String?) -> String {
        tables.enumMap(.meterTriggerReason16To201).map(context ?? "Sample.Periodic") ?? "MeterValuePeriodic"
    }

    mutating func diagnosticsStatus(
        _ call: RPCFrame.Call,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let mapped = try tables.map(
            call.payload["status"],
            through: .diagnosticsStatus16To201,
            or: "status has no 2.0.1 UploadLogStatus"
        )
        io.forward(
            call,
            as: "LogStatusNotification",
            .object(omittingNil: ["status": .string(mapped), "requestId": state.logRequestId.map(JSONValue.int)]),
            .emptyResult
        )
    }

    mutating func firmwareStatus(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let status = try required(call.payload, "status")
        io.forward(
            call,
            as: "FirmwareStatusNotification",
            .object(omittingNil: ["status": status, "requestId": state.firmwareRequestId.map(JSONValue.int)]),
            .emptyResult
        )
    }

    /// A Reset(OnIdle) waits for the last transaction: send it once none is open.
    mutating func resetIfIdle(_ io: inout Effects<Self>) {
        guard let type = state.scheduledReset, !state.transactions.contains(where: { !$0.ended }) else { return }
        state.scheduledReset = nil
        state.nextBootReason = "ScheduledReset"
        markChanged()
        io.sendCharger("Reset", .object([(key: "type", value: .string(type))]), .reset)
    }

    /// The backend answered a CALL the relay sent for the charger.
    mutating func upstreamResult(_ call: SentCall<UpstreamContext>, _ payload: JSONValue, _ io: inout Effects<Self>) {
        if case .verdict(let transactionID) = call.context { return lateVerdict(transactionID, payload, &io) }
        guard let caller = call.caller else { return }  // the relay's own: the result is consumed
        let id = caller.messageID
        let reply: JSONValue
        switch call.context {
        case .relay, .verdict:
            return
        case .generic(let mapping):
            return answerByFieldRules(mapping, payload, to: caller, on: .charger, &io)
        case .boot:
            let status = payload["status"]?.stringValue ?? "Rejected"
            state.bootAccepted = status == "Accepted"
            markChanged()
            reply = .object(omittingNil: [
                "status": .string(status), "currentTime": payload["currentTime"] ?? .string(now()),
                "interval": payload["interval"] ?? .int(300),
            ])
        case .authorize:
            reply = .object([
                (
                    key: "idTagInfo",
                    value: idTagInfo(payload["idTokenInfo"]) ?? .object([(key: "status", value: .string("Invalid"))])
                )
            ])
        case .startTransaction(let transactionID):
            guard let transaction = state.transaction(id: transactionID) else { return }
            reply = Self.startTransactionConf(transaction, idTagInfo: idTagInfo(payload["idTokenInfo"]))
        case .stopTransaction:
            reply = .object(omittingNil: ["idTagInfo": idTagInfo(payload["idTokenInfo"])])
        case .emptyResult:
            reply = .object([])
        case .plugAndCharge:
            reply = PlugAndCharge.wrapAnswer(payload)
        }
        io.reply(to: .charger, id, reply)
    }

    /// StartTransaction.conf for a transaction; without the backend's idTokenInfo (optional in
    /// TransactionEventResponse, or not awaited: an early answer) the start stands accepted.
    static func startTransactionConf(_ transaction: ForwardState.Transaction, idTagInfo: JSONValue?) -> JSONValue {
        .object([
            (key: "idTagInfo", value: idTagInfo ?? .object([(key: "status", value: .string("Accepted"))])),
            (key: "transactionId", value: .number(String(transaction.number))),
        ])
    }

    /// The backend's verdict on a transaction the relay let start early: a token it does not accept stops it
    /// (1.6 has no other way to withdraw an authorization once StartTransaction.conf is sent).
    private mutating func lateVerdict(_ transactionID: String, _ payload: JSONValue, _ io: inout Effects<Self>) {
        guard let status = payload.value(at: "idTokenInfo.status")?.stringValue, status != "Accepted",
            let transaction = state.transaction(id: transactionID), !transaction.ended
        else { return }
        io.note(
            .lossy,
            "StartTransaction",
            "the backend answered \(status) after the early StartTransaction.conf; transaction \(transaction.number) is stopped"
        )
        io.sendCharger(
            "RemoteStopTransaction",
            .object([(key: "transactionId", value: .number(String(transaction.number)))]),
            .statusMap(nil)
        )
    }
}
