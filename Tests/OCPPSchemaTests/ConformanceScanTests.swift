import OCPP
import Testing

@testable import OCPPSchema

/// The judgement read from a frame's bytes (no tree) must never differ from the judgement of its parsed tree: it may
/// only say "valid" where the long way says so too, and it must say it for the frames chargers send most.
@Suite("Conformance scan")
struct ConformanceScanTests {
    static let meterValues16 =
        #"[2,"m1","MeterValues",{"connectorId":1,"transactionId":7,"meterValue":[{"timestamp":"2026-12-07T10:00:00.000Z","#
        + #""sampledValue":[{"value":"1234.5","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","#
        + #""unit":"Wh"},{"value":"7200","measurand":"Power.Active.Import","unit":"W"},{"value":"16.1","#
        + #""measurand":"Current.Import","phase":"L1","unit":"A"},{"value":"230","measurand":"Voltage","#
        + #""phase":"L1-N","unit":"V","location":"Outlet"}]}]}]"#
    static let transactionEvent201 =
        #"[2,"t1","TransactionEvent",{"eventType":"Updated","timestamp":"2026-12-07T10:00:00Z","#
        + #""triggerReason":"MeterValuePeriodic","seqNo":3,"transactionInfo":{"transactionId":"abc-1"},"#
        + #""meterValue":[{"timestamp":"2026-12-07T10:00:00Z","sampledValue":[{"value":1234.5,"#
        + #""measurand":"Energy.Active.Import.Register","unitOfMeasure":{"unit":"Wh"}},{"value":-3,"phase":"L1"}]}]}]"#

    /// Valid frames of both versions, each with the call it answers first when it is an answer.
    static let valid: [(OCPPVersion, [String])] = [
        (.v16, [meterValues16]),
        (.v16, [#"[2, "h" , "Heartbeat" , { } ]"#, #"[3,"h",{"currentTime":"2026-12-07T10:00:00Z"}]"#]),
        (
            .v16,
            [
                #"[2,"s","StatusNotification",{"connectorId":0,"errorCode":"NoError","status":"Available"}]"#,
                #"[3,"s",{}]"#,
            ]
        ),
        (
            .v16,
            [
                #"[2,"b","BootNotification",{"chargePointVendor":"ACME","chargePointModel":"W1"}]"#,
                #"[3,"b",{"status":"Accepted","currentTime":"2026-12-07T10:00:00+01:00","interval":300}]"#,
            ]
        ),
        (.v201, [transactionEvent201, #"[3,"t1",{"totalCost":1.5e2,"idTokenInfo":{"status":"Accepted"}}]"#]),
        (.v201, [#"[2,"d","DataTransfer",{"vendorId":"x","data":{"any":[1,true,null,{"b":"c"}]}}]"#]),
        (.v201, [#"[6,"e","Heartbeat",{}]"#]),
    ]

    /// Judges each frame both ways, in order, and returns the quick judgements.
    @discardableResult
    private static func compare(_ version: OCPPVersion, _ frames: [[UInt8]]) -> [FrameJudge.Judged?] {
        var quick = FrameJudge(version: version)
        var long = FrameJudge(version: version)
        var both = FrameJudge(version: version)
        return frames.enumerated().map { offset, bytes in
            let sender: FrameJudge.Sender = offset % 2 == 0 ? .charger : .server
            let text = String(decoding: bytes, as: UTF8.self)
            let slow: FrameJudge.Judged =
                switch Result(catching: { () throws(OCPPParseError) in try RPCFrame.parse(bytes) }) {
                case .success(let frame): long.judge(frame, from: sender)
                case .failure(let error):
                    FrameJudge.Judged(messageType: 0, action: nil, messageID: nil, verdict: .malformed("\(error)"))
                }
            let fast = bytes.withUnsafeBufferPointer { quick.judgeConforming($0, from: sender) }
            if let fast { #expect(fast == slow, "\(text)") }
            // The judge's own entry point (quick, then the long way) says what the long way says.
            #expect(both.judge(bytes, from: sender) == slow, "\(text)")
            // A frame the quick judge declined taught it nothing: it learns it the long way, to stay in step.
            if fast == nil { _ = quick.judge(bytes, from: sender) }
            return fast
        }
    }

    @discardableResult
    private static func compare(_ version: OCPPVersion, _ frames: [String]) -> [FrameJudge.Judged?] {
        compare(version, frames.map { Array($0.utf8) })
    }

    @Test("valid frames are judged from their bytes, exactly as from their trees")
    func validFrames() {
        for (version, frames) in Self.valid {
            let judged = Self.compare(version, frames)
            for (text, quick) in zip(frames, judged) {
                #expect(quick?.verdict == .valid, "not judged quickly: \(text)")
            }
        }
    }

    @Test("what the scan does not read itself goes the long way, and is judged the same")
    func longWay() {
        let frames: [(OCPPVersion, String)] = [
            (.v16, #"[2,"h","Heartbeat",{"x":1}]"#),  // a member a closed object does not take
            (.v16, #"[2,"h","Heartbeat",{}"#),  // truncated
            (.v16, #"[2,"h","Heartbeat",{}] x"#),  // data after the frame
            (.v16, #"[2,"h\u0041","Heartbeat",{}]"#),  // an escape in the id
            (.v16, #"[2,"d","DataTransfer",{"vendorId":"x","data":"{\"a\":1}"}]"#),  // an escape in a value
            (.v201, #"[2,"e","NotifyEvent",{"generatedAt":"2026-12-07T10:00:00Z","seqNo":0,"eventData":[]}]"#),
            (.v16, #"[2,"h","StatusNotification",{"connectorId":0,"errorCode":"NoError","status":"Avail"}]"#),
            (.v16, #"[2,"h","StatusNotification",{"connectorId":0.5,"errorCode":"NoError","status":"Available"}]"#),
            (.v16, #"[2,"h","StatusNotification",{"connectorId":-1,"errorCode":"NoError","status":"Available"}]"#),
            (.v16, #"[2,"h","StatusNotification",{"errorCode":"NoError","status":"Available"}]"#),
            (.v16, #"[2,"h","BootNotification",{"chargePointVendor":"Ä","chargePointModel":"W1"}]"#),
            (.v16, #"[2.0,"h","Heartbeat",{}]"#),
            (.v16, #"[02,"h","Heartbeat",{}]"#),
            (.v16, #"[2,"","Heartbeat",{}]"#),
            (.v16, #"[2,"h","Heartbeat",{},1]"#),
            (.v16, #"[2,"h","NoSuchAction",{}]"#),
            (.v16, #"[3,"never-asked",{}]"#),
            (.v16, #"[4,"h","NotImplemented","",{}]"#),
            (.v201, #"[2,"t","TransactionEvent",{"eventType":"Updated"}]"#),
            (.v201, #"[2,"h","Heartbeat",{"customData":{"vendorId":"v"}}]"#),
        ]
        for (version, text) in frames { Self.compare(version, [text]) }
    }

    @Test("every byte changed, dropped or doubled in valid frames: the quick judgement never says valid wrongly")
    func mutations() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[]":,.-+0123456789eEtrufalsn \"#.utf8) + [0x00, 0x41, 0xC3, 0xA4]
        for (version, frames) in Self.valid {
            let last = frames.count - 1
            let original = Array(frames[last].utf8)
            for position in original.indices {
                var variants: [[UInt8]] = []
                var dropped = original
                dropped.remove(at: position)
                variants.append(dropped)
                var doubled = original
                doubled.insert(original[position], at: position)
                variants.append(doubled)
                var changed = original
                changed[position] = alphabet.randomElement(using: &generator)!
                variants.append(changed)
                for variant in variants {
                    Self.compare(version, frames[..<last].map { Array($0.utf8) } + [variant])
                }
            }
        }
    }
}
