import OCPP
import Testing

@testable import OCPPTranslation

/// The light paths (a 1.6 MeterValues in a transaction, a 2.0.1 TransactionEvent Updated with meter values,
/// translated from their bytes) held to the tree path: for every frame, and for every byte of a real one dropped,
/// doubled or changed, both engines send the same frames, note the same things and keep the same state; and the
/// light path does take the frames it is for.
@Suite("Light path")
struct LightPathTests {
    /// A booted 1.6 charger with transaction 1 open on connector 1, as the engines get it from the charger itself.
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

    /// A 2.0.1 charger with transaction `tx-1` started (seqNo 0, Charging) and known to the 1.6 backend as 7.
    static let reverseState: ChargerState = {
        var driven = Driven(reverse: true, state: ChargerState(), ids: IDs())
        answer(
            &driven,
            driven.fromCharger(
                #"[2,"t0","TransactionEvent",{"eventType":"Started","timestamp":"2026-11-27T06:00:00Z","triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"tx-1","chargingState":"Charging"},"idToken":{"idToken":"TAG","type":"ISO14443"},"evse":{"id":1,"connectorId":1},"meterValue":[{"timestamp":"2026-11-27T06:00:00Z","sampledValue":[{"value":0,"context":"Transaction.Begin"}]}]}]"#
            ),
            #"{"transactionId":7,"idTagInfo":{"status":"Accepted"}}"#
        )
        return driven.state
    }()

    /// The backend answers every CALL `outputs` sent it with `payload`, and what those answers sent with `{}`.
    static func answer(_ driven: inout Driven, _ outputs: [TranslationOutput], _ payload: String) {
        for case .toUpstream(let text) in outputs {
            guard let id = (try? JSONParser.parse(text))?.arrayValue?[1].stringValue else { continue }
            answer(&driven, driven.fromUpstream(#"[3,"\#(id)",\#(payload)]"#), "{}")
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
    /// whether the light one sent a CALL as light-path text.
    static func compare(
        _ frames: [String],
        state: ChargerState = state,
        reverse: Bool = false
    ) -> (same: Bool, tookLight: Bool) {
        let ids = (IDs(), IDs())
        var light = Driven(reverse: reverse, state: state, ids: ids.0)
        var tree = Driven(reverse: reverse, state: state, ids: ids.1, options: .init(lightPath: false))
        var same = true
        var tookLight = false
        for frame in frames {
            let outputs = (light.fromCharger(frame), tree.fromCharger(frame))
            same = same && outputs.0 == outputs.1 && light.state == tree.state
            tookLight = tookLight || sentText(light.engine)
            for case .toUpstream(let text) in outputs.0 {
                guard let id = (try? JSONParser.parse(text))?.arrayValue?[1].stringValue else { continue }
                let answer = #"[3,"\#(id)",{}]"#
                same = same && light.fromUpstream(answer) == tree.fromUpstream(answer) && light.state == tree.state
            }
        }
        return (same, tookLight)
    }

    /// Whether a CALL waiting for the backend's answer was written by a light path.
    static func sentText(_ engine: any VersionTranslation) -> Bool {
        if let forward = engine as? TranslationEngine<ForwardRules> {
            return forward.io.upstream.contains { $0.text != nil }
        }
        if let reverse = engine as? TranslationEngine<ReverseRules> {
            return reverse.io.upstream.contains { $0.text != nil }
        }
        return false
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

    // MARK: 2.0.1 chargers on a 1.6 backend

    static func event(_ samples: String, seqNo: Int = 1, info: String = "", extra: String = "") -> String {
        #"[2,"e\#(seqNo)","TransactionEvent",{"eventType":"Updated","timestamp":"2026-11-27T06:01:00Z","triggerReason":"MeterValuePeriodic","seqNo":\#(seqNo),"transactionInfo":{"transactionId":"tx-1"\#(info)}\#(extra),"meterValue":[{"timestamp":"2026-11-27T06:01:00Z","sampledValue":[\#(samples)]}]}]"#
    }

    /// The bench's 2.0.1 sample.
    static let updated = event(
        #"{"value":1037,"context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unitOfMeasure":{"unit":"Wh"}},{"value":11040,"context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unitOfMeasure":{"unit":"W"}},{"value":16.1,"context":"Sample.Periodic","measurand":"Current.Import","phase":"L1","location":"Outlet","unitOfMeasure":{"unit":"A"}},{"value":230.1,"context":"Sample.Periodic","measurand":"Voltage","phase":"L1-N","location":"Outlet","unitOfMeasure":{"unit":"V"}}"#
    )

    static let reverseLight: [String] = [
        updated,
        event(#"{"value":5}"#),
        event(#"{"value":1.5,"unitOfMeasure":{"unit":"kWh"}},{"value":-2e1,"measurand":"Power.Active.Import"}"#),
        event(#"{"value":230,"measurand":"Voltage"}"#, info: #","chargingState":"Charging""#),
        event(#"{"value":50,"measurand":"Frequency","unitOfMeasure":{"unit":"Hz"}}"#),
        #"[2,"e9","TransactionEvent",{"meterValue":[{"sampledValue":[{"value":1}],"timestamp":"2026-11-27T06:02:00Z"},{"timestamp":"2026-11-27T06:03:00Z","sampledValue":[{"value":2,"context":"Sample.Clock"}]}],"seqNo":9,"transactionInfo":{"transactionId":"tx-1"},"triggerReason":"MeterValueClock","timestamp":"2026-11-27T06:03:00Z","eventType":"Updated"}]"#,
    ]

    static let reverseTree: [String] = [
        event(#"{"value":5,"unitOfMeasure":{"unit":"kWh","multiplier":3}}"#),
        event(
            #"{"value":5,"signedMeterValue":{"signedMeterData":"a2V5","signingMethod":"","encodingMethod":"OCMF","publicKey":""}}"#
        ),
        event(#"{"value":5}"#, seqNo: 0),
        event(#"{"value":5,"measurand":"Energy.Active.Net"}"#),
        event(#"{"value":5,"unitOfMeasure":{"unit":"mA"}}"#),
        event(#"{"value":5,"context":"Sample.P\u0065riodic"}"#),
        event(#"{"value":5}"#, info: #","chargingState":"SuspendedEV""#),
        event(#"{"value":5}"#, extra: #","idToken":{"idToken":"TAG","type":"ISO14443"}"#),
        event(#"{"value":5}"#, extra: #","evse":{"id":1,"connectorId":1}"#),
        event(#"{"value":5}"#, extra: #","offline":true"#),
        event(#"{"value":5,"value":6}"#),
        event(""),
        event(#"{"value":5}"#).replacingFirst(#""tx-1""#, with: #""tx-2""#),
        event(#"{"value":5}"#).replacingFirst("MeterValuePeriodic", with: "StopAuthorized"),
        event(#"{"value":5}"#).replacingFirst(#""Updated""#, with: #""Ended""#),
    ]

    @Test(
        "2.0.1 events the light path takes are translated exactly as the tree path translates them",
        arguments: reverseLight
    )
    func reverseTakes(_ frame: String) {
        let result = Self.compare([frame], state: Self.reverseState, reverse: true)
        #expect(result.same)
        #expect(result.tookLight)
    }

    @Test("2.0.1 events the light path does not read go the tree path", arguments: reverseTree)
    func reverseLeaves(_ frame: String) {
        let result = Self.compare([frame], state: Self.reverseState, reverse: true)
        #expect(result.same)
        #expect(!result.tookLight)
    }

    @Test("2.0.1 events in a row, one retried: the same MeterValues, register and seqNos")
    func reverseInARow() {
        let frames =
            (1...20).map { Self.event(#"{"value":\#($0 * 37)}"#, seqNo: $0) } + [Self.event(#"{"value":1}"#, seqNo: 3)]
        let result = Self.compare(frames, state: Self.reverseState, reverse: true)
        #expect(result.same)
        #expect(result.tookLight)
    }

    @Test(
        "every byte of a 2.0.1 event dropped, doubled or changed: never a translation the tree path would not send"
    )
    func reverseMutations() async {
        let differing = await Self.differing(Self.mutations(of: Self.updated)) {
            Self.compare([$0], state: Self.reverseState, reverse: true).same
        }
        #expect(differing.isEmpty, "\(differing.count) frames differ, the first: \(differing.first ?? "")")
    }

    @Test(
        "every byte of a meter value dropped, doubled or changed: never a translation the tree path would not send"
    )
    func mutations() async {
        let differing = await Self.differing(Self.mutations(of: Self.periodic)) { Self.compare([$0]).same }
        #expect(differing.isEmpty, "\(differing.count) frames differ, the first: \(differing.first ?? "")")
    }

    /// The frames `same` says differ, checked a few at a time: the other suites' tests share the test pool's threads.
    static func differing(_ frames: [String], _ same: (String) -> Bool) async -> [String] {
        var differing: [String] = []
        for (index, frame) in frames.enumerated() {
            if index % 16 == 0 { await Task.yield() }
            if !same(frame) { differing.append(frame) }
        }
        return differing
    }

    /// `frame` with each byte dropped, doubled or changed (to a quote, a digit, a brace, a non-ASCII byte or a
    /// space), one of those in turn.
    static func mutations(of frame: String) -> [String] {
        let bytes = Array(frame.utf8)
        let replacements: [UInt8] = [UInt8(ascii: "\""), UInt8(ascii: "1"), UInt8(ascii: "}"), 0x80, UInt8(ascii: " ")]
        return bytes.indices.map { index in
            var changed = bytes
            switch index % (replacements.count + 2) {
            case 0: changed.remove(at: index)
            case 1: changed.insert(bytes[index], at: index)
            case let turn: changed[index] = replacements[turn - 2]
            }
            return String(decoding: changed, as: UTF8.self)
        }
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        var text = self
        text.replaceSubrange(range, with: replacement)
        return text
    }

}
