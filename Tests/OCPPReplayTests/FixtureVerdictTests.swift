import OCPP
import Testing

@testable import OCPPReplay

@Suite("Fixture verdicts")
struct FixtureVerdictTests {
    @Test("a fixture whose recorded frames break their schema says which, as the relay would have judged them")
    func invalidRecordedFrames() throws {
        let recorded = try fixture([
            ("in", #"[2,"1","Heartbeat",{}]"#),
            ("out", #"[3,"1",{"currentTime":"2026-11-27T06:00:01Z"}]"#),
            ("in", #"[2,"2","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]"#),
            ("out", #"[3,"2",{"unexpected":1}]"#),
        ])
        let verdicts = recorded.recordedVerdicts
        #expect(verdicts.map(\.entry) == [3])  // the relay's answer (out) is the relay's, not judged
        #expect(verdicts.first?.action == "StatusNotification")
        #expect(verdicts.first?.reasons == ["connectorId is a string where the schema wants an integer"])
        let note = try #require(recorded.verdictNote(name: "cp-1"))
        #expect(note.hasPrefix("fixture cp-1: 1 recorded frame(s) break their version's schema"))
        #expect(note.contains("entry 3 (charger in) StatusNotification: connectorId is a string"))
        let valid = try fixture([("in", #"[2,"1","Heartbeat",{}]"#)])
        #expect(valid.verdictNote(name: "ok") == nil)
    }
}
