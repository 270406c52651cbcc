import OCPP
import OCPPSchema
import Testing

/// Frames judged against their version's schema: calls by their action, answers by the call they answer.
@Suite("Frame judge")
struct FrameJudgeTests {
    static func judge(_ judge: inout FrameJudge, _ text: String, from sender: FrameJudge.Sender) -> FrameJudge.Judged {
        judge.judge(Array(text.utf8), from: sender)
    }

    @Test("a call is judged by its action's request schema, with the path and rule of each fault")
    func calls() {
        var judge = FrameJudge(version: .v16)
        let valid = Self.judge(&judge, #"[2,"1","Heartbeat",{}]"#, from: .charger)
        #expect(valid.verdict == .valid && valid.action == "Heartbeat" && valid.messageType == 2)
        let typed = Self.judge(
            &judge,
            #"[2,"2","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Broken"}]"#,
            from: .charger
        )
        #expect(
            typed.verdict.reasons == [
                "connectorId is a string where the schema wants an integer", "status is not one of the schema's values",
            ]
        )
        #expect(
            typed.verdict
                == .invalid([
                    SchemaViolation(path: "connectorId", rule: .type(expected: .integer, got: "string")),
                    SchemaViolation(path: "status", rule: .enumeration),
                ])
        )
    }

    @Test("an answer is judged by the response schema of the call it answers, from the other side")
    func answers() {
        var judge = FrameJudge(version: .v201)
        _ = Self.judge(
            &judge,
            #"[2,"b","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"M","vendorName":"V"}}]"#,
            from: .charger
        )
        let answer = Self.judge(
            &judge,
            #"[3,"b",{"currentTime":"2026-12-07T10:00:00Z","interval":"300","status":"Accepted"}]"#,
            from: .server
        )
        #expect(answer.action == "BootNotification")
        #expect(answer.verdict.reasons == ["interval is a string where the schema wants an integer"])
        let stray = Self.judge(&judge, #"[3,"b",{}]"#, from: .server)
        guard case .unjudged = stray.verdict else {
            Issue.record("an answer to a call already answered has nothing to be judged by")
            return
        }
    }

    @Test("malformed frames, unknown actions and error codes, and the reasons' kinds without positions")
    func odd() {
        var judge = FrameJudge(version: .v21)
        #expect(Self.judge(&judge, "not json", from: .charger).verdict.isInvalid)
        guard case .unjudged = Self.judge(&judge, #"[2,"x","Invented",{}]"#, from: .charger).verdict else {
            Issue.record("an action the version does not define is not judged")
            return
        }
        #expect(Self.judge(&judge, #"[4,"x","Oops","",{}]"#, from: .server).verdict.isInvalid)
        let verdict = FrameVerdict.invalid([
            SchemaViolation(path: "meterValue[0].sampledValue[12].value", rule: .required)
        ])
        #expect(verdict.reasonKinds == ["meterValue[].sampledValue[].value is required and missing"])
        #expect(
            SchemaViolation(path: "a", rule: .required).callErrorCode.spelled(for: .v16)
                == "OccurenceConstraintViolation"
        )
        #expect(
            SchemaViolation(path: "a", rule: .additionalProperty).callErrorCode.spelled(for: .v201) == "FormatViolation"
        )
    }
}
