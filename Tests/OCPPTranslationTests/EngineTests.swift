import OCPP
import OCPPSchema
import Testing

@testable import OCPPTranslation

/// The engine's own rules, the same for every version pair: the answer to what the tables do not map, the notes,
/// the call lanes, the order of frames behind state writes, the drain when the charger leaves, and the judgement of
/// a CALL against its version's schema.
@Suite("Translation engine")
struct EngineTests {
    let ids = IDs()

    /// A 1.6 charger (booted) on a 2.0.1 backend, or a 2.0.1 charger on a 1.6 backend.
    func engine(reverse: Bool) -> Driven {
        var state = ChargerState()
        state.forward.bootAccepted = true
        return Driven(reverse: reverse, state: state, ids: ids)
    }

    static func frames(_ outputs: [TranslationOutput]) -> [(to: String, frame: [JSONValue])] {
        outputs.compactMap { output in
            switch output {
            case .toUpstream(let text): ("upstream", (try? JSONParser.parse(text))?.arrayValue ?? [])
            case .toCharger(let text): ("charger", (try? JSONParser.parse(text))?.arrayValue ?? [])
            default: nil
            }
        }
    }

    static func notes(_ outputs: [TranslationOutput]) -> [TranslationDiagnostic] {
        outputs.compactMap { if case .diagnostic(let d) = $0 { d } else { nil } }
    }

    static func send(_ engine: inout Driven, from side: Side, _ text: String) -> [TranslationOutput] {
        side == .charger ? engine.fromCharger(text) : engine.fromUpstream(text)
    }

    // MARK: One policy for every side

    @Test(
        "an action the tables do not map: NotSupported when the sender's version defines it, NotImplemented when not, on every side",
        arguments: [(false, Side.charger), (false, .upstream), (true, .charger), (true, .upstream)]
    )
    func unmapped(reverse: Bool, side: Side) throws {
        var engine = engine(reverse: reverse)
        let version: OCPPVersion = (side == .charger) != reverse ? .v16 : .v201
        let tables = Repository.tables()
        let table =
            reverse
            ? (side == .charger ? tables.reverseCharger : tables.reverseBackend)
            : (side == .charger ? tables.charger : tables.backend)
        // An action of the sender's version that its table leaves out.
        let known = try #require(SchemaFacts.of(version).actions.sorted().first { table[$0] == nil })
        let outputs = Self.send(&engine, from: side, #"[2,"u1","\#(known)",{}]"#)
        let answer = Self.frames(outputs)
        #expect(answer.count == 1 && answer.first?.to == (side == .charger ? "charger" : "upstream"))
        #expect(answer.first?.frame[2] == .string("NotSupported"), "\(known): \(answer)")
        #expect(Self.notes(outputs).map(\.kind) == [.untranslatable])
        let unknown = Self.frames(Self.send(&engine, from: side, #"[2,"u2","VendorHello",{}]"#))
        #expect(unknown.first?.frame[2] == .string("NotImplemented"))
    }

    @Test(
        "a message the relay answers itself is noted as lossy, in both directions",
        arguments: [
            (
                false, Side.upstream,
                #"[2,"a1","SetNetworkProfile",{"configurationSlot":1,"connectionData":{"ocppVersion":"OCPP20","ocppTransport":"JSON","ocppCsmsUrl":"wss://x","messageTimeout":30,"securityProfile":2,"ocppInterface":"Wired0"}}]"#
            ),
            (
                true, Side.charger,
                #"[2,"a1","NotifyEVChargingSchedule",{"timeBase":"2026-12-07T10:00:00Z","evseId":1,"chargingSchedule":{"id":1,"chargingRateUnit":"W","chargingSchedulePeriod":[{"startPeriod":0,"limit":11000}]}}]"#
            ),
        ]
    )
    func ownAnswerIsNoted(reverse: Bool, side: Side, frame: String) {
        var engine = engine(reverse: reverse)
        let outputs = Self.send(&engine, from: side, frame)
        #expect(Self.frames(outputs).map { $0.frame[0] } == [.number("3")])
        #expect(Self.notes(outputs).map(\.kind) == [.lossy])
    }

    // MARK: Call lanes

    @Test("one CALL outstanding per direction: the next waits for the answer, and a silence fails it after the timeout")
    func lanes() {
        var engine = engine(reverse: false)
        // The backend's two calls: the second waits for the charger's answer to the first.
        let first = Self.frames(engine.fromUpstream(#"[2,"b1","ClearCache",{}]"#))
        #expect(first.map(\.to) == ["charger"])
        #expect(Self.frames(engine.fromUpstream(#"[2,"b2","ClearCache",{}]"#)).isEmpty)
        let id = first[0].frame[1].stringValue ?? ""
        let next = Self.frames(engine.fromCharger(#"[3,"\#(id)",{"status":"Accepted"}]"#))
        #expect(next.map(\.to) == ["upstream", "charger"])
        #expect(next[0].frame == [.number("3"), .string("b1"), .object([(key: "status", value: .string("Accepted"))])])
        // The charger never answers the second: after 30 s its caller hears why.
        ids.uptime += 29
        #expect(Self.frames(engine.tick()).isEmpty)
        ids.uptime += 1
        let expired = Self.frames(engine.tick())
        #expect(expired.map(\.to) == ["upstream"])
        #expect(expired.first?.frame[1] == .string("b2") && expired.first?.frame[2] == .string("InternalError"))
        #expect(!engine.engine.waitsForTime)
    }

    @Test("CallLane: one outstanding, the rest in order, a call sent again goes first, timeouts as Durations")
    func callLane() {
        var lane = CallLane<String, String>()
        lane.enqueue("a", id: "1")
        lane.enqueue("b", id: "2")
        #expect(lane.next(at: .seconds(1))?.call == "a")
        #expect(lane.next(at: .seconds(1)) == nil)
        #expect(lane.answered("2") == nil && lane.isBusy)
        #expect(lane.expired(at: .seconds(30), after: .seconds(30)) == nil)
        #expect(lane.expired(at: .seconds(31), after: .seconds(30))?.call == "a")
        lane.enqueue("a again", id: "1", first: true)
        #expect(lane.next(at: .seconds(32))?.call == "a again")
        #expect(lane.answered("1") == "a again" && lane.count == 1)
        #expect(lane.removeAll().map(\.call) == ["b"] && lane.isIdle)
    }

    // MARK: Persistence first

    @Test("frames that depend on a state write wait for it, and so do later ones; released in order with their causes")
    func ordering() throws {
        let clock = TranslationClock(
            now: { "2026-11-27T06:00:00Z" },
            uptime: { .zero },
            makeID: { [ids] in ids.make() }
        )
        var state = ChargerState()
        state.forward.bootAccepted = true
        var engine = try #require(
            Translations.engine(
                charger: .v16,
                upstream: .v201,
                identity: "CP-ORDER",
                tables: Repository.tables(),
                state: state,
                clock: clock
            )
        )
        let start =
            #"[2,"s1","StartTransaction",{"connectorId":1,"idTag":"T1","meterStart":0,"timestamp":"2026-11-27T06:00:00Z"}]"#
        let first = engine.fromCharger(start, cause: 7)
        guard case .persist(let stored, let write) = first.first, first.count == 1 else {
            Issue.record("a StartTransaction is stored first, alone: \(first)")
            return
        }
        #expect(stored.forward.transactions.count == 1)
        // A Heartbeat changes nothing, yet waits behind the write: frames keep their order.
        #expect(engine.fromCharger(#"[2,"h1","Heartbeat",{}]"#, cause: 8).isEmpty)
        #expect(!engine.drained)
        let released = engine.stored(write)
        #expect(released.map(\.cause) == [7, 8])
        let actions = released.flatMap { Self.frames($0.outputs) }.map { $0.frame[2] }
        #expect(actions == [.string("TransactionEvent")])  // the Heartbeat waits for the lane
        #expect(engine.stored(write).isEmpty)
    }

    // MARK: The charger leaves

    @Test(
        "when the charger leaves, what is owed the backend still goes; its calls to the charger fail; new ones are refused"
    )
    func drain() {
        var engine = engine(reverse: false)
        let sent = Self.frames(engine.fromCharger(#"[2,"h1","Heartbeat",{}]"#))
        #expect(sent.map(\.to) == ["upstream"])
        let command = Self.frames(engine.fromUpstream(#"[2,"b1","ClearCache",{}]"#))
        #expect(command.map(\.to) == ["charger"])
        let left = Self.frames(engine.chargerLeft())
        // The backend's command fails at once instead of at its timeout.
        #expect(left.map(\.to) == ["upstream"] && left.first?.frame[1] == .string("b1"))
        #expect(left.first?.frame[2] == .string("InternalError"))
        #expect(!engine.engine.drained && engine.engine.undelivered == 1)
        let refused = Self.frames(engine.fromUpstream(#"[2,"b2","ClearCache",{}]"#))
        #expect(refused.first?.frame[2] == .string("GenericError"))
        // The backend answers the Heartbeat: nothing is owed any more; the answer has nowhere to go.
        let id = sent[0].frame[1].stringValue ?? ""
        #expect(Self.frames(engine.fromUpstream(#"[3,"\#(id)",{"currentTime":"2026-11-27T06:00:00Z"}]"#)).isEmpty)
        #expect(engine.engine.drained)
    }

    // MARK: Judgement

    @Test("a number sent as a numeric string is read as the number, noted, and translated valid")
    func normalisedStop() throws {
        var engine = engine(reverse: false)
        _ = engine.fromCharger(
            #"[2,"s1","StartTransaction",{"connectorId":1,"idTag":"T1","meterStart":0,"timestamp":"2026-11-27T06:00:00Z"}]"#
        )
        _ = engine.fromUpstream(#"[3,"id-2",{"idTokenInfo":{"status":"Accepted"}}]"#)
        let outputs = engine.fromCharger(
            #"[2,"s2","StopTransaction",{"transactionId":1,"meterStop":"500","timestamp":"2026-11-27T07:00:00Z"}]"#
        )
        #expect(Self.notes(outputs).map(\.kind).contains(.normalised))
        let event = try #require(Self.frames(outputs).first { $0.frame[2] == .string("TransactionEvent") })
        let payload = event.frame[3]
        #expect(payload["eventType"] == .string("Ended"))
        let reading = payload["meterValue"]?.arrayValue?.last?["sampledValue"]?.arrayValue?.first?["value"]
        #expect(reading == .number("500"))
        #expect(SchemaFacts.ocpp201.request("TransactionEvent")!.violations(in: payload).isEmpty)
    }

    @Test(
        "a CALL that breaks its version's schema is refused with the error OCPP prescribes, spelt as its version does",
        arguments: [
            // 1.6 charger: MeterValues without meterValue; a value of the wrong type that reads no other way.
            (
                false, Side.charger, #"[2,"x","MeterValues",{"connectorId":1}]"#, "OccurenceConstraintViolation",
                "meterValue"
            ),
            (
                false, Side.charger,
                #"[2,"x","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":true}]"#,
                "TypeConstraintViolation", "status"
            ),
            (
                false, Side.charger, #"[2,"x","Authorize",{"idTag":"0123456789012345678901234"}]"#,
                "PropertyConstraintViolation", "idTag"
            ),
            // 2.0.1 backend and charger; 1.6 backend.
            (
                false, Side.upstream, #"[2,"x","RequestStopTransaction",{}]"#, "OccurrenceConstraintViolation",
                "transactionId"
            ),
            (
                true, Side.charger,
                #"[2,"x","TransactionEvent",{"eventType":"Started","timestamp":"2026-11-27T06:00:00Z","triggerReason":"Authorized","transactionInfo":{"transactionId":"t"}}]"#,
                "OccurrenceConstraintViolation", "seqNo"
            ),
            (
                true, Side.upstream, #"[2,"x","RemoteStartTransaction",{"idTag":"0123456789012345678901234"}]"#,
                "PropertyConstraintViolation", "idTag"
            ),
            (true, Side.upstream, #"[2,"x","Reset",{"type":"Sideways"}]"#, "PropertyConstraintViolation", "type"),
        ]
    )
    func refused(reverse: Bool, side: Side, frame: String, code: String, path: String) {
        var engine = engine(reverse: reverse)
        let outputs = Self.send(&engine, from: side, frame)
        let sent = Self.frames(outputs)
        #expect(sent.count == 1 && sent.first?.to == (side == .charger ? "charger" : "upstream"), "\(sent)")
        #expect(sent.first?.frame[2] == .string(code), "\(sent)")
        #expect(sent.first?.frame[3].stringValue?.hasPrefix(path) == true, "\(sent)")
        #expect(Self.notes(outputs).map(\.kind) == [.invalid])
    }

    @Test("a member the schema does not know is noted and left out, not refused")
    func unknownMember() {
        var engine = engine(reverse: false)
        let outputs = engine.fromCharger(#"[2,"h1","Heartbeat",{"colour":"red"}]"#)
        #expect(Self.frames(outputs).map(\.to) == ["upstream"])
        #expect(Self.notes(outputs).map(\.kind) == [.invalid])
    }
}
