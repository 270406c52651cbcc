import NIOCore
import NIOWebSocket
import OCPP
import OCPPSchema
import RelayObservability
import RelayRecording

/// The judge of a charger's calls when its invalid ones are refused: an object of its own, made only for sessions
/// that validate. Confined to the session's event loop.
final class CallValidation: @unchecked Sendable {
    var judge: FrameJudge

    init(version: OCPPVersion) {
        judge = FrameJudge(version: version)
    }
}

extension RelaySession {
    /// With `validation.reject_invalid_calls`: a charger's CALL that breaks its version's schema is not forwarded;
    /// the relay answers it with the CALLERROR OCPP prescribes for the first fault (as the version spells it),
    /// records both and counts it. `true` when the message was refused.
    func refusedAsInvalid(_ message: LegMessage) -> Bool {
        guard let validation else { return false }
        // Judged in the loop's scratch buffer: a valid call costs no copy of its own.
        let judged = recorder.withUnmasked(message.payload, key: message.maskKey) {
            validation.judge.judge($0, from: .charger)
        }
        guard judged.messageType == 2, case .invalid(let violations) = judged.verdict, let fault = violations.first,
            let id = judged.messageID
        else { return false }
        let version = validation.judge.version
        let code = fault.callErrorCode.spelled(for: version)
        let description = "refused by the relay: \(fault)"
        let answer = ByteBuffer(
            string: "[4,\(JSONValue.string(id).jsonText),\(JSONValue.string(code).jsonText),"
                + "\(JSONValue.string(description).jsonText),{}]"
        )
        record(
            message.payload,
            maskKey: message.maskKey,
            leg: .charger,
            direction: .in,
            opcode: 1,
            forwarded: false,
            countedAs: 0
        )
        record(answer, leg: .charger, direction: .out, opcode: 1, forwarded: false, countedAs: 1)
        recordError(.charger, "\(judged.action ?? "?") \(id) \(description) (validation.reject_invalid_calls)")
        metrics.refusedInvalid(version: version.shortName, action: judged.action ?? "other")
        recorder.afterFlush { [self] in deliver(answer, opcode: .text, to: .charger) }
        return true
    }
}
