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

/// The frames among a replay's actions.
func sent(_ actions: [ReplayAction]) -> [RPCFrame] {
    actions.compactMap { if case .send(let text) = $0 { try? RPCFrame.parse(text) } else { nil } }
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

    @Test("a live backend's answer that breaks its version's schema is a difference of its own kind")
    func invalidAnswer() throws {
        let ids = Counter()
        var session = try ReplaySession(
            fixture: fixture(Array(recorded.prefix(2))),
            options: ReplayOptions(role: .charger),
            makeID: { ids.next() }
        )
        let start: Int64 = 1_900_000_000_000_000
        _ = session.start(at: start)
        // The recording's answer has the interval as a number; this backend sends a string.
        _ = session.received(
            #"[3,"r1",{"status":"Accepted","currentTime":"2030-03-17T10:00:00Z","interval":"300"}]"#,
            at: start + 1000
        )
        let invalid = session.report.other.filter { $0.kind == .invalid }
        #expect(invalid.map(\.action) == ["BootNotification.result"])
        #expect(invalid.first?.got == "interval is a string where the schema wants an integer")
        #expect(!session.report.passed)
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
        let suite = ReplaySuiteReport(
            results: [ReplayRunResult(name: "boot", charger: "CP-1", report: report, seconds: 1)],
            seconds: 1
        )
        #expect(suite.exitCode == 1)
        #expect(
            suite.junitXML(suite: "fixture").contains(
                "<failure message=\"BootNotification.result status: expected &quot;Accepted&quot;, got &quot;Rejected&quot;\">"
            )
        )
        #expect(suite.statistics.actions["StartTransaction"]?.callErrors == 1)
        #expect(suite.statistics.actions["GetConfiguration"]?.differences == [.missingCall: 1])
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

    @Test("an unexpected CALL is answered as the fixture answered that action, else NotImplemented; the rules weigh it")
    func unexpected() throws {
        for (rule, noted, passes) in [
            (UnexpectedCalls.answer, 0, true), (.report, 1, true), (.fail, 1, false),
        ] {
            var rules = ComparisonRules.defaults
            rules.unexpectedCalls = rule
            var session = try ReplaySession(
                fixture: fixture(Array(recorded.prefix(4))),
                options: ReplayOptions(role: .charger, rules: rules),
                makeID: { "x" }
            )
            _ = session.start(at: 0)
            var actions = session.received(#"[2,"z","Reset",{"type":"Hard"}]"#, at: 1)
            #expect(actions.first == .send(#"[4,"z","NotImplemented","not in the recording",{}]"#))
            _ = session.received(
                #"[3,"x",{"status":"Accepted","currentTime":"2030-01-01T00:00:00Z","interval":300}]"#,
                at: 2
            )
            _ = session.received(#"[2,"g1","GetConfiguration",{"key":["HeartbeatInterval"]}]"#, at: 3)
            // A second GetConfiguration: the recording answered one, so this one gets the same answer.
            actions = session.received(#"[2,"g2","GetConfiguration",{"key":["HeartbeatInterval"]}]"#, at: 4)
            #expect(sent(actions).first?.messageTypeID == 3, "\(rule)")
            #expect(session.report.other.count == 2 * noted, "\(rule)")
            #expect(session.report.other.allSatisfy { $0.kind == .unexpectedCall })
            #expect(session.report.passed == passes, "\(rule)")
        }
    }

    @Test("a charger of a load test sends its own identity where the recording had the recorded one, and compares so")
    func identitySwap() throws {
        let frames: [(String, String)] = [
            (
                "in",
                #"[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M","chargePointSerialNumber":"CP-1"}]"#
            ),
            ("out", #"[3,"1",{"status":"Accepted","currentTime":"2026-11-27T06:00:01Z","interval":300}]"#),
            ("out", #"[2,"b","DataTransfer",{"vendorId":"V","data":"CP-1"}]"#),
            ("in", #"[3,"b",{"status":"Accepted","data":"CP-1"}]"#),
        ]
        var session = ReplaySession(
            script: try ReplayScript(fixture(frames), role: .charger, leg: "charger"),
            options: ReplayOptions(role: .charger),
            identity: "LOAD-3",
            makeID: { "r" }
        )
        guard case .call(let boot) = try #require(sent(session.start(at: 0)).first) else {
            Issue.record("expected the boot")
            return
        }
        #expect(boot.payload["chargePointSerialNumber"] == .string("LOAD-3"))
        _ = session.received(
            #"[3,"r",{"status":"Accepted","currentTime":"2030-01-01T00:00:00Z","interval":300}]"#,
            at: 1
        )
        let answer = sent(session.received(#"[2,"d","DataTransfer",{"vendorId":"V","data":"LOAD-3"}]"#, at: 2))
        #expect(
            answer.first
                == .callResult(
                    .init(messageID: "d", payload: try JSONParser.parse(#"{"status":"Accepted","data":"LOAD-3"}"#))
                )
        )
        #expect(session.report.passed, "\(session.report.text())")
    }

    @Test("severity: an action's differences fail, warn or vanish; Action.result beats Action, which beats *")
    func severity() throws {
        func replay(_ severity: [String: Severity]) throws -> ReplayReport {
            var rules = ComparisonRules.defaults
            rules.severity = severity
            var session = try ReplaySession(
                fixture: fixture(Array(recorded.prefix(2))),
                options: ReplayOptions(role: .charger, rules: rules),
                makeID: { "r" }
            )
            _ = session.start(at: 0)
            _ = session.received(
                #"[3,"r",{"status":"Pending","currentTime":"2030-01-01T00:00:00Z","interval":300}]"#,
                at: 1
            )
            return session.report
        }
        #expect(try !replay([:]).passed)
        let warned = try replay(["BootNotification": .warn])
        #expect(warned.passed && warned.mismatches.map(\.severity) == [.warn])
        #expect(try replay(["*": .ignore]).mismatches.isEmpty)
        #expect(try !replay(["*": .ignore, "BootNotification.result": .fail]).passed)
        #expect(try replay(["BootNotification": .fail, "BootNotification.result": .warn]).passed)
    }

    @Test("match: subset takes extra members in the live answer; missing and different ones still fail")
    func subset() throws {
        var rules = ComparisonRules.defaults
        var comparator = Comparator(rules: rules)
        let expected = try JSONParser.parse(#"{"idTagInfo":{"status":"Accepted"},"transactionId":1}"#)
        let extra = try JSONParser.parse(
            #"{"idTagInfo":{"status":"Accepted","expiryDate":"2030-01-01T00:00:00Z"},"transactionId":1,"x":[1]}"#
        )
        #expect(comparator.compare(action: "A", expected: expected, got: extra).map(\.kind) == [.extra, .extra])
        rules.match = .subset
        comparator = Comparator(rules: rules)
        #expect(comparator.compare(action: "A", expected: expected, got: extra).isEmpty)
        let missing = try JSONParser.parse(#"{"idTagInfo":{"status":"Blocked"}}"#)
        #expect(comparator.compare(action: "A", expected: expected, got: missing).map(\.kind) == [.value, .missing])
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
        let day = payload.rebasingTimestamps { $0 + 86_400_000_000 }
        #expect(day["timestamp"] == .string("2026-11-28T06:00:00Z"))
        #expect(day["idTag"] == .string("T"))
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
    @Test("--speed keeps the recorded times, scaled, whatever the answers' latency; --max-gap cuts a pause")
    func pacing() throws {
        let frames: [(String, String)] = [
            ("in", #"[2,"1","Heartbeat",{}]"#), ("out", #"[3,"1",{"currentTime":"2026-11-27T06:00:01Z"}]"#),
            ("in", #"[2,"2","Heartbeat",{}]"#), ("out", #"[3,"2",{"currentTime":"2026-11-27T06:00:03Z"}]"#),
        ]
        // Entries are one second apart: the second CALL was recorded 2 s after the first. Its answer comes after
        // 10 µs or after 0.4 s: the second CALL is due at the same time either way.
        for (speed, maxGap, due) in [(1.0, nil, 2_000_000), (2.0, nil, 1_000_000), (1.0, 0.5, 500_000)]
            as [(Double, Double?, Int64)]
        {
            for latency in [10, 400_000] as [Int64] {
                var session = try ReplaySession(
                    fixture: fixture(frames),
                    options: ReplayOptions(role: .charger, speed: speed, maxGap: maxGap),
                    makeID: { "x" }
                )
                _ = session.start(at: 0)
                let actions = session.received(#"[3,"x",{"currentTime":"2030-01-01T00:00:00Z"}]"#, at: latency)
                let expected: [ReplayAction] = latency < due ? [.wait(until: due)] : []
                #expect(
                    Array(actions.prefix(expected.count)) == expected,
                    "speed \(speed) max \(String(describing: maxGap))"
                )
                #expect(session.timedOut(at: max(due, latency)).first == .send(#"[2,"x","Heartbeat",{}]"#))
            }
        }
    }

    @Test("a fleet's charger keeps its place on the fleet's timeline, and its timestamps move with the speed")
    func fleetOrigin() throws {
        let frames: [(String, String)] = [
            (
                "in",
                #"[2,"1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available","timestamp":"2026-11-27T06:00:00Z"}]"#
            ),
            ("out", #"[3,"1",{}]"#),
        ]
        var session = try ReplaySession(
            fixture: fixture(frames),
            options: ReplayOptions(role: .charger, speed: 10),
            makeID: { "x" }
        )
        // The fleet's first connection was recorded 20 s before this charger's first CALL; the fleet started at
        // 1_000 s and this charger connected at 1_001 s: its CALL is due at 1_002 s (20 s / 10).
        let origin = try #require(RFC3339.parse("2026-11-27T05:59:40Z")?.micros)
        let fleetStart: Int64 = 1_000_000_000
        #expect(
            session.start(at: 1_001_000_000, origin: origin, scheduledStart: fleetStart) == [
                .wait(until: 1_002_000_000)
            ]
        )
        guard case .call(let call) = try #require(sent(session.timedOut(at: 1_002_000_000)).first) else {
            Issue.record("expected the CALL")
            return
        }
        #expect(call.payload["timestamp"] == .string(RFC3339.format(1_002_000_000, fractionDigits: 0)))
    }
}

@Suite("Replay plans and reports")
struct ReplayPlanTests {
    @Test("a fixture as load: identities from the template, connections spread over the ramp")
    func load() throws {
        let plan = ReplayPlan.load(
            try fixture([("in", #"[2,"1","Heartbeat",{}]"#)]),
            name: "hb",
            chargers: 4,
            template: try IdentityTemplate("LOAD-{n}-{n}"),
            ramp: 8_000_000
        )
        #expect(plan.runs.map(\.charger) == ["LOAD-1-1", "LOAD-2-2", "LOAD-3-3", "LOAD-4-4"])
        #expect(plan.runs.map(\.startAfter) == [0, 2_000_000, 4_000_000, 6_000_000])
        #expect(throws: FixtureError.self) { try IdentityTemplate("LOAD") }
        #expect(throws: FixtureError.self) { try IdentityTemplate("BAD\u{7}{n}") }
    }

    @Test("a fleet: each connection at its recorded offset from the first, scaled by the speed")
    func fleet() throws {
        let a = try fixture([("in", #"[2,"1","Heartbeat",{}]"#)])
        var b = a
        b.entries = try b.entries.map { entry in
            var value = entry.value
            value.set("time", .string("2026-11-27T06:00:30.000Z"))
            return try FixtureEntry(value)
        }
        let plan = try ReplayPlan.fleet([("late", b), ("early", a)], speed: 10)
        #expect(plan.runs.map(\.name) == ["early", "late"])
        #expect(plan.runs.map(\.startAfter) == [0, 3_000_000])
        #expect(plan.runs.allSatisfy { $0.origin == RFC3339.parse("2026-11-27T06:00:00.000Z")?.micros })
        #expect(try ReplayPlan.fleet([("late", b), ("early", a)], speed: 0).runs.map(\.startAfter) == [0, 0])
    }

    @Test("statistics: round trips, nearest-rank percentiles of answer times, differences by kind; exit codes")
    func statistics() {
        var report = ReplayReport()
        for time in 1...100 as ClosedRange<Int64> {
            report.exchanges.append(
                ExchangeOutcome(
                    name: "#\(time) Heartbeat",
                    action: "Heartbeat",
                    answer: time == 100 ? .error(code: "InternalError") : .result,
                    answerTime: time * 1000,
                    mismatches: time == 7
                        ? [Mismatch(action: "Heartbeat.result", path: "x", expected: "1", got: "2")] : []
                )
            )
        }
        report.exchanges.append(
            ExchangeOutcome(name: "#101", action: "Authorize", answer: .none, mismatches: [])
        )
        let ok = ReplayRunResult(name: "a", charger: "A", report: ReplayReport(), seconds: 1)
        let failing = ReplayRunResult(name: "b", charger: "B", report: report, seconds: 1)
        let broken = ReplayRunResult(name: "c", charger: "C", report: nil, couldNotRun: "refused", seconds: 0)
        let figures = ReplayStatistics([ok, failing])
        let heartbeat = figures.actions["Heartbeat"]
        #expect(heartbeat?.roundTrips == 100 && heartbeat?.callErrors == 1)
        #expect(heartbeat?.percentile(50) == 50_000 && heartbeat?.percentile(95) == 95_000)
        #expect(heartbeat?.percentile(99) == 99_000 && heartbeat?.differences == [.value: 1])
        #expect(figures.actions["Authorize"]?.errors == 1 && figures.passed == 1)
        #expect(ReplaySuiteReport(results: [ok], seconds: 1).exitCode == 0)
        #expect(ReplaySuiteReport(results: [ok, failing], seconds: 1).exitCode == 1)
        #expect(ReplaySuiteReport(results: [ok, failing, broken], seconds: 1).exitCode == 2)
        let xml = ReplaySuiteReport(results: [ok, failing, broken], seconds: 1).junitXML(suite: "s")
        #expect(xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""))
        #expect(xml.ranges(of: "<testcase ").count == 3)
    }
}
