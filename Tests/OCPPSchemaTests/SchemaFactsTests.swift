import OCPP
import OCPPSchema
import Testing

/// The facts generated from the official schemas, and the judgement of payloads against them.
@Suite("Schema facts")
struct SchemaFactsTests {
    static func payload(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

    @Test("every version's messages are there, with requests and responses")
    func messages() throws {
        #expect(SchemaFacts.ocpp16.actions.count == 39)
        #expect(SchemaFacts.ocpp201.actions.count == 64)
        #expect(SchemaFacts.ocpp21.actions.count == 91)
        let stop = try #require(SchemaFacts.ocpp16.request("StopTransaction"))
        #expect(stop.required.sorted() == ["meterStop", "timestamp", "transactionId"])
        #expect(stop.properties["meterStop"]?.kind == .integer)
        #expect(SchemaFacts.ocpp201.node(at: "", in: "TransactionEvent")?.required.contains("seqNo") == true)
        // 2.1's SEND has no response.
        #expect(SchemaFacts.ocpp21.request("NotifyPeriodicEventStream") != nil)
        #expect(SchemaFacts.ocpp21.response("NotifyPeriodicEventStream") == nil)
        // Shared definitions are read through: an idToken's type is an enumeration.
        let type = try #require(SchemaFacts.ocpp201.request("Authorize")?.node(at: "idToken.type"))
        #expect(type.allows("eMAID") && !type.allows("RFID"))
    }

    @Test("a valid payload has no violations")
    func valid() throws {
        let facts = try #require(SchemaFacts.ocpp16.request("MeterValues"))
        let payload = try Self.payload(
            #"{"connectorId":1,"transactionId":7,"meterValue":[{"timestamp":"2026-12-07T10:00:00Z","sampledValue":[{"value":"500","measurand":"Energy.Active.Import.Register","unit":"Wh"}]}]}"#
        )
        #expect(facts.violations(in: payload).isEmpty)
    }

    @Test(
        "each rule is reported with its path",
        arguments: [
            (#"{"connectorId":"1","meterValue":[]}"#, "connectorId", "type"),
            (#"{"connectorId":1}"#, "meterValue", "required"),
            (#"{"connectorId":1,"meterValue":[]}"#, "meterValue", "minItems"),
            (
                #"{"connectorId":1,"meterValue":[{"timestamp":"2026-12-07T10:00:00Z","sampledValue":[{"value":5}]}]}"#,
                "meterValue[0].sampledValue[0].value", "type"
            ),
            (
                #"{"connectorId":1,"meterValue":[{"timestamp":"yesterday","sampledValue":[{"value":"5"}]}]}"#,
                "meterValue[0].timestamp", "format"
            ),
            (
                #"{"connectorId":1,"meterValue":[{"timestamp":"2026-12-07T10:00:00Z","sampledValue":[{"value":"5","unit":"Joule"}]}]}"#,
                "meterValue[0].sampledValue[0].unit", "enumeration"
            ),
            (
                #"{"connectorId":1,"colour":"red","meterValue":[{"timestamp":"2026-12-07T10:00:00Z","sampledValue":[{"value":"5"}]}]}"#,
                "colour", "additionalProperty"
            ),
        ]
    )
    func rules(_ text: String, _ path: String, _ rule: String) throws {
        let facts = try #require(SchemaFacts.ocpp16.request("MeterValues"))
        let found = facts.violations(in: try Self.payload(text))
        #expect(found.first?.path == path, "\(found)")
        #expect(found.first.map { Self.name($0.rule) } == rule, "\(found)")
    }

    @Test("lengths and bounds")
    func limits() throws {
        let authorize = try #require(SchemaFacts.ocpp16.request("Authorize"))
        let long = authorize.violations(in: try Self.payload(#"{"idTag":"0123456789012345678901234"}"#))
        #expect(long.map(\.rule) == [.maxLength(20)])
        #expect(long.first?.description == "idTag is longer than 20 characters")
        let level = try #require(
            SchemaFacts.ocpp201.request("RequestStartTransaction")?
                .node(at: "chargingProfile.chargingSchedule.salesTariff.salesTariffEntry.ePriceLevel")
        )
        #expect(level.violations(in: .number("-1")).map(\.rule) == [.minimum(0)])
        #expect(level.violations(in: .number("3")).isEmpty)
        // 1.6 charging schedules take one decimal.
        let profile = try #require(
            SchemaFacts.ocpp16.request("SetChargingProfile")?
                .node(at: "csChargingProfiles.chargingSchedule.chargingSchedulePeriod.limit")
        )
        #expect(profile.violations(in: .number("16.5")).isEmpty)
        #expect(profile.violations(in: .number("16.05")).map(\.rule) == [.multipleOf(0.1)])
    }

    @Test("unambiguous type slips are mended, others are not")
    func normalisation() throws {
        let stop = try #require(SchemaFacts.ocpp16.request("StopTransaction"))
        let payload = try Self.payload(#"{"transactionId":"7","meterStop":"500","timestamp":"2026-12-07T10:00:00Z"}"#)
        let (mended, fixes) = try #require(stop.normalised(payload))
        #expect(
            mended == (try Self.payload(#"{"transactionId":7,"meterStop":500,"timestamp":"2026-12-07T10:00:00Z"}"#))
        )
        #expect(fixes.map(\.path) == ["transactionId", "meterStop"])
        #expect(stop.violations(in: mended).isEmpty)
        // "5.5" is no integer, "five" no number: nothing to mend.
        #expect(stop.normalised(try Self.payload(#"{"transactionId":1,"meterStop":"five","timestamp":"x"}"#)) == nil)
        let values = try #require(SchemaFacts.ocpp16.request("MeterValues"))
        let number = try Self.payload(
            #"{"connectorId":1,"meterValue":[{"timestamp":"2026-12-07T10:00:00Z","sampledValue":[{"value":500.5}]}]}"#
        )
        let fixed = try #require(values.normalised(number))
        #expect(
            fixed.value.value(at: "meterValue")?.arrayValue?.first?["sampledValue"]?.arrayValue?.first?["value"]
                == .string("500.5")
        )
        #expect(fixed.mended.map(\.path) == ["meterValue[0].sampledValue[0].value"])
    }

    static func name(_ rule: SchemaViolation.Rule) -> String {
        switch rule {
        case .type: "type"
        case .required: "required"
        case .additionalProperty: "additionalProperty"
        case .maxLength: "maxLength"
        case .enumeration: "enumeration"
        case .format: "format"
        case .minimum: "minimum"
        case .maximum: "maximum"
        case .multipleOf: "multipleOf"
        case .minItems: "minItems"
        case .maxItems: "maxItems"
        }
    }
}

extension SchemaFacts {
    /// A request's facts at a path, for tests.
    func node(at path: String, in action: String) -> SchemaNode? {
        guard let request = request(action) else { return nil }
        return path.isEmpty ? request : request.node(at: path)
    }
}
