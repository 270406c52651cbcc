import OCPP
import Testing

@testable import OCPPTranslation

/// The light path (a 1.6 MeterValues in a transaction translated from its bytes) held to the tree path: for every
/// frame, and for every byte of a real one dropped, doubled or changed, both engines send the same frames, note the
/// same things and keep the same state; and the light path does take the frames it is for.
@Suite("Light path")
struct LightPathTests {
    /// A booted charger with transaction 1 open on connector 1, as the engines get it from the charger itself.
    static let state: ChargerState = {
        var driven = Driven(reverse: false, state: ChargerState(), ids: IDs())
        answer(
            &driven,
            driven.fromCharger(#"[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#),
            #"{"currentTime":"2026-11-27T06:00:00Z","interval":60,"status":"Accepted"}"#
        )
        answer(
            &driven,
            driven.fromCharger(
                #"[2,"s","StartTransaction",{"connectorId":1,"idTag":"TAG","meterStart":0,"timestamp":"2026-11-27T06:00:00Z"}]"#
            ),
            #"{"idTokenInfo":{"status":"Accepted"}}"#
        )
        return driven.state
    }()

    /// The backend answers every CALL `outputs` sent it with `payload`.
    static func answer(_ driven: inout Driven, _ outputs: [TranslationOutput], _ payload: String) {
        for case .toUpstream(let text) in outputs {
            guard let id = (try? JSONParser.parse(text))?.arrayValue?[1].stringValue else { continue }
            _ = driven.fromUpstream(#"[3,"\#(id)",\#(payload)]"#)
        }
    }

    static func sample(_ members: String) -> String {
        #"[2,"m1","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2026-11-27T06:01:00Z","sampledValue":[\#(members)]}]}]"#
    }

    /// What a charger sends: the bench's sample first.
    static let periodic =
        #"[2,"m1","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2026-11-27T06:01:00Z","sampledValue":[{"value":"1037","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"},{"value":"11040","context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unit":"W"},{"value":"16.1","context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","location":"Outlet","unit":"A"},{"value":"230.1","context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","location":"Outlet","unit":"V"}]}]}]"#

    /// Frames the light path takes.
    static let light: [String] = [
        periodic,
        sample(#"{"value":"5"}"#),
        sample(#"{"value":"-0.5e3","context":"Sample.Clock","format":"Raw","unit":"Celcius"}"#),
        sample(#"{"unit":"Hertz","value":"50","measurand":"Frequency","phase":"L2","location":"Inlet"}"#),
        #"[2,"m2","MeterValues",{"meterValue":[{"sampledValue":[{"value":"1"}],"timestamp":"2026-11-27T06:02:00Z"},{"timestamp":"2026-11-27T06:03:00Z","sampledValue":[{"value":"2","context":"Transaction.Begin"},{"value":"3"}]}],"connectorId":1}]"#,
        "[2, \"m3\" ,\"MeterValues\",\n {\"connectorId\" : 1 , \"meterValue\" : [ { \"timestamp\" : \"2026-11-27T06:01:00Z\" , \"sampledValue\" : [ { \"value\" : \"7\" } ] } ] } ]",
        #"[2,"m4","MeterValues",{"connectorId":1,"transactionId":99,"meterValue":[{"timestamp":"2026-11-27T06:01:00Z","sampledValue":[{"value":"8"}]}]}]"#,
    ]

    /// Frames it leaves to the tree path, which notes, mends, drops or refuses.
    static let tree: [String] = [
        sample(#"{"value":" 12 "}"#),
        sample(#"{"value":"abc"}"#),
        sample(#"{"value":"1","measurand":"Temperature"}"#),
        sample(#"{"value":"1","measurand":"RPM"},{"value":"2"}"#),
        sample(#"{"value":"a2V5","format":"SignedData"},{"value":"2"}"#),
        sample(#"{"value":"1","value":"2"}"#),
        sample(#"{"value":"1","context":"Sample.P\u0065riodic"}"#),
        sample(#"{"value":"1","location":"Outlet","phase":"L1\u00e9"}"#),
        sample(""),
        sample(#"{"value":1}"#),
        #"[2,"m5","MeterValues",{"connectorId":1,"transactionId":1.0,"meterValue":[{"timestamp":"2026-11-27T06:01:00Z","sampledValue":[{"value":"8"}]}]}]"#,
        #"[2,"m6","MeterValues",{"connectorId":2,"meterValue":[{"timestamp":"2026-11-27T06:01:00Z","sampledValue":[{"value":"8"}]}]}]"#,
        #"[2,"m7","MeterValues",{"connectorId":1,"meterValue":[]}]"#,
        #"[2,"m8","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"yesterday","sampledValue":[{"value":"8"}]}]}]"#,
        #"[2,"m9","MeterValues",{"connectorId":1,"extra":true,"meterValue":[{"timestamp":"2026-11-27T06:01:00Z","sampledValue":[{"value":"8"}]}]}]"#,
        #"[2,"m10","Heartbeat",{}]"#,
    ]

    /// Both engines given `frames`, then the backend's answer to what reached it: the same outputs and state; and
    /// whether the light one sent its TransactionEvent as light-path text.
    static func compare(_ frames: [String], state: ChargerState = state) -> (same: Bool, tookLight: Bool) {
        let ids = (IDs(), IDs())
        var light = Driven(reverse: false, state: state, ids: ids.0)
        var tree = Driven(reverse: false, state: state, ids: ids.1, options: .init(lightPath: false))
        var same = true
        var tookLight = false
        for frame in frames {
            let outputs = (light.fromCharger(frame), tree.fromCharger(frame))
            same = same && outputs.0 == outputs.1 && light.state == tree.state
            let engine = light.engine as? TranslationEngine<ForwardRules>
            tookLight = tookLight || engine?.io.upstream.contains { $0.text != nil } == true
            for case .toUpstream(let text) in outputs.0 {
                guard let id = (try? JSONParser.parse(text))?.arrayValue?[1].stringValue else { continue }
                let answer = #"[3,"\#(id)",{}]"#
                same = same && light.fromUpstream(answer) == tree.fromUpstream(answer) && light.state == tree.state
            }
        }
        return (same, tookLight)
    }

    @Test("frames the light path takes are translated exactly as the tree path translates them", arguments: light)
    func takes(_ frame: String) {
        let result = Self.compare([frame])
        #expect(result.same)
        #expect(result.tookLight)
    }

    @Test("frames the light path does not read go the tree path, which notes why", arguments: tree)
    func leaves(_ frame: String) {
        let result = Self.compare([frame])
        #expect(result.same)
        #expect(!result.tookLight)
    }

    @Test("a transaction's meter values in a row: the same seqNos, and the same reservation writes")
    func seqNos() {
        let frames = (0..<(ForwardState.Transaction.seqNoBlock * 2 + 3)).map {
            #"[2,"m\#($0)""# + Self.periodic.dropFirst(#"[2,"m1""#.count)
        }
        let result = Self.compare(frames)
        #expect(result.same)
        #expect(result.tookLight)
    }

    @Test("before the boot is accepted, and after the transaction ended, the tree path answers")
    func outsideATransaction() {
        #expect(Self.compare([Self.periodic], state: ChargerState()) == (true, false))
        var ended = Self.state
        ended.forward.transactions = ended.forward.transactions.map {
            var transaction = $0
            transaction.ended = true
            return transaction
        }
        #expect(Self.compare([Self.periodic], state: ended) == (true, false))
    }

    @Test(
        "every byte of a meter value dropped, and doubled or changed: never a translation the tree path would not send"
    )
    func mutations() {
        let bytes = Array(Self.periodic.utf8)
        var differing: [String] = []
        let replacements: [UInt8] = [UInt8(ascii: "\""), UInt8(ascii: "1"), UInt8(ascii: "}"), 0x80, UInt8(ascii: " ")]
        for index in bytes.indices {
            var dropped = bytes
            dropped.remove(at: index)
            // Doubled, or changed to one of the replacements in turn.
            var changed = bytes
            if index % (replacements.count + 1) == 0 {
                changed.insert(bytes[index], at: index)
            } else {
                changed[index] = replacements[index % (replacements.count + 1) - 1]
            }
            for variant in [dropped, changed] {
                let text = String(decoding: variant, as: UTF8.self)
                if !Self.compare([text]).same { differing.append(text) }
            }
        }
        #expect(differing.isEmpty, "\(differing.count) frames differ, the first: \(differing.first ?? "")")
    }
}
