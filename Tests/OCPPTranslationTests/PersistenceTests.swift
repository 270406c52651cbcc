import Foundation
import OCPP
import Testing

@testable import OCPPTranslation

/// What the translation asks the relay to persist, and what a stored state resumes at.
@Suite("Translation state persistence")
struct PersistenceTests {
    /// A booted charger's session with deterministic ids.
    func session(_ state: ChargerState = ChargerState()) -> Driven {
        var state = state
        state.forward.bootAccepted = true
        return Driven(reverse: false, state: state, ids: IDs(), now: "2026-12-01T06:00:00Z")
    }

    static let start =
        #"[2,"s1","StartTransaction",{"connectorId":1,"idTag":"T1","meterStart":0,"timestamp":"2026-12-01T06:00:00Z"}]"#

    static func meterValues(_ n: Int) -> String {
        #"[2,"m\#(n)","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2026-12-01T06:00:00Z","sampledValue":[{"value":"\#(n)","measurand":"Energy.Active.Import.Register"}]}]}]"#
    }

    /// The state each output asks to persist (nil when none), and the seqNo of the TransactionEvent it sends.
    static func persisted(_ outputs: [TranslationOutput]) -> ChargerState? {
        guard case .persist(let state, _) = outputs.first else { return nil }
        return state
    }

    static func seqNo(_ outputs: [TranslationOutput]) throws -> Int? {
        for case .toUpstream(let text) in outputs {
            if case .call(let call) = try RPCFrame.parse(text), call.action == "TransactionEvent" {
                return call.payload["seqNo"]?.intValue
            }
        }
        return nil
    }

    @Test("StartTransaction is persisted before its TransactionEvent goes; a persist is always first")
    func startPersists() throws {
        var session = session()
        let outputs = session.fromCharger(Self.start)
        let state = try #require(Self.persisted(outputs), "\(outputs)")
        #expect(state.forward.transactions.map(\.number) == [1])
        #expect(outputs.dropFirst().allSatisfy { if case .persist = $0 { false } else { true } })
        #expect(try Self.seqNo(outputs) == 0)
        // A state written for its own sake resumes at the next seqNo exactly.
        let resumed = try JSONDecoder().decode(ChargerState.self, from: try JSONEncoder().encode(state))
        #expect(resumed.forward.transactions.first?.nextSeqNo == 1)
    }

    @Test("MeterValues in a transaction cost one write per block of seqNos, not one per message")
    func meterValuesReserve() throws {
        var session = session()
        _ = session.fromCharger(Self.start)
        _ = session.fromUpstream(#"[3,"id-2",{"idTokenInfo":{"status":"Accepted"}}]"#)
        var writes: [Int] = []
        var seqNos: [Int] = []
        var lastStored: ChargerState?
        let count = 3 * ForwardState.Transaction.seqNoBlock
        for n in 1...count {
            let outputs = session.fromCharger(Self.meterValues(n))
            if let state = Self.persisted(outputs) {
                writes.append(n)
                lastStored = state
            }
            seqNos.append(try #require(try Self.seqNo(outputs)))
            let id = try #require(
                outputs.compactMap { output -> String? in
                    guard case .toUpstream(let text) = output, case .call(let call) = try? RPCFrame.parse(text)
                    else { return nil }
                    return call.messageID
                }.first
            )
            _ = session.fromUpstream(#"[3,"\#(id)",{}]"#)
        }
        #expect(seqNos == Array(1...count))
        let block = ForwardState.Transaction.seqNoBlock
        #expect(writes == [1, 2 + block, 3 + 2 * block], "writes at \(writes)")
        // A relay killed now resumes after every seqNo it may have sent: never one the backend saw twice.
        let stored = try #require(lastStored)
        let resumed = try JSONDecoder().decode(ChargerState.self, from: try JSONEncoder().encode(stored))
        let next = try #require(resumed.forward.transactions.first?.nextSeqNo)
        #expect(next > count && next <= count + block + 1, "resumes at \(next) after \(count)")
    }

    @Test("a state stored before reservations existed resumes at its stored seqNo")
    func olderStateReads() throws {
        let text =
            #"{"transactions":[{"number":4,"id":"tx-4","connector":1,"evseId":1,"connectorId":1,"nextSeqNo":7,"ended":false}]}"#
        let state = try JSONDecoder().decode(ChargerState.self, from: Data(text.utf8))
        #expect(state.forward.transactions.first?.nextSeqNo == 7)
        #expect(state.forward.transactions.first?.seqNoReserved == 7)
    }

    @Test("a frame that changes no state asks for no write")
    func heartbeatWritesNothing() {
        var session = session()
        let outputs = session.fromCharger(#"[2,"h1","Heartbeat",{}]"#)
        #expect(Self.persisted(outputs) == nil)
        #expect(outputs.count == 1)
    }
}

@Suite("Meter value numbers")
struct MeterValueNumberTests {
    @Test("a sample's text is kept as written when it is a JSON number, the same set the JSON parser accepts")
    func numbers() throws {
        for text in [
            "0", "-0", "12", "-0.5", "1.50", "1e3", "1E+3", "2.5e-7", "230.1", "07", "1.", ".5", "+1", "1e", "--1", "",
            "1 2", "0x10", "1.2.3", "e5",
        ] {
            let parsed: Bool
            if case .number = (try? JSONParser.parse(text)) ?? .null { parsed = true } else { parsed = false }
            #expect(ForwardRules.isJSONNumber(text) == parsed, "\(text)")
        }
    }
}
