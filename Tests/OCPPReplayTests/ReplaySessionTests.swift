import OCPP
import Testing

@testable import OCPPReplay

/// A fixture from (direction on the charger leg, frame text) pairs, one second apart.
func fixture(_ frames: [(String, String)]) throws -> Fixture {
    var lines = [#"{"fixture":1,"charger":"CP-1","version":"1.6"}"#]
    for (index, (direction, text)) in frames.enumerated() {
        let entry = JSONValue.object([
            (key: "time", value: .string("2026-11-27T06:00:\(index < 10 ? "0" : "")\(index).000Z")),
            (key: "charger", value: .string("CP-1")), (key: "leg", value: .string("charger")),
            (key: "dir", value: .string(direction)), (key: "version", value: .string("1.6")),
            (key: "text", value: .string(text)),
        ])
        lines.append(entry.jsonText)
    }
    return try Fixture.parse(lines.joined(separator: "\n"))
}

final class Counter: @unchecked Sendable {
    var n = 0
    func next() -> String {
        n += 1
        return "r\(n)"
    }
}

@Suite("Replay as charger")
struct ReplaySessionTests {
    let recorded: [(String, String)] = [
        ("in", #"[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#),
        ("out", #"[3,"1",{"status":"Accepted","currentTime":"2026-11-27T06:00:01Z","interval":300}]"#),
        ("out", #"[2,"b1","GetConfiguration",{"key":["HeartbeatInterval"]}]"#),
        ("in", #"[3,"b1",{"configurationKey":[{"key":"HeartbeatInterval","readonly":false,"value":"300"}]}]"#),
        (
            "in",
            #"[2,"2","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2026-11-27T06:00:04Z"}]"#
        ),
        ("out", #"[3,"2",{"idTagInfo":{"status":"Accepted"},"transactionId":1}]"#),
        ("in", #"[2,"3","StopTransaction",{"transactionId":1,"meterStop":10,"timestamp":"2026-11-27T06:00:06Z"}]"#),
        ("out", #"[3,"3",{}]"#),
    ]

    private func sent(_ actions: [ReplayAction]) -> [RPCFrame] {
        actions.compactMap { if case .send(let text) = $0 { try? RPCFrame.parse(text) } else { nil } }
    }

    @Test("matching answers pass; a transaction id the live backend chooses is learned and used")
    func passes() throws {
        let ids = Counter()
        var session = try ReplaySession(
            fixture: fixture(recorded),
            options: ReplayOptions(role: .charger),
            makeID: { ids.next() }
        )
        #expect(session.subprotocol == "ocpp1.6")
        let start: Int64 = 1_900_000_000_000_000
        var frames = sent(session.start(at: start))
        #expect(frames.map(\.action) == ["BootNotification"])
        frames = sent(
            session.received(
                #"[3,"r1",{"status":"Accepted","currentTime":"2030-03-17T10:00:00Z","interval":300}]"#,
                at: start + 1000
            )
        )
        // The backend's GetConfiguration came before StartTransaction in the recording: wait for it…
        #expect(frames.isEmpty)
        frames = sent(
            session.received(#"[2,"live-9","GetConfiguration",{"key":["HeartbeatInterval"]}]"#, at: start + 2000)
        )
        // …answer it from the recording, then go on.
        #expect(frames.count == 2)
        #expect(
            frames[0]
                == RPCFrame.callResult(
                    .init(
                        messageID: "live-9",
                        payload: try JSONParser.parse(
                            #"{"configurationKey":[{"key":"HeartbeatInterval","readonly":false,"value":"300"}]}"#
                        )
                    )
                )
        )
        guard case .call(let startCall) = frames[1] else { Issue.record("expected StartTransaction"); return }
        #expect(startCall.action == "StartTransaction")
        // Timestamps are re-based: recorded 06:00:04, 4 s after the recording started.
        #expect(startCall.payload["timestamp"] == .string("2030-03-17T17:46:44Z"))
        frames = sent(
            session.received(#"[3,"r2",{"idTagInfo":{"status":"Accepted"},"transactionId":777}]"#, at: start + 3000)
        )
        guard case .call(let stopCall) = frames.first else { Issue.record("expected StopTransaction"); return }
        #expect(stopCall.payload["transactionId"] == .number("777"))
        let end = session.received(#"[3,"r3",{}]"#, at: start + 4000)
        #expect(end == [.finished])
        #expect(session.report.passed, "\(session.report.text())")
        #expect(session.report.exchanges.count == 4)
    }

    @Test("the live backend closing mid-replay ends the replay, reporting the call in flight and what was not sent")
    func peerCloses() throws {
        let ids = Counter()
        var session = try ReplaySession(
            fixture: fixture(recorded),
            options: ReplayOptions(role: .charger),
            makeID: { ids.next() }
        )
        let start: Int64 = 1_900_000_000_000_000
        _ = session.start(at: start)
        _ = session.received(
            #"[3,"r1",{"status":"Accepted","currentTime":"2030-03-17T10:00:00Z","interval":300}]"#,
            at: start + 1
        )
        _ = session.received(#"[2,"g","GetConfiguration",{"key":["HeartbeatInterval"]}]"#, at: start + 2)
        // StartTransaction is in flight when the backend closes.
        #expect(session.peerClosed(at: start + 3) == [.finished])
        #expect(session.timedOut(at: start + 4) == [.finished])
        #expect(!session.report.passed)
        let last = try #require(session.report.exchanges.last)
        #expect(last.name.contains("StartTransaction"))
        #expect(last.mismatches.map(\.got) == ["none: the peer closed the connection"])
        #expect(session.report.other.map(\.got) == ["closed by the peer with 1 of 3 CALLs not sent"])
    }

    @Test("a bound value belongs to its field: a reservation and a transaction both 1 bind to their own live ids")
    func bindingsPerField() throws {
        let frames: [(String, String)] = [
            ("in", #"[2,"1","Heartbeat",{}]"#),
            ("out", #"[3,"1",{"currentTime":"2026-11-27T06:00:01Z"}]"#),
            (
                "out",
                #"[2,"b1","ReserveNow",{"connectorId":1,"expiryDate":"2026-11-27T07:00:00Z","idTag":"T","reservationId":1}]"#
            ),
            ("in", #"[3,"b1",{"status":"Accepted"}]"#),
            (
                "in",
                #"[2,"2","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"reservationId":1,"timestamp":"2026-11-27T06:00:04Z"}]"#
            ),
            ("out", #"[3,"2",{"idTagInfo":{"status":"Accepted"},"transactionId":1}]"#),
            ("in", #"[2,"3","StopTransaction",{"transactionId":1,"meterStop":10,"timestamp":"2026-11-27T06:00:06Z"}]"#),
            ("out", #"[3,"3",{}]"#),
        ]
        let ids = Counter()
        var session = try ReplaySession(
            fixture: fixture(frames),
            options: ReplayOptions(role: .charger),
            makeID: { ids.next() }
        )
        let start: Int64 = 1_900_000_000_000_000
        _ = session.start(at: start)
        _ = session.received(#"[3,"r1",{"currentTime":"2030-03-17T10:00:00Z"}]"#, at: start + 1)
        // The live backend reserves with id 5: reservationId 1 of the recording is 5 from now on.
        var next = sent(
            session.received(
                #"[2,"live","ReserveNow",{"connectorId":1,"expiryDate":"2026-11-27T07:00:00Z","idTag":"T","reservationId":5}]"#,
                at: start + 2
            )
        )
        guard case .call(let startCall) = next.last else { Issue.record("expected StartTransaction"); return }
        #expect(startCall.payload["reservationId"] == .number("5"))
        // …and it chooses transaction 7: transactionId 1 is 7, not the reservation's 5.
        next = sent(session.received(#"[3,"r2",{"idTagInfo":{"status":"Accepted"},"transactionId":7}]"#, at: start + 3))
        guard case .call(let stopCall) = next.first else { Issue.record("expected StopTransaction"); return }
        #expect(stopCall.payload["transactionId"] == .number("7"))
        #expect(session.received(#"[3,"r3",{}]"#, at: start + 4) == [.finished])
        #expect(session.report.passed, "\(session.report.text())")
    }

    @Test("a different answer fails, and the report names the field")
    func fails() throws {
        let ids = Counter()
        var session = try ReplaySession(
            fixture: fixture(recorded),
            options: ReplayOptions(role: .charger, expectTimeout: 1),
            makeID: { ids.next() }
        )
        let start: Int64 = 1_900_000_000_000_000
        _ = session.start(at: start)
        _ = session.received(
            #"[3,"r1",{"status":"Rejected","currentTime":"2030-03-17T10:00:00Z","interval":60}]"#,
            at: start
        )
        // The backend never sends GetConfiguration: after the expect timeout the replay goes on without it.
        let actions = session.timedOut(at: start + 2_000_000)
        #expect(sent(actions).first?.action == "StartTransaction")
        _ = session.received(#"[4,"r2","SecurityError","not booted",{}]"#, at: start + 2_000_001)
        _ = session.received(#"[3,"r3",{}]"#, at: start + 2_000_002)
        let report = session.report
        #expect(!report.passed)
        let texts = report.mismatches.map(\.description)
        #expect(texts.contains("BootNotification.result status: expected \"Accepted\", got \"Rejected\""))
        #expect(texts.contains("BootNotification.result interval: expected 300, got 60"))
        #expect(texts.contains("GetConfiguration: expected this CALL from the peer, got none within 1 s"))
        #expect(texts.contains("StartTransaction: expected a CALLRESULT, got CALLERROR SecurityError: not booted"))
        #expect(
            report.junitXML(suite: "fixture", seconds: 1).contains(
                "<failure message=\"BootNotification.result status: expected &quot;Accepted&quot;, got &quot;Rejected&quot;\">"
            )
        )
    }

    @Test("replaying as backend: answer the charger's CALLs, send ours after the ones that preceded them")
    func asBackend() throws {
        let ids = Counter()
        var session = try ReplaySession(
            fixture: fixture(recorded),
            options: ReplayOptions(role: .backend),
            makeID: { ids.next() }
        )
        let start: Int64 = 1_900_000_000_000_000
        #expect(sent(session.start(at: start)).isEmpty)
        var frames = sent(
            session.received(
                #"[2,"c1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#,
                at: start
            )
        )
        #expect(frames.map(\.messageTypeID) == [3, 2])
        #expect(frames[1].action == "GetConfiguration")
        frames = sent(
            session.received(
                #"[3,"r1",{"configurationKey":[{"key":"HeartbeatInterval","readonly":false,"value":"60"}]}]"#,
                at: start
            )
        )
        #expect(frames.isEmpty)
        _ = session.received(
            #"[2,"c2","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2031-01-01T00:00:00Z"}]"#,
            at: start
        )
        _ = session.received(
            #"[2,"c3","StopTransaction",{"transactionId":1,"meterStop":10,"timestamp":"2031-01-01T00:00:02Z"}]"#,
            at: start
        )
        #expect(session.timedOut(at: start + 10_000_000) == [.finished])
        #expect(
            session.report.mismatches.map(\.description) == [
                "GetConfiguration.result configurationKey[0].value: expected \"300\", got \"60\""
            ]
        )
    }

    @Test("unexpected CALLs are answered NotImplemented and reported")
    func unexpected() throws {
        var session = try ReplaySession(
            fixture: fixture(Array(recorded.prefix(2))),
            options: ReplayOptions(role: .charger),
            makeID: { "x" }
        )
        _ = session.start(at: 0)
        let actions = session.received(#"[2,"z","Reset",{"type":"Hard"}]"#, at: 1)
        #expect(actions.first == .send(#"[4,"z","NotImplemented","not in the recording",{}]"#))
        #expect(session.report.other.count == 1)
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test("RFC 3339 round trips, offsets normalise to UTC, junk is left alone")
    func rfc3339() {
        let (micros, digits) = RFC3339.parse("2026-11-27T06:00:00.123Z")!
        #expect(digits == 3)
        #expect(RFC3339.format(micros, fractionDigits: 3) == "2026-11-27T06:00:00.123Z")
        #expect(RFC3339.parse("2026-11-27T07:00:00+01:00")!.micros == RFC3339.parse("2026-11-27T06:00:00Z")!.micros)
        #expect(RFC3339.parse("2024-02-29T23:59:59Z") != nil)
        for junk in ["", "2026-11-27", "2026-13-01T00:00:00Z", "2026-11-27T06:00:00", "hello world, not a date!"] {
            #expect(RFC3339.parse(junk) == nil)
        }
        let payload = JSONValue.object([
            (key: "timestamp", value: .string("2026-11-27T06:00:00Z")), (key: "idTag", value: .string("T")),
        ])
        #expect(payload.rebasingTimestamps(by: 86_400_000_000)["timestamp"] == .string("2026-11-28T06:00:00Z"))
        #expect(payload.rebasingTimestamps(by: 86_400_000_000)["idTag"] == .string("T"))
    }
}

@Suite("Comparison")
struct ComparisonTests {
    @Test("ignore rules: names anywhere, dotted paths with [*], per action; numbers by value")
    func ignore() throws {
        let expected = try JSONParser.parse(
            #"{"connectorId":1,"meterValue":[{"timestamp":"a","sampledValue":[{"value":"10","unit":"Wh"}]}]}"#
        )
        let got = try JSONParser.parse(
            #"{"connectorId":1.0,"meterValue":[{"timestamp":"b","sampledValue":[{"value":"12","unit":"kWh"}]}]}"#
        )
        var plain = Comparator(rules: .defaults, bindings: Bindings())
        #expect(
            plain.compare(action: "MeterValues", expected: expected, got: got).map(\.description) == [
                "MeterValues meterValue[0].sampledValue[0].value: expected \"10\", got \"12\"",
                "MeterValues meterValue[0].sampledValue[0].unit: expected \"Wh\", got \"kWh\"",
            ]
        )
        var relaxed = Comparator(
            rules: ComparisonRules.defaults.adding(ignore: [
                "MeterValues": ["meterValue[*].sampledValue[*].value", "unit"]
            ]),
            bindings: Bindings()
        )
        #expect(relaxed.compare(action: "MeterValues", expected: expected, got: got).isEmpty)
        #expect(relaxed.compare(action: "StopTransaction", expected: expected, got: got).count == 2)
    }

    @Test(
        "ids the live peer chooses are learned, whatever they are called",
        arguments: ["transactionId", "reservationId", "requestId", "remoteStartId", "chargingProfileId"]
    )
    func learnsEveryBoundId(_ name: String) throws {
        var comparator = Comparator(rules: .defaults, bindings: Bindings())
        let expected = try JSONParser.parse(#"{"\#(name)":1}"#)
        #expect(
            comparator.compare(action: "x", expected: expected, got: try JSONParser.parse(#"{"\#(name)":7}"#)).isEmpty
        )
        // Learned: the recorded 1 is the live 7 from now on, in comparisons and in what the replay sends.
        #expect(
            comparator.compare(action: "y", expected: expected, got: try JSONParser.parse(#"{"\#(name)":7}"#)).isEmpty
        )
        #expect(
            comparator.compare(action: "y", expected: expected, got: try JSONParser.parse(#"{"\#(name)":8}"#)).count
                == 1
        )
        #expect(
            comparator.bindings.substitute(try JSONParser.parse(#"{"a":{"\#(name)":1}}"#), keys: [name])
                == (try JSONParser.parse(#"{"a":{"\#(name)":7}}"#))
        )
        // A field that is not an id is compared, not learned.
        var plain = Comparator(rules: .defaults, bindings: Bindings())
        #expect(
            plain.compare(
                action: "x",
                expected: try JSONParser.parse(#"{"connectorId":1}"#),
                got: try JSONParser.parse(#"{"connectorId":7}"#)
            ).count == 1
        )
    }
}

@Suite("Redaction")
struct RedactionTests {
    @Test("pseudonyms keep length and kind, are stable per key, differ across keys; secrets and URL credentials go")
    func redact() throws {
        let a = Redactor(key: "k1")
        let b = Redactor(key: "k2")
        #expect(a.pseudonym("04A2B3C4").count == 8 && a.pseudonym("04A2B3C4").allSatisfy(\.isHexDigit))
        #expect(a.pseudonym("04A2B3C4") == a.pseudonym("04A2B3C4"))
        #expect(a.pseudonym("04A2B3C4") != b.pseudonym("04A2B3C4"))
        let emaid = a.pseudonym("NL-TNM-012345678-X")
        #expect(emaid.count == 18 && Array(emaid)[2] == "-" && Array(emaid)[6] == "-")
        let payload = try JSONParser.parse(
            #"{"idTag":"TAG-1","transactionId":5,"idToken":{"idToken":"AABBCCDD","type":"ISO14443"},"location":"ftp://user:secret@logs.example/x"}"#
        )
        let redacted = a.redact(payload: payload, action: "StartTransaction")
        #expect(redacted["idTag"] != payload["idTag"] && redacted["idTag"]?.stringValue?.count == 5)
        #expect(redacted["transactionId"] == .number("5"))
        #expect(redacted.value(at: "idToken.type") == .string("ISO14443"))
        #expect(redacted.value(at: "idToken.idToken") == .string(a.pseudonym("AABBCCDD")))
        #expect(redacted["location"] == .string("ftp://logs.example/x"))
        let key = a.redact(
            payload: try JSONParser.parse(#"{"key":"AuthorizationKey","value":"0011223344"}"#),
            action: "ChangeConfiguration"
        )
        #expect(key["value"] != .string("0011223344") && key["value"]?.stringValue?.count == 10)
    }

    @Test("a parent id tag and BasicAuthPassword (set or read) are pseudonymised; other variables stay")
    func parentAndPasswords() throws {
        let a = Redactor(key: "k1")
        let authorize = a.redact(
            payload: try JSONParser.parse(#"{"idTagInfo":{"status":"Accepted","parentIdTag":"FLEET-7"}}"#),
            action: "Authorize"
        )
        #expect(authorize.value(at: "idTagInfo.parentIdTag") == .string(a.pseudonym("FLEET-7")))
        #expect(authorize.value(at: "idTagInfo.status") == .string("Accepted"))
        let set = a.redact(
            payload: try JSONParser.parse(
                #"{"setVariableData":[{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},"attributeValue":"s3cret-passw0rd"},{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"},"attributeValue":"300"}]}"#
            ),
            action: "SetVariables"
        )
        let values = set["setVariableData"]?.arrayValue?.map { $0["attributeValue"] }
        #expect(values == [.string(a.pseudonym("s3cret-passw0rd")), .string("300")])
        #expect(!set.jsonText.contains("s3cret-passw0rd"))
        let read = a.redact(
            payload: try JSONParser.parse(
                #"{"getVariableResult":[{"attributeStatus":"Accepted","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},"attributeValue":"s3cret-passw0rd"}]}"#
            ),
            action: "GetVariables"
        )
        #expect(!read.jsonText.contains("s3cret-passw0rd"))
    }
}

@Suite("Replay timing")
struct ReplayTimingTests {
    @Test("--speed keeps the recorded gaps, scaled, and --max-gap caps them")
    func pacing() throws {
        let frames: [(String, String)] = [
            ("in", #"[2,"1","Heartbeat",{}]"#), ("out", #"[3,"1",{"currentTime":"2026-11-27T06:00:01Z"}]"#),
            ("in", #"[2,"2","Heartbeat",{}]"#), ("out", #"[3,"2",{"currentTime":"2026-11-27T06:00:03Z"}]"#),
        ]
        // Entries are one second apart: the second CALL was recorded 2 s after the first.
        for (speed, maxGap, expected) in [(1.0, nil, 2_000_000), (2.0, nil, 1_000_000), (1.0, 0.5, 500_000)]
            as [(Double, Double?, Int64)]
        {
            var session = try ReplaySession(
                fixture: fixture(frames),
                options: ReplayOptions(role: .charger, speed: speed, maxGap: maxGap),
                makeID: { "x" }
            )
            _ = session.start(at: 0)
            let actions = session.received(#"[3,"x",{"currentTime":"2030-01-01T00:00:00Z"}]"#, at: 10)
            #expect(actions == [.wait(until: 10 + expected)], "speed \(speed) max \(String(describing: maxGap))")
            #expect(session.timedOut(at: 10 + expected).first == .send(#"[2,"x","Heartbeat",{}]"#))
        }
    }
}
