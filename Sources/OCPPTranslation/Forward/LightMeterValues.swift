import OCPP
import OCPPSchema

/// The light path of the most frequent translated message: a 1.6 MeterValues inside a transaction, read from the
/// frame's bytes and written as its 2.0.1 TransactionEvent (Updated) without building a tree of either.
///
/// It takes only the frames whose translation is sure without the tree path's judgement: a CALL that keeps the 1.6
/// schema with plain strings (``SchemaFacts/conformingCall(_:)``), after the backend accepted the boot, on an open
/// transaction, with the table's stock `meter_values` transform, every sample a number with a measurand the tables
/// map, no signed data, no repeated member. Anything else (and anything the tree path would note) goes the tree
/// path, which says why. The tables stay the source of what maps to what; the differential tests hold the two paths
/// to the same frames and state.
extension ForwardRules {
    /// Translates `frame` when it is such a MeterValues: `false` (nothing done) for any other.
    mutating func lightMeterValues(_ frame: UnsafeBufferPointer<UInt8>, _ io: inout Effects<Self>) -> Bool {
        guard state.bootAccepted, let call = lightCall(frame, Self.meterValues, .charger(.meterValues), io) else {
            return false
        }
        let json = PlainJSON(bytes: frame)
        guard let payload = MeterValuesPayload(json, call.payload),
            var open = openTransaction(number: payload.transactionId, connector: payload.connectorId),
            let values = LightMeterValueWriter.write(json, payload.meterValues, tables)
        else { return false }
        let (seqNo, reserved) = open.takeSeqNo()
        if reserved { seqNosReserved = true }
        var event: [UInt8] = []
        event.reserveCapacity(values.bytes.count + 200)
        event.append(contentsOf: #"{"eventType":"Updated","timestamp":"#.utf8)
        event.append(contentsOf: frame[values.firstTimestamp])
        event.append(contentsOf: #","triggerReason":"#.utf8)
        JSONValue.writeString(meterTrigger(context: values.firstContext.map(json.text)), to: &event)
        event.append(contentsOf: #","seqNo":"#.utf8)
        event.append(contentsOf: String(seqNo).utf8)
        event.append(contentsOf: #","transactionInfo":{"transactionId":"#.utf8)
        JSONValue.writeString(open.id, to: &event)
        event.append(contentsOf: #"},"meterValue":"#.utf8)
        event.append(contentsOf: values.bytes)
        event.append(UInt8(ascii: "}"))
        state.update(open)
        io.forward(call, in: json, as: "TransactionEvent", payload: event, .emptyResult)
        return true
    }

    static let meterValues = OCPPAction.all.firstIndex(of: "MeterValues")
}

/// The members of a 1.6 MeterValues' payload, each read once.
private struct MeterValuesPayload {
    var connectorId = 0
    var transactionId: Int?
    var meterValues = 0..<0

    init?(_ json: PlainJSON, _ payload: Range<Int>) {
        var seen = SeenMembers()
        var connector: Int?
        var transactionId: Int?
        var meterValues: Range<Int>?
        let read = json.members(of: payload) { name, value in
            if json.equals(name, "connectorId") {
                return seen.keep(0, json.integer(value), in: &connector)
            } else if json.equals(name, "transactionId") {
                return seen.keep(1, json.integer(value), in: &transactionId)
            } else if json.equals(name, "meterValue") {
                return seen.keep(2, value, in: &meterValues)
            }
            return false
        }
        guard read, let connector, let meterValues else { return nil }
        (self.connectorId, self.transactionId, self.meterValues) = (connector, transactionId, meterValues)
    }
}

/// Writes 1.6 `meterValue[]` as 2.0.1's, as ``ForwardRules/convertMeterValues(_:action:_:)`` converts the samples it
/// keeps: the value as a number, context, mapped measurand, phase, location, and unit as `unitOfMeasure`.
private enum LightMeterValueWriter {
    struct Written {
        var bytes: [UInt8]
        /// The first meter value's timestamp (a JSON string, quotes included).
        var firstTimestamp: Range<Int>
        /// The first sample's context, if it has one.
        var firstContext: Range<Int>?
    }

    /// The 2.0.1 array; `nil` when a meter value or sample is one the tree path would drop, note or move.
    static func write(_ json: PlainJSON, _ array: Range<Int>, _ tables: MappingTables) -> Written? {
        let measurands = tables.enumMap(.measurand16To201)
        let units = tables.enumMap(.unit16To201)
        var out: [UInt8] = []
        out.reserveCapacity(array.count + 64)
        var firstContext: Range<Int>?
        var firstSample = true
        let firstTimestamp = json.rewriteMeterValues(array, into: &out) { range, out in
            guard let sample = Sample(json, range) else { return false }
            if firstSample { firstContext = sample.context }
            firstSample = false
            return sample.write(json, measurands, units, to: &out)
        }
        guard let firstTimestamp else { return nil }
        return Written(bytes: out, firstTimestamp: firstTimestamp, firstContext: firstContext)
    }

    /// A 1.6 sample's members (their texts, without quotes).
    struct Sample {
        var value: Range<Int>
        var context, measurand, phase, location, unit: Range<Int>?

        init?(_ json: PlainJSON, _ range: Range<Int>) {
            var seen = SeenMembers()
            var value: Range<Int>?
            var context, measurand, phase, location, unit: Range<Int>?
            let read = json.members(of: range) { name, member in
                guard let text = json.string(member) else { return false }
                switch name.count {
                case 5 where json.equals(name, "value"): return seen.keep(0, text, in: &value)
                case 7 where json.equals(name, "context"): return seen.keep(1, text, in: &context)
                // A signed sample moves onto its reading's sample: the tree path's.
                case 6 where json.equals(name, "format"): return seen.first(2) && json.equals(text, "Raw")
                case 9 where json.equals(name, "measurand"): return seen.keep(3, text, in: &measurand)
                case 5 where json.equals(name, "phase"): return seen.keep(4, text, in: &phase)
                case 8 where json.equals(name, "location"): return seen.keep(5, text, in: &location)
                case 4 where json.equals(name, "unit"): return seen.keep(6, text, in: &unit)
                default:
                    return false
                }
            }
            guard read, let value, ForwardRules.isJSONNumber(json.bytes[value]) else { return nil }
            (self.value, self.context, self.measurand) = (value, context, measurand)
            (self.phase, self.location, self.unit) = (phase, location, unit)
        }

        /// Writes the 2.0.1 sample; `false` when its measurand has no 2.0.1 value.
        func write(_ json: PlainJSON, _ measurands: EnumMap, _ units: EnumMap, to out: inout [UInt8]) -> Bool {
            var mapped: String?
            if let measurand {
                guard let known = measurands.map(json.text(measurand)) else { return false }
                mapped = known
            }
            out.append(contentsOf: #"{"value":"#.utf8)
            out.append(contentsOf: json.bytes[value])
            json.copyMember("context", context, to: &out)
            if let mapped {
                out.append(contentsOf: #","measurand":"#.utf8)
                JSONValue.writeString(mapped, to: &out)
            }
            json.copyMember("phase", phase, to: &out)
            json.copyMember("location", location, to: &out)
            if let unit {
                let text = json.text(unit)
                out.append(contentsOf: #","unitOfMeasure":{"unit":"#.utf8)
                JSONValue.writeString(units.map(text) ?? text, to: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "}"))
            return true
        }
    }
}
