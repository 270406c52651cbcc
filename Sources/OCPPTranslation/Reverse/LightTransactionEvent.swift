import OCPP
import OCPPSchema

/// The light path of a 2.0.1 charger's most frequent message: a TransactionEvent Updated carrying meter values inside
/// an open transaction the backend knows, read from the frame's bytes and written as its 1.6 MeterValues without a
/// tree of either.
///
/// It takes only the events whose translation is sure without the tree path: a CALL that keeps the 2.0.1 schema
/// with plain strings, the table's stock `transaction_event` transform, no OCPP 2.1 step; an Updated event that does
/// not end the authorization, with a new seqNo, about an open transaction in step with the backend on a known
/// connector, changing nothing but its seqNo and register reading (no token, EVSE, charging state change or other
/// member), the connector's 1.6 status unchanged; every sample a number without multiplier or signature, with a
/// measurand and unit the tables map. Anything else goes the tree path (``transactionEvent(_:_:)``), which the
/// differential tests hold this one to.
extension ReverseRules {
    /// Translates `frame` when it is such an event: `false` (nothing done) for any other.
    mutating func lightTransactionEvent(_ frame: UnsafeBufferPointer<UInt8>, _ io: inout Effects<Self>) -> Bool {
        guard let call = lightCall(frame, Self.transactionEventAction, .reverseCharger(.transactionEvent), io) else {
            return false
        }
        let json = PlainJSON(bytes: frame)
        guard let event = UpdatedEvent(json, call.payload),
            tables.enumMap(.stopTriggerReason201To16).values[json.text(event.trigger)] == nil,
            let index = state.transactions.lastIndex(where: { json.matches(event.transaction, $0.id) })
        else { return false }
        var t = state.transactions[index]
        guard t.window == .open, !t.ended, inStep(t), let number = t.number, let connector = connector(of: t),
            t.lastSeqNo.map({ event.seqNo > $0 }) ?? true,
            event.chargingState.map({ sent in t.chargingState.map { json.matches(sent, $0) } ?? false }) ?? true,
            currentStatus(connector) == state.reportedStatus[String(connector)],
            let values = LightMeterValue16Writer.write(json, event.meterValues, tables)
        else { return false }
        t.lastSeqNo = event.seqNo
        if let register = values.register { t.lastRegister = register }
        state.transactions[index] = t
        var message: [UInt8] = []
        message.reserveCapacity(values.bytes.count + 64)
        message.append(contentsOf: #"{"connectorId":"#.utf8)
        message.append(contentsOf: String(connector).utf8)
        message.append(contentsOf: #","transactionId":"#.utf8)
        message.append(contentsOf: String(number).utf8)
        message.append(contentsOf: #","meterValue":"#.utf8)
        message.append(contentsOf: values.bytes)
        message.append(UInt8(ascii: "}"))
        io.forward(call, in: json, as: "MeterValues", payload: message, .inStep)
        return true
    }

    static let transactionEventAction = OCPPAction.all.firstIndex(of: "TransactionEvent")
}

/// The members of a 2.0.1 TransactionEvent Updated the light path takes; `nil` for any other event.
private struct UpdatedEvent {
    var trigger: Range<Int>
    var seqNo: Int
    /// The transaction id's text, and the charging state's if the event has one.
    var transaction: Range<Int>
    var chargingState: Range<Int>?
    var meterValues: Range<Int>

    init?(_ json: PlainJSON, _ payload: Range<Int>) {
        var seen = SeenMembers()
        var trigger, transaction, chargingState, meterValues: Range<Int>?
        var seqNo: Int?
        let read = json.members(of: payload) { name, value in
            switch name.count {
            case 9 where json.equals(name, "eventType"):
                return seen.first(0) && json.string(value).map { json.equals($0, "Updated") } == true
            case 9 where json.equals(name, "timestamp"): return seen.first(1)
            case 13 where json.equals(name, "triggerReason"): return seen.keep(2, json.string(value), in: &trigger)
            case 5 where json.equals(name, "seqNo"): return seen.keep(3, json.integer(value), in: &seqNo)
            case 15 where json.equals(name, "transactionInfo"):
                var info = SeenMembers()
                return seen.first(4)
                    && json.members(of: value) { name, value in
                        if json.equals(name, "transactionId") {
                            return info.keep(0, json.string(value), in: &transaction)
                        } else if json.equals(name, "chargingState") {
                            return info.keep(1, json.string(value), in: &chargingState)
                        }
                        return false
                    }
            case 10 where json.equals(name, "meterValue"): return seen.keep(5, value, in: &meterValues)
            default:
                return false
            }
        }
        guard read, let trigger, let seqNo, let transaction, let meterValues, seen.has(0) else { return nil }
        (self.trigger, self.seqNo, self.transaction) = (trigger, seqNo, transaction)
        (self.chargingState, self.meterValues) = (chargingState, meterValues)
    }
}

/// Writes 2.0.1 `meterValue[]` as 1.6's, as ``ReverseRules/meterValues16(_:action:_:)`` converts the samples it
/// keeps: the number as a decimal string, context, mapped measurand, phase, location, mapped unit.
private enum LightMeterValue16Writer {
    struct Written {
        var bytes: [UInt8]
        /// The energy register reading in Wh (``ReverseRules/register(in:context:)``), if a sample has one.
        var register: Int?
    }

    static let energyRegister = "Energy.Active.Import.Register"

    /// The 1.6 array; `nil` when a meter value or sample is one the tree path would drop, note or sign.
    static func write(_ json: PlainJSON, _ array: Range<Int>, _ tables: MappingTables) -> Written? {
        let measurands = tables.enumMap(.measurand201To16)
        let units = tables.enumMap(.unit201To16)
        var out: [UInt8] = []
        out.reserveCapacity(array.count + 64)
        var register: Int?
        let read = json.rewriteMeterValues(array, into: &out) { range, out in
            guard let sample = Sample(json, range) else { return false }
            let measurand = sample.measurand.map(json.text) ?? energyRegister
            let unit = sample.unit.map(json.text) ?? "Wh"
            guard let measurand16 = measurands.map(measurand), let unit16 = units.map(unit) else { return false }
            if register == nil, measurand == energyRegister, let number = Double(json.text(sample.value)) {
                register = ReverseRules.wattHours(number, multiplier: 0, kWh: unit == "kWh")
            }
            out.append(contentsOf: #"{"value":""#.utf8)
            out.append(contentsOf: json.bytes[sample.value])
            out.append(UInt8(ascii: "\""))
            json.copyMember("context", sample.context, to: &out)
            out.append(contentsOf: #","measurand":"#.utf8)
            JSONValue.writeString(measurand16, to: &out)
            json.copyMember("phase", sample.phase, to: &out)
            json.copyMember("location", sample.location, to: &out)
            out.append(contentsOf: #","unit":"#.utf8)
            JSONValue.writeString(unit16, to: &out)
            out.append(UInt8(ascii: "}"))
            return true
        }
        guard read != nil else { return nil }
        return Written(bytes: out, register: register)
    }

    /// A 2.0.1 sample's members: the number's bytes, the strings' texts (without quotes).
    struct Sample {
        var value: Range<Int>
        var context, measurand, phase, location, unit: Range<Int>?

        init?(_ json: PlainJSON, _ range: Range<Int>) {
            var seen = SeenMembers()
            var value, context, measurand, phase, location, unit: Range<Int>?
            let read = json.members(of: range) { name, member in
                switch name.count {
                case 5 where json.equals(name, "value"):
                    return seen.keep(0, member, in: &value) && ForwardRules.isJSONNumber(json.bytes[member])
                case 7 where json.equals(name, "context"): return seen.keep(1, json.string(member), in: &context)
                case 9 where json.equals(name, "measurand"): return seen.keep(2, json.string(member), in: &measurand)
                case 5 where json.equals(name, "phase"): return seen.keep(3, json.string(member), in: &phase)
                case 8 where json.equals(name, "location"): return seen.keep(4, json.string(member), in: &location)
                // A unit without multiplier: a multiplier scales the number, the tree path's.
                case 13 where json.equals(name, "unitOfMeasure"):
                    var inner = SeenMembers()
                    return seen.first(5)
                        && json.members(of: member) { name, member in
                            json.equals(name, "unit") && inner.keep(0, json.string(member), in: &unit)
                        }
                default:
                    return false
                }
            }
            guard read, let value else { return nil }
            (self.value, self.context, self.measurand) = (value, context, measurand)
            (self.phase, self.location, self.unit) = (phase, location, unit)
        }
    }
}
