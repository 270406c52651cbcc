import Foundation
import OCPP
import Testing

@testable import OCPPTranslation

/// The OCPP 2.1 step: 2.1 peers beside 2.0.1 rules, lowered on the way in and lifted on the way out, by the schema
/// facts and `messages-21-on-201.yaml`.
@Suite("OCPP 2.1 step")
struct StepTests {
    let ids = IDs()
    static let long = String(repeating: "7", count: 50)

    func frames(_ outputs: [TranslationOutput]) -> [(to: String, frame: [JSONValue])] { EngineTests.frames(outputs) }
    func notes(_ outputs: [TranslationOutput]) -> [TranslationDiagnostic] { EngineTests.notes(outputs) }

    @Test("a 2.1 event crosses as itself: long token aliased, 2.1 type mapped, 2.1-only members left out and noted")
    func lowering() throws {
        var engine = Driven(charger: .v21, upstream: .v201, ids: ids)
        let event = """
            [2,"c1","TransactionEvent",{"eventType":"Started","timestamp":"2026-11-27T06:00:00Z",\
            "triggerReason":"RunningCost","seqNo":0,"evseSleep":false,\
            "customData":{"vendorId":"org.example","tariff":"T1"},\
            "transactionInfo":{"transactionId":"TX","tariffId":"T1"},\
            "idToken":{"idToken":"\(Self.long)","type":"VIN"}}]
            """
        let out = engine.fromCharger(event)
        let (to, frame) = try #require(frames(out).first)
        #expect(to == "upstream" && frame[2] == .string("TransactionEvent"))
        let payload = frame[3]
        let token = try #require(payload["idToken"]?["idToken"]?.stringValue)
        #expect(token.count <= 36 && token != String(Self.long.prefix(36)))
        #expect(payload["idToken"]?["type"] == .string("Central"))
        #expect(payload["triggerReason"] == .string("MeterValuePeriodic"))
        #expect(payload["evseSleep"] == nil && payload["transactionInfo"]?["tariffId"] == nil)
        let lossy = notes(out).filter { $0.kind == .lossy }.map(\.message).joined()
        #expect(payload["customData"] == .object([("vendorId", .string("org.example")), ("tariff", .string("T1"))]))
        for lost in ["evseSleep", "transactionInfo.tariffId", "RunningCost", "VIN"] {
            #expect(lossy.contains(lost), "\(lossy)")
        }
        // The alias is remembered (stored first), and a remote start naming it reaches the charger as the token.
        #expect(out.contains { if case .persist = $0 { true } else { false } })
        #expect(engine.state.step21.tokens[token] == StepState.Token(idToken: Self.long, type: "VIN"))
        let start = engine.fromUpstream(
            #"[2,"b1","RequestStartTransaction",{"remoteStartId":1,"idToken":{"idToken":"\#(token)","type":"Central"}}]"#
        )
        let command = try #require(frames(start).first { $0.to == "charger" })
        #expect(command.frame[3]["idToken"] == .object([("idToken", .string(Self.long)), ("type", .string("VIN"))]))
    }

    @Test("a sample 2.0.1 cannot carry is left out whole (its measurand's absence would mean energy), and noted")
    func samples() throws {
        var engine = Driven(charger: .v21, upstream: .v201, ids: ids)
        let out = engine.fromCharger(
            #"[2,"m1","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"2026-11-27T06:00:00Z","sampledValue":["#
                + #"{"value":1200},{"value":81,"measurand":"Display.PresentSOC"},"#
                + #"{"value":228.5,"measurand":"Voltage.Minimum"}]}]}]"#
        )
        let (_, call) = try #require(frames(out).first)
        let samples = try #require(call[3]["meterValue"]?.arrayValue?.first?["sampledValue"]?.arrayValue)
        #expect(samples.map { $0["measurand"] } == [nil, .string("SoC")])
        let lossy = notes(out).filter { $0.kind == .lossy }.map(\.message).joined()
        #expect(lossy.contains("Voltage.Minimum") && lossy.contains("Display.PresentSOC became SoC"), "\(lossy)")
        // Nothing left to carry: refused with the reason, never sent empty.
        let none = engine.fromCharger(
            #"[2,"m2","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"2026-11-27T06:00:00Z","sampledValue":["#
                + #"{"value":228.5,"measurand":"Voltage.Minimum"}]}]}]"#
        )
        #expect(frames(none).map(\.to) == ["charger"] && frames(none).first?.frame[0] == .number("4"))
    }

    @Test("a payload 2.0.1 already takes crosses unchanged; answers come back as the peer sent them")
    func unchanged() throws {
        var engine = Driven(charger: .v21, upstream: .v201, ids: ids)
        let heartbeat = engine.fromCharger(#"[2,"h1","Heartbeat",{}]"#)
        let (_, call) = try #require(frames(heartbeat).first)
        #expect(call[3] == .object([]) && notes(heartbeat).isEmpty)
        let answer = engine.fromUpstream(#"[3,"\#(call[1].stringValue!)",{"currentTime":"2026-11-27T06:00:01Z"}]"#)
        let expected: [JSONValue] = [
            .number("3"), .string("h1"), .object([("currentTime", .string("2026-11-27T06:00:01Z"))]),
        ]
        #expect(frames(answer).map(\.frame) == [expected])
    }

    @Test(
        "messages only 2.1 has: answered or refused as the step table says, NotSupported when it says nothing",
        arguments: [
            ("NotifyDERAlarm", #"{"controlType":"FreqDroop","timestamp":"2026-11-27T06:00:00Z"}"#, "3", "{}"),
            (
                "OpenPeriodicEventStream", #"{"constantStreamData":{"id":1,"variableMonitoringId":2,"params":{}}}"#,
                "3",
                #"{"status":"Rejected"}"#
            ),
            ("VatNumberValidation", #"{"vatNumber":"DE1","evseId":1}"#, "4", "NotSupported"),
            ("NoSuchAction", "{}", "4", "NotImplemented"),
        ]
    )
    func only21(action: String, payload: String, type: String, answer: String) throws {
        var engine = Driven(charger: .v21, upstream: .v16, ids: ids)
        let out = engine.fromCharger(#"[2,"x","\#(action)",\#(payload)]"#)
        let (to, frame) = try #require(frames(out).first)
        #expect(to == "charger" && frame[0] == .number(type) && frames(out).count == 1)
        #expect(type == "3" ? frame[2] == (try JSONParser.parse(answer)) : frame[2] == .string(answer))
    }

    @Test("a SEND from the 2.1 peer goes nowhere and is noted; a CALLRESULTERROR is noted; an unknown type is ignored")
    func frameTypes() {
        var engine = Driven(charger: .v21, upstream: .v201, ids: ids)
        let send = engine.fromCharger(
            #"[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2026-11-27T06:00:00Z","data":[]}]"#
        )
        #expect(frames(send).isEmpty && notes(send).contains { $0.kind == .send && $0.message.contains("SEND") })
        let wrong = engine.fromCharger(#"[5,"r1","FormatViolation","bad answer",{}]"#)
        #expect(frames(wrong).isEmpty && notes(wrong).map(\.kind) == [.refusedAnswer])
        let unknown = engine.fromCharger(#"[7,"u1","Future",{}]"#)
        #expect(frames(unknown).isEmpty)
        // A 2.0.1 charger on the same relay still gets OCPP 2.0.1's answer to a type it cannot send.
        var older = Driven(charger: .v201, upstream: .v21, ids: ids)
        let refused = older.fromCharger(#"[7,"u1","Future",{}]"#)
        #expect(frames(refused).first?.frame[2] == .string("MessageTypeNotSupported"))
    }

    @Test("towards a 2.1 backend: required members filled, 2.1-only commands refused, 2.1 values mapped down")
    func towards21() throws {
        var engine = Driven(charger: .v201, upstream: .v21, ids: ids)
        let report = engine.fromCharger(
            #"[2,"m1","NotifyMonitoringReport",{"requestId":1,"seqNo":0,"generatedAt":"2026-11-27T06:00:00Z","monitor":[{"component":{"name":"EVSE"},"variable":{"name":"Power"},"variableMonitoring":[{"id":1,"transaction":false,"value":1,"type":"UpperThreshold","severity":5}]}]}]"#
        )
        let (_, call) = try #require(frames(report).first)
        let monitor = call[3]["monitor"]?.arrayValue?.first?["variableMonitoring"]?.arrayValue?.first
        #expect(monitor?["eventNotificationType"] == .string("CustomMonitor"))
        let tariff = engine.fromUpstream(
            #"[2,"t1","SetDefaultTariff",{"evseId":0,"tariff":{"tariffId":"T","currency":"EUR"}}]"#
        )
        #expect(frames(tariff).map(\.frame[2]) == [.string("NotSupported")])
        let reset = engine.fromUpstream(#"[2,"r1","Reset",{"type":"ImmediateAndResume"}]"#)
        #expect(frames(reset).first { $0.to == "charger" }?.frame[3]["type"] == .string("Immediate"))
        // A required value 2.0.1 has no counterpart for: refused, never sent as something else.
        let log = engine.fromUpstream(
            #"[2,"l1","GetLog",{"logType":"DataCollectorLog","requestId":3,"log":{"remoteLocation":"ftp://x/"}}]"#
        )
        let refusal = try #require(frames(log).first)
        #expect(refusal.to == "upstream" && refusal.frame[0] == .number("4"))
    }

    @Test(
        "a 2.1 charger's SignCertificate requestId comes back in the backend's CertificateSigned, and survives a restart"
    )
    func signRequestId() throws {
        var engine = Driven(charger: .v21, upstream: .v201, ids: ids)
        let sign = engine.fromCharger(#"[2,"s1","SignCertificate",{"csr":"CSR","requestId":42}]"#)
        let (_, call) = try #require(frames(sign).first)
        #expect(call[3]["requestId"] == nil)
        let stored = try JSONDecoder().decode(ChargerState.self, from: JSONEncoder().encode(engine.state))
        var restarted = Driven(charger: .v21, upstream: .v201, state: stored, ids: ids)
        let signed = restarted.fromUpstream(#"[2,"c1","CertificateSigned",{"certificateChain":"PEM"}]"#)
        let (_, command) = try #require(frames(signed).first)
        #expect(command[3]["requestId"] == .number("42"))
    }
}

@Suite("OCPP 2.1 step table")
struct StepTableTests {
    @Test("the shipped tables, the step's included, agree with the schemas")
    func shippedAgree() {
        #expect(Repository.tables().checkAgainstSchemas().map(\.description) == [])
    }

    @Test("the check names what the step table gets wrong, with its line")
    func mistakes() {
        var files: [String: String] = [:]
        for name in MappingTables.fileNames {
            files[name] = try? String(
                contentsOf: Repository.root.appendingPathComponent("Mappings").appendingPathComponent(name),
                encoding: .utf8
            )
        }
        files[StepTable.fileName] = """
            charger:
              Heartbeat: {answer: {}}
              NotifyDERAlarm: {answer: {status: Maybe}}
            enums:
              trigger:
                at: [TransactionEventRequest triggerReason]
                values: {TxResumed: Resumed, Trigger: Trigger}
            fill:
              NotifyMonitoringReportRequest monitor.variableMonitoring.eventNotificationType: Sometimes
            """
        let problems = MappingTables(files: files).checkAgainstSchemas().map(\.description)
        let expected = [
            "messages-21-on-201.yaml:2: error: charger.Heartbeat: OCPP 2.0.1 has it too; it crosses as itself",
            "messages-21-on-201.yaml:2: error: charger.Heartbeat.answer: currentTime is required and missing",
            "messages-21-on-201.yaml:3: error: charger.NotifyDERAlarm.answer: status is not a member the schema knows",
            "messages-21-on-201.yaml:5: error: enums.trigger: Trigger is not a 2.1-only value of TransactionEventRequest triggerReason",
            "messages-21-on-201.yaml:5: error: enums.trigger: Resumed is not a 2.0.1 value of TransactionEventRequest triggerReason",
            "messages-21-on-201.yaml: error: fill: NotifyMonitoringReportRequest monitor.variableMonitoring.eventNotificationType: the payload is not one of the schema's values",
        ]
        #expect(problems == expected)
    }
}
