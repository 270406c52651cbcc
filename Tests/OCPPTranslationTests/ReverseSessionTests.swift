import OCPP
import OCPPTranslation
import Testing

/// The 2.0.1-charger-on-1.6-backend translation's rules that golden conversations do not show well: aliases,
/// when state is written, and how a TransactionEvent is answered when the backend fails.
@Suite("2.0.1 chargers on 1.6 backends")
struct ReverseSessionTests {
    let ids = IDs()

    func session(_ state: ChargerState = ChargerState()) -> Driven {
        Driven(reverse: true, state: state, ids: ids)
    }

    static func frames(_ outputs: [TranslationOutput]) -> [(to: String, frame: JSONValue)] {
        outputs.compactMap { output in
            switch output {
            case .toUpstream(let text): ("upstream", try! JSONParser.parse(text))
            case .toCharger(let text): ("charger", try! JSONParser.parse(text))
            default: nil
            }
        }
    }

    static func persists(_ outputs: [TranslationOutput]) -> Bool {
        if case .persist = outputs.first { return true }
        return false
    }

    static let started =
        #"[2,"c1","TransactionEvent",{"eventType":"Started","timestamp":"2026-11-27T06:00:00Z","triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"tx-1","chargingState":"Charging"},"idToken":{"idToken":"TAG","type":"ISO14443"},"evse":{"id":1,"connectorId":1},"meterValue":[{"timestamp":"2026-11-27T06:00:00Z","sampledValue":[{"value":10,"context":"Transaction.Begin"}]}]}]"#

    static func updated(_ id: String, seqNo: Int) -> String {
        #"[2,"\#(id)","TransactionEvent",{"eventType":"Updated","timestamp":"2026-11-27T06:00:00Z","triggerReason":"MeterValuePeriodic","seqNo":\#(seqNo),"transactionInfo":{"transactionId":"tx-1"},"meterValue":[{"timestamp":"2026-11-27T06:00:00Z","sampledValue":[{"value":\#(seqNo * 100)}]}]}]"#
    }

    /// A session whose transaction tx-1 is open in 1.6 as number 42, with nothing in flight.
    func openTransaction() -> Driven {
        var s = session()
        _ = s.fromCharger(Self.started)  // StartTransaction id-1
        _ = s.fromUpstream(#"[3,"id-1",{"transactionId":42,"idTagInfo":{"status":"Accepted"}}]"#)  // MeterValues id-2
        _ = s.fromUpstream(#"[3,"id-2",{}]"#)  // StatusNotification id-3
        _ = s.fromUpstream(#"[3,"id-3",{}]"#)
        return s
    }

    @Test("an alias is the same for the same token, fits 1.6's 20 characters, and differs from another token's")
    func aliases() {
        let long = String(repeating: "0123456789", count: 3)
        let a = TokenAlias.make(type: "Central", idToken: long, holder: { _ in nil })
        #expect(a == TokenAlias.make(type: "Central", idToken: long, holder: { _ in nil }))
        #expect(a.count <= 20 && a != String(long.prefix(20)))
        #expect(a != TokenAlias.make(type: "eMAID", idToken: long, holder: { _ in nil }))
        #expect(a != TokenAlias.make(type: "Central", idToken: long + "1", holder: { _ in nil }))
        // Taken by another token (a digest collision): another alias, never a shared one.
        let salted = TokenAlias.make(type: "Central", idToken: long) { $0 == a ? ("someone else", "Central") : nil }
        #expect(salted != a && salted.count <= 20)
    }

    @Test("a remote start naming an alias reaches the charger as the real token")
    func aliasMapsBack() {
        var s = session()
        let long = "urn:uuid:7d1f3c4e-0000-4000-8000-0ab"  // 36 characters, 2.0.1's longest
        let authorize = #"[2,"c1","Authorize",{"idToken":{"idToken":"\#(long)","type":"Central"}}]"#
        let sent = Self.frames(s.fromCharger(authorize))
        let alias = sent.first?.frame.arrayValue?[3]["idTag"]?.stringValue ?? ""
        #expect(!alias.isEmpty && alias.count <= 20 && alias != long)
        _ = s.fromUpstream(#"[3,"id-1",{"idTagInfo":{"status":"Accepted"}}]"#)
        let start = Self.frames(s.fromUpstream(#"[2,"b1","RemoteStartTransaction",{"idTag":"\#(alias)"}]"#))
        #expect(
            start.first?.frame.arrayValue?[3]["idToken"]
                == .object([
                    (key: "idToken", value: .string(long)), (key: "type", value: .string("Central")),
                ])
        )
    }

    @Test("readings of an open transaction go in step with the backend and cost no state write")
    func inStepWithoutWrites() {
        var s = openTransaction()
        let outputs = s.fromCharger(Self.updated("c2", seqNo: 1))
        #expect(!Self.persists(outputs))
        let sent = Self.frames(outputs)
        #expect(sent.count == 1 && sent[0].to == "upstream" && sent[0].frame.arrayValue?[2] == .string("MeterValues"))
        #expect(sent[0].frame.arrayValue?[3]["transactionId"] == .int(42))
        // The charger is answered when the backend is.
        let answered = Self.frames(s.fromUpstream(#"[3,"\#(sent[0].frame.arrayValue?[1].stringValue ?? "")",{}]"#))
        #expect(answered.map(\.to) == ["charger"] && answered[0].frame.arrayValue?[1] == .string("c2"))
    }

    @Test("clock-aligned MeterValues of an open transaction go in step too: its id, no state write, answered after")
    func alignedMeterValuesInStep() {
        var s = openTransaction()
        let aligned =
            #"[2,"c2","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"2026-11-27T06:00:00Z","sampledValue":[{"value":250,"context":"Sample.Clock"}]}]}]"#
        let outputs = s.fromCharger(aligned)
        #expect(!Self.persists(outputs))
        let sent = Self.frames(outputs)
        #expect(
            sent.count == 1 && sent[0].to == "upstream" && sent[0].frame.arrayValue?[3]["transactionId"] == .int(42)
        )
        let answered = Self.frames(s.fromUpstream(#"[3,"\#(sent[0].frame.arrayValue?[1].stringValue ?? "")",{}]"#))
        #expect(answered.map(\.to) == ["charger"] && answered[0].frame.arrayValue?[1] == .string("c2"))
    }

    @Test("the opening event is written before StartTransaction goes, and answered with the backend's verdict")
    func openingIsDurable() {
        var s = session()
        let outputs = s.fromCharger(Self.started)
        #expect(Self.persists(outputs))
        #expect(Self.frames(outputs).map(\.to) == ["upstream"])
        let conf = Self.frames(s.fromUpstream(#"[3,"id-1",{"transactionId":42,"idTagInfo":{"status":"Invalid"}}]"#))
        #expect(
            conf.first?.frame
                == .array([
                    .number("3"), .string("c1"),
                    .object([(key: "idTokenInfo", value: .object([(key: "status", value: .string("Invalid"))]))]),
                ])
        )
        #expect(s.state.reverse.transactions.first?.number == 42)
    }

    @Test("a TransactionEvent is never answered with a CALLERROR: a refusal upstream answers {}, a silence nothing")
    func neverCallError() {
        var s = openTransaction()
        let sent = Self.frames(s.fromCharger(Self.updated("c2", seqNo: 1)))
        let id = sent[0].frame.arrayValue?[1].stringValue ?? ""
        let refused = Self.frames(s.fromUpstream(#"[4,"\#(id)","InternalError","nope",{}]"#))
        #expect(refused.count == 1 && refused[0].frame == .array([.number("3"), .string("c2"), .object([])]))
        _ = s.fromCharger(Self.updated("c3", seqNo: 2))
        ids.uptime += 31
        let expired = Self.frames(s.tick())
        #expect(!expired.contains { $0.to == "charger" }, "\(expired)")
    }

    @Test("a retried event (a seqNo already seen) is answered at once and sent nowhere")
    func retries() {
        var s = openTransaction()
        let first = Self.frames(s.fromCharger(Self.updated("c2", seqNo: 1)))
        _ = s.fromUpstream(#"[3,"\#(first[0].frame.arrayValue?[1].stringValue ?? "")",{}]"#)
        let again = Self.frames(s.fromCharger(Self.updated("c3", seqNo: 1)))
        #expect(again.count == 1 && again[0].to == "charger")
    }
}
