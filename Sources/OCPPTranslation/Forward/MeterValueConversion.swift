import OCPP

extension ForwardRules {
    /// 1.6 `meterValue[]` → 2.0.1 `meterValue[]`: values become numbers, `unit` becomes `unitOfMeasure`,
    /// measurands 2.0.1 lacks are dropped (and reported). A signed sample (`format` SignedData) becomes the
    /// `signedMeterValue` of its reading (the Raw sample of the same measurand, phase, context and location), its
    /// data carried byte for byte. Meter values left without samples are dropped.
    func convertMeterValues(_ values: JSONValue?, action: String, _ io: inout Effects<Self>) -> [JSONValue] {
        var converted: [JSONValue] = []
        // Looked up once per message, not per sample.
        let maps = (measurands: tables.enumMap(.measurand16To201), units: tables.enumMap(.unit16To201))
        for meterValue in values?.arrayValue ?? [] {
            var samples: [JSONValue] = []
            var readings: [JSONValue] = []
            var signed: [JSONValue] = []
            for sample in meterValue["sampledValue"]?.arrayValue ?? [] {
                if sample["format"]?.stringValue == "SignedData" {
                    signed.append(sample)
                } else if let converted = convertSample(sample, maps, action: action, &io) {
                    readings.append(sample)
                    samples.append(converted)
                }
            }
            for sample in signed {
                attachSigned(sample, readings: readings, samples: &samples, maps, action: action, &io)
            }
            guard !samples.isEmpty, let timestamp = meterValue["timestamp"] else { continue }
            converted.append(
                .object([(key: "timestamp", value: timestamp), (key: "sampledValue", value: .array(samples))])
            )
        }
        return converted
    }

    /// Puts a 1.6 SignedData sample on the 2.0.1 sample of its reading (or on a sample of its own, read from an
    /// OCMF reading); what cannot be carried whole is dropped, never cut, and reported.
    private func attachSigned(
        _ sample: JSONValue,
        readings: [JSONValue],
        samples: inout [JSONValue],
        _ maps: (measurands: EnumMap, units: EnumMap),
        action: String,
        _ io: inout Effects<Self>
    ) {
        guard let data = sample["value"]?.stringValue, let signedMeterValue = SignedMeterValue(data) else {
            io.note(.lossy, action, "a signed meter value without data; dropped")
            return
        }
        guard signedMeterValue.fits else {
            io.note(.lossy, action, "a signed meter value longer than 2.0.1's 2500 characters; dropped, not cut")
            return
        }
        if signedMeterValue.signingMethod.isEmpty {
            io.note(.lossy, action, "the signing method of a signed meter value is unknown (left empty)")
        }
        func key(_ s: JSONValue) -> [String] {
            [
                s["measurand"]?.stringValue ?? "Energy.Active.Import.Register", s["phase"]?.stringValue ?? "",
                s["context"]?.stringValue ?? "Sample.Periodic", s["location"]?.stringValue ?? "Outlet",
            ]
        }
        if let index = readings.firstIndex(where: { key($0) == key(sample) }), samples[index]["signedMeterValue"] == nil
        {
            samples[index].set("signedMeterValue", signedMeterValue.json)
            return
        }
        // No Raw sample beside it: the reading comes from the signed data itself when it says it (OCMF).
        guard let reading = signedMeterValue.reading else {
            io.note(.lossy, action, "a signed meter value without a reading beside it; dropped")
            return
        }
        var own = sample
        own.set("format", nil)
        own.set("value", .string(reading.value))
        if let unit = reading.unit { own.set("unit", .string(unit)) }
        guard var converted = convertSample(own, maps, action: action, &io) else { return }
        converted.set("signedMeterValue", signedMeterValue.json)
        samples.append(converted)
    }

    private func convertSample(
        _ sample: JSONValue,
        _ maps: (measurands: EnumMap, units: EnumMap),
        action: String,
        _ io: inout Effects<Self>
    ) -> JSONValue? {
        guard let text = sample["value"]?.stringValue, let number = Self.decimal(text) else {
            io.note(.lossy, action, "sample value \(sample["value"]?.jsonText ?? "(none)") is not a number; dropped")
            return nil
        }
        var measurand: JSONValue?
        if let m = sample["measurand"]?.stringValue {
            guard let mapped = maps.measurands.map(m) else {
                io.note(.lossy, action, "measurand \(m) has no 2.0.1 value; sample dropped")
                return nil
            }
            measurand = .string(mapped)
        }
        var unit: JSONValue?
        if let u = sample["unit"]?.stringValue {
            unit = .object([(key: "unit", value: .string(maps.units.map(u) ?? u))])
        }
        return .object(omittingNil: [
            "value": number,
            "context": sample["context"],
            "measurand": measurand,
            "phase": sample["phase"],
            "location": sample["location"],
            "unitOfMeasure": unit,
        ])
    }

    /// A decimal string as a JSON number, written as it was when it already is valid JSON.
    static func decimal(_ text: String) -> JSONValue? {
        let trimmed = text.trimmingSpaces
        if isJSONNumber(trimmed) { return .number(trimmed) }
        guard let value = Double(trimmed), value.isFinite else { return nil }
        return .number(value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value))
    }

    /// Whether `text` is a JSON number as RFC 8259 writes it (`-0.5`, `12`, `1e3`; not `01`, `.5`, `1.`).
    static func isJSONNumber(_ text: String) -> Bool { isJSONNumber(text.utf8[...]) }

    /// Whether `bytes` spell a JSON number as RFC 8259 writes it.
    static func isJSONNumber<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool where Bytes.SubSequence == Bytes {
        var bytes = bytes
        func digits() -> Int {
            let count = bytes.prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }.count
            bytes = bytes.dropFirst(count)
            return count
        }
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        if bytes.first == UInt8(ascii: "0") {
            bytes = bytes.dropFirst()
        } else if digits() == 0 {
            return false
        }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard digits() > 0 else { return false }
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return bytes.isEmpty
    }

    /// The energy register reading the 1.6 `meterStart`/`meterStop` carries, as a 2.0.1 meter value.
    static func energyReading(_ wattHours: JSONValue, context: String, timestamp: JSONValue) -> JSONValue {
        .object([
            (key: "timestamp", value: timestamp),
            (
                key: "sampledValue",
                value: .array([
                    .object([
                        (key: "value", value: wattHours),
                        (key: "context", value: .string(context)),
                        (key: "measurand", value: .string("Energy.Active.Import.Register")),
                        (key: "unitOfMeasure", value: .object([(key: "unit", value: .string("Wh"))])),
                    ])
                ])
            ),
        ])
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
