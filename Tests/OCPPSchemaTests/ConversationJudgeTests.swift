import OCPP
import OCPPSchema
import Testing

/// A relayed connection's frames judged leg by leg: the peers' frames get verdicts, the relay's teach the judges.
@Suite("Conversation judge")
struct ConversationJudgeTests {
    static func judge(
        _ judge: inout ConversationJudge,
        _ text: String,
        _ leg: ConversationJudge.Leg,
        received: Bool
    ) -> ConversationJudge.PeerVerdict? {
        judge.judge(Array(text.utf8), leg: leg, receivedByRelay: received)
    }

    @Test("passing through, one judge follows both legs: the backend's answer is judged by the charger's call")
    func passThrough() throws {
        var judge = ConversationJudge(chargerVersion: .v16)
        let boot =
            #"[2,"1","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"W1","firmwareVersion":"9"}]"#
        #expect(Self.judge(&judge, boot, .charger, received: true)?.verdict == .valid)
        #expect(judge.boot == ConversationJudge.Boot(vendor: "ACME", model: "W1", firmware: "9"))
        let answer = try #require(
            Self.judge(
                &judge,
                #"[3,"1",{"status":"Maybe","currentTime":"x","interval":"300"}]"#,
                .upstream,
                received: true
            )
        )
        #expect(answer.side == .backend && answer.action == "BootNotification.result" && answer.version == .v16)
        #expect(answer.verdict.reasonKinds.count == 3)
        // The relay's own frames get no verdict (a CALLERROR it sends for a refused call, say).
        #expect(Self.judge(&judge, #"[4,"9","FormationViolation","",{}]"#, .charger, received: false) == nil)
        // Not OCPP at all.
        let garbage = try #require(Self.judge(&judge, "hello", .charger, received: true))
        #expect(garbage.action == "(not OCPP)" && garbage.verdict.isInvalid)
    }

    @Test("translating, each leg is judged in its own version, and the relay's translations teach the backend's leg")
    func translated() throws {
        var judge = ConversationJudge(chargerVersion: .v16, upstreamVersion: .v201)
        let status = try #require(
            Self.judge(
                &judge,
                #"[2,"a","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]"#,
                .charger,
                received: true
            )
        )
        #expect(status.version == .v16 && status.side == .charger && status.verdict.isInvalid)
        // The relay's 2.0.1 translation (no verdict), then the backend's answer judged against 2.0.1's response.
        #expect(
            Self.judge(
                &judge,
                #"[2,"b","StatusNotification",{"timestamp":"2026-12-07T10:00:00Z","connectorStatus":"Available","evseId":1,"connectorId":1}]"#,
                .upstream,
                received: false
            ) == nil
        )
        let answer = try #require(Self.judge(&judge, #"[3,"b",{"unexpected":true}]"#, .upstream, received: true))
        #expect(answer.version == .v201 && answer.action == "StatusNotification.result")
        #expect(answer.verdict.reasons == ["unexpected is not a member the schema knows"])
        // An answer to a call the judges never saw is not judged.
        #expect(Self.judge(&judge, #"[3,"zz",{}]"#, .upstream, received: true) == nil)
    }

    @Test("the tally groups by boot and action, and keeps at most its share of reasons per action")
    func tally() {
        var tally = VerdictTally()
        let group = VerdictTally.Group.charger(.unknown, version: .v16)
        tally.count(3, of: "Heartbeat", in: group, charger: "CP-1")
        for n in 0..<(VerdictTally.reasonsKept + 5) {
            tally.add(
                invalid: .invalid([SchemaViolation(path: "p\(n)", rule: .additionalProperty)]),
                of: "Heartbeat",
                in: group,
                example: VerdictTally.Example(charger: "CP-1", time: "t", text: String(repeating: "x", count: 400))
            )
        }
        let heartbeat = tally.tallies[group]?["Heartbeat"]
        #expect(heartbeat?.frames == 3 && heartbeat?.invalid == VerdictTally.reasonsKept + 5)
        #expect(heartbeat?.topReasons.count == VerdictTally.reasonsKept + 1)
        #expect(heartbeat?.topReasons.first?.reason.hasPrefix("p") == true)
        #expect(heartbeat?.topReasons.first { $0.count == 5 } != nil)  // the reasons past the limit, together
        #expect(heartbeat?.topReasons.first?.example.text.count == VerdictTally.Example.textKept + 1)
    }
}
