import OCPP

/// TransactionEvents → StartTransaction / MeterValues / StopTransaction (`ocpp-mapping.md` §6.2.5), and the
/// 1.6 connector status synthesised from connector status and transaction state (§6.4.1).
///
/// One 2.0.1 transaction is at most one 1.6 transaction: StartTransaction goes out at the first event after
/// which a token, the connector and (if the charger reports one) a meter reading are known; StopTransaction at
/// Ended or at an Updated event that ends the authorization (StopAuthorized, Deauthorized, RemoteStop). Events
/// before the window only move the status; a transaction that ends before it opened never reaches the backend.
extension ReverseRules {
    typealias Transaction = ReverseState.Transaction

    mutating func transactionEvent(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let p = call.payload
        guard let eventType = p["eventType"]?.stringValue,
            let id = p.value(at: "transactionInfo.transactionId")?.stringValue
        else {
            throw Untranslatable(message: "eventType and transactionInfo.transactionId are required")
        }
        var index = state.transactions.lastIndex { $0.id == id }
        if index == nil {
            state.transactions.append(Transaction(id: id))
            pruneTransactions()
            index = state.transactions.count - 1
            markChanged()
        }
        var t = state.transactions[index!]
        let before = t
        let seqNo = p["seqNo"]?.intValue ?? 0
        if let last = t.lastSeqNo, seqNo <= last {
            // A retry of an event already translated: answered again, sent nowhere.
            answer(call, &io)
            return
        }
        t.lastSeqNo = seqNo
        if let evse = p["evse"], let evseId = evse["id"]?.intValue {
            t.evseId = evseId
            t.connectorId = evse["connectorId"]?.intValue ?? t.connectorId
        }
        if let token = p["idToken"], t.idTag == nil || t.window == .none {
            t.idTag = idTag(for: token, action: call.action, &io)
        }
        if let remoteStartId = p.value(at: "transactionInfo.remoteStartId")?.intValue {
            t.remoteStartId = remoteStartId
            if let start = state.remoteStarts.first(where: { $0.remoteStartId == remoteStartId }) {
                t.idTag = t.idTag ?? start.idTag
                state.remoteStarts.removeAll { $0.remoteStartId == remoteStartId }
                markChanged()
            }
        }
        if let reservationId = p["reservationId"]?.intValue { t.reservationId = reservationId }
        if let chargingState = p.value(at: "transactionInfo.chargingState")?.stringValue {
            t.chargingState = chargingState
        }
        if let wattHours = Self.register(in: p["meterValue"]) { t.lastRegister = wattHours }
        let timestamp = p["timestamp"] ?? .string(now())
        let ends =
            eventType == "Ended"
            || (eventType == "Updated"
                && tables.enumMap(.stopTriggerReason201To16).values[p["triggerReason"]?.stringValue ?? ""] != nil)
        // Whether the charger's answer waits: for StartTransaction.conf, or for the backend's answer to what the
        // event became (then the charger keeps the event until the backend has it, and no disk write is needed).
        var deferred = false
        // The backend's id is known and nothing of this transaction waits in the outbox: in step with the charger.
        let inStep = inStep(t)
        switch t.window {
        case .none:
            guard !ends, t.idTag != nil, let connector = connector(of: t) else { break }
            // The window opens: StartTransaction, then this event's readings as MeterValues.
            t.window = .open
            t.meterStart = Self.register(in: p["meterValue"], context: "Transaction.Begin") ?? t.lastRegister
            if t.meterStart == nil {
                io.note(.lossy, call.action, "no energy register reading at the start; meterStart is 0")
            }
            let start = JSONValue.object(omittingNil: [
                "connectorId": .int(connector), "idTag": .string(t.idTag ?? ""), "meterStart": .int(t.meterStart ?? 0),
                "timestamp": timestamp, "reservationId": t.reservationId.map { .int($0) },
            ])
            state.transactions[index!] = t
            sendUpstream("StartTransaction", start, .transaction(t.id), &io)
            sendMeterValues(p["meterValue"], of: t, connector: connector, action: call.action, &io)
            // The token's verdict is in StartTransaction.conf: the charger's answer waits for it.
            self.held = (call.messageID, t.id, clock.uptime())
            deferred = true
        case .open:
            guard let connector = connector(of: t) else { break }
            let answering = inStep ? call : nil
            if ends {
                t.window = .closed
                state.transactions[index!] = t
                stop(t, connector: connector, event: p, timestamp: timestamp, answering: answering, &io)
                deferred = inStep
            } else {
                state.transactions[index!] = t
                let sent = sendMeterValues(
                    p["meterValue"],
                    of: t,
                    connector: connector,
                    action: call.action,
                    answering: answering,
                    &io
                )
                deferred = inStep && sent
            }
        case .closed:
            break
        }
        if eventType == "Ended" { t.ended = true }
        state.transactions[index!] = t
        // The last seqNo and reading ride along with the next write; everything else of the transaction is
        // stored before anything that depends on it goes out.
        var durable = before
        durable.lastSeqNo = t.lastSeqNo
        durable.lastRegister = t.lastRegister
        if durable != t { markChanged() }
        if let connector = connector(of: t), let message = statusChange(connector, timestamp: timestamp) {
            sendUpstream("StatusNotification", message, .relay, &io)
        }
        if !deferred { answer(call, &io) }
    }

    /// Whether a transaction's messages go in step with the backend (the charger's event answered when the backend
    /// answered what it became): once StartTransaction is answered, always, also while earlier messages of the
    /// transaction wait in the outbox (they go first: one lane, in order). Only while the backend's id is late (the
    /// charger was answered without the verdict) does the relay answer the events itself, through the outbox.
    func inStep(_ t: Transaction) -> Bool {
        t.number != nil
    }

    /// Sends a transaction's message: answering the charger's event once the backend answered it (in step), or,
    /// without a call to answer (its event answered already), through the persisted outbox.
    mutating func sendTransactionMessage(
        _ action: String,
        _ payload: JSONValue,
        of t: Transaction,
        answering call: RPCFrame.Call?,
        _ io: inout Effects<Self>
    ) {
        if let call {
            sendUpstream(action, payload, answering: Caller(call), .inStep, &io)
        } else {
            sendUpstream(action, payload, .transaction(t.id), &io)
        }
    }

    private mutating func stop(
        _ t: Transaction,
        connector: Int,
        event p: JSONValue,
        timestamp: JSONValue,
        answering call: RPCFrame.Call?,
        _ io: inout Effects<Self>
    ) {
        let action = "TransactionEvent"
        let meterStop =
            Self.register(in: p["meterValue"], context: "Transaction.End") ?? t.lastRegister ?? t.meterStart ?? 0
        var reason: String?
        if p["eventType"]?.stringValue == "Ended" {
            let stopped = p.value(at: "transactionInfo.stoppedReason")?.stringValue ?? "Local"
            reason =
                stopped == "ImmediateReset" && state.lastReset == "Soft"
                ? "SoftReset" : tables.enumMap(.stoppedReason201To16).map(stopped)
        } else {
            reason = tables.enumMap(.stopTriggerReason201To16).map(p["triggerReason"]?.stringValue ?? "")
        }
        var stopTag: JSONValue?
        if p["triggerReason"]?.stringValue == "StopAuthorized", let token = p["idToken"] {
            stopTag = idTag(for: token, action: action, &io).map(JSONValue.string)
        }
        var data = meterValues16(p["meterValue"], action: action, &io)
        // StopTransaction's unit enumeration has no Hertz.
        data = data.map { value in
            var value = value
            let samples = (value["sampledValue"]?.arrayValue ?? []).map { sample -> JSONValue in
                var sample = sample
                if sample["unit"]?.stringValue == "Hertz" { sample.set("unit", nil) }
                return sample
            }
            value.set("sampledValue", .array(samples))
            return value
        }
        let message = JSONValue.object(omittingNil: [
            "transactionId": .int(t.number ?? 0), "meterStop": .int(meterStop), "timestamp": timestamp,
            "reason": reason == "Local" ? nil : reason.map(JSONValue.string), "idTag": stopTag,
            "transactionData": data.isEmpty ? nil : .array(data),
        ])
        sendTransactionMessage("StopTransaction", message, of: t, answering: call, &io)
    }

    /// Sends the readings of an event, if it has any 1.6 can carry; whether it sent them.
    @discardableResult
    private mutating func sendMeterValues(
        _ values: JSONValue?,
        of t: Transaction,
        connector: Int,
        action: String,
        answering call: RPCFrame.Call? = nil,
        _ io: inout Effects<Self>
    ) -> Bool {
        let converted = meterValues16(values, action: action, &io)
        guard !converted.isEmpty else { return false }
        let message = JSONValue.object([
            (key: "connectorId", value: .int(connector)), (key: "transactionId", value: .int(t.number ?? 0)),
            (key: "meterValue", value: .array(converted)),
        ])
        sendTransactionMessage("MeterValues", message, of: t, answering: call, &io)
        return true
    }

    /// StartTransaction.conf: the backend's id is stored before anything that needs it goes out, and the held
    /// answer tells the charger the token's verdict.
    mutating func transactionStarted(_ id: String, _ payload: JSONValue, _ io: inout Effects<Self>) {
        guard let index = state.transactions.lastIndex(where: { $0.id == id }) else { return }
        let number = payload["transactionId"]?.intValue ?? -1
        state.transactions[index].number = number
        numberKnown(id, number, &io)
        let info = idTokenInfo(payload["idTagInfo"])
        let status = info?["status"]?.stringValue ?? "Accepted"
        if status != "Accepted" { state.transactions[index].rejected = status }
        markChanged()
        if let held, held.transaction == id {
            self.held = nil
            io.reply(to: .charger, held.messageID, .object(omittingNil: ["idTokenInfo": info]))
        } else if status != "Accepted" && !state.transactions[index].ended {
            // The charger was answered before the verdict came: the relay stops the transaction itself.
            io.sendCharger("RequestStopTransaction", .object([(key: "transactionId", value: .string(id))]), .relay)
            io.note(.lossy, "StartTransaction", "the backend rejected the token late (\(status)); stopping")
        }
    }

    /// StartTransaction failed for good: later messages of the transaction carry -1, as a 1.6 charger's do.
    mutating func transactionStartFailed(_ id: String, _ io: inout Effects<Self>) {
        guard let index = state.transactions.lastIndex(where: { $0.id == id }) else { return }
        state.transactions[index].number = -1
        numberKnown(id, -1, &io)
        markChanged()
        if let held, held.transaction == id {
            self.held = nil
            io.reply(to: .charger, held.messageID, .object([]))
        }
    }

    /// Keeps the open transactions and the last few ended ones (a late RemoteStop or retry may name them).
    private mutating func pruneTransactions() {
        let ended = state.transactions.indices.filter { state.transactions[$0].ended }
        guard ended.count > 8 else { return }
        let drop = Set(ended.prefix(ended.count - 8))
        state.transactions = state.transactions.enumerated().filter { !drop.contains($0.offset) }
            .map(\.element)
    }

    /// The 1.6 connector of a transaction, once its EVSE is known.
    func connector(of t: Transaction) -> Int? {
        guard let evseId = t.evseId else { return nil }
        return tables.topology.connector(evseId: evseId, connectorId: t.connectorId)
    }

    // MARK: Status synthesis

    /// The 1.6 status of a connector now (§6.4.1).
    func currentStatus(_ connector: Int) -> String {
        let c = state.connectorStatus[String(connector)] ?? "Available"
        if ["Unavailable", "Faulted", "Reserved"].contains(c) { return c }
        if connector == 0 { return c == "Occupied" ? "Available" : c }
        let t = state.transactions.last { self.connector(of: $0) == connector }
        if let t, t.window == .open, !t.ended {
            return tables.enumMap(.chargingState201To16).map(t.chargingState ?? "EVConnected") ?? "SuspendedEVSE"
        }
        if let t, t.window == .closed || t.ended, c == "Occupied" {
            return t.window == .none ? "Preparing" : "Finishing"
        }
        return c == "Occupied" ? "Preparing" : "Available"
    }

    func statusMessage(_ connector: Int, status: String, timestamp: JSONValue?) -> JSONValue {
        var error = state.connectorErrors[String(connector)] ?? "NoError"
        if status == "Faulted" && error == "NoError" { error = "OtherError" }
        return .object(omittingNil: [
            "connectorId": .int(connector), "errorCode": .string(error), "status": .string(status),
            "timestamp": timestamp,
        ])
    }

    /// The StatusNotification to send when the connector's 1.6 status changed (and notes it as sent).
    mutating func statusChange(_ connector: Int, timestamp: JSONValue?) -> JSONValue? {
        let status = currentStatus(connector)
        guard state.reportedStatus[String(connector)] != status else { return nil }
        state.reportedStatus[String(connector)] = status
        markChanged()
        return statusMessage(connector, status: status, timestamp: timestamp)
    }

    // MARK: Meter values

    /// 2.0.1 meter values in 1.6 form: numbers as decimal strings with the multiplier applied, units and
    /// measurands 1.6 lacks dropped (and noted), a signed value as a second, SignedData sample.
    func meterValues16(_ values: JSONValue?, action: String, _ io: inout Effects<Self>) -> [JSONValue] {
        var result: [JSONValue] = []
        var dropped: Set<String> = []
        let measurands = tables.enumMap(.measurand201To16)
        let units = tables.enumMap(.unit201To16)
        for value in values?.arrayValue ?? [] {
            var samples: [JSONValue] = []
            for sample in value["sampledValue"]?.arrayValue ?? [] {
                let measurand = sample["measurand"]?.stringValue ?? "Energy.Active.Import.Register"
                guard let mapped = measurands.map(measurand) else {
                    dropped.insert(measurand)
                    continue
                }
                let unitOfMeasure = sample["unitOfMeasure"]
                let unit = unitOfMeasure?["unit"]?.stringValue ?? "Wh"
                guard let unit16 = units.map(unit) else {
                    dropped.insert("unit \(unit)")
                    continue
                }
                let multiplier = unitOfMeasure?["multiplier"]?.intValue ?? 0
                guard let number = sample["value"].flatMap(Self.decimalText) else { continue }
                // `value` first, as 1.6 examples write it.
                func sample16(_ value: String, signed: Bool) -> JSONValue {
                    .object(omittingNil: [
                        "value": .string(value), "context": sample["context"],
                        "format": signed ? .string("SignedData") : nil, "measurand": .string(mapped),
                        "phase": sample["phase"], "location": sample["location"], "unit": .string(unit16),
                    ])
                }
                samples.append(sample16(Self.scaled(number, by: multiplier), signed: false))
                if let signed = sample["signedMeterValue"]?["signedMeterData"]?.stringValue {
                    samples.append(sample16(signed, signed: true))
                }
            }
            guard !samples.isEmpty, let timestamp = value["timestamp"] else { continue }
            result.append(
                .object([(key: "timestamp", value: timestamp), (key: "sampledValue", value: .array(samples))])
            )
        }
        if !dropped.isEmpty {
            io.note(.lossy, action, "no 1.6 counterpart, dropped: \(dropped.sorted().joined(separator: ", "))")
        }
        return result
    }

    /// The energy register reading in Wh (of a context, when given) in 2.0.1 meter values.
    static func register(in values: JSONValue?, context: String? = nil) -> Int? {
        for value in values?.arrayValue ?? [] {
            for sample in value["sampledValue"]?.arrayValue ?? [] {
                let measurand = sample["measurand"]?.stringValue ?? "Energy.Active.Import.Register"
                guard measurand == "Energy.Active.Import.Register" else { continue }
                if let context, (sample["context"]?.stringValue ?? "Sample.Periodic") != context { continue }
                guard let number = sample["value"]?.doubleValue else { continue }
                let multiplier = sample["unitOfMeasure"]?["multiplier"]?.intValue ?? 0
                return wattHours(
                    number,
                    multiplier: multiplier,
                    kWh: sample["unitOfMeasure"]?["unit"]?.stringValue == "kWh"
                )
            }
        }
        return nil
    }

    /// An energy register reading in whole Wh.
    static func wattHours(_ number: Double, multiplier: Int, kWh: Bool) -> Int {
        var wattHours = number * pow10(multiplier)
        if kWh { wattHours *= 1000 }
        return Int((wattHours + 0.5).rounded(.down))
    }

    static func decimalText(_ value: JSONValue) -> String? {
        switch value {
        case .number(let text): text
        case .string(let text): Double(text) == nil ? nil : text
        default: nil
        }
    }

    /// A decimal number times 10^`power`, exactly as text (no binary rounding of the charger's reading).
    static func scaled(_ number: String, by power: Int) -> String {
        guard power != 0, let value = Double(number) else { return number }
        let result = value * pow10(power)
        if result == result.rounded() && abs(result) < 1e15 { return String(Int64(result)) }
        return String(result)
    }

    static func pow10(_ power: Int) -> Double {
        var result = 1.0
        for _ in 0..<abs(power) { result *= 10 }
        return power < 0 ? 1 / result : result
    }
}
