import OCPP
import OCPPSchema

/// Where the relay reads the time and makes ids: injected, so that the engine stays pure and tests deterministic.
public struct TranslationClock: Sendable {
    /// The current time as RFC 3339 (payload timestamps the relay fills in).
    public var now: @Sendable () -> String
    /// A monotonic clock (call timeouts, held answers).
    public var uptime: @Sendable () -> Duration
    /// A new unique id (UUID): message ids and 2.0.1 transaction ids.
    public var makeID: @Sendable () -> String

    public init(
        now: @escaping @Sendable () -> String,
        uptime: @escaping @Sendable () -> Duration,
        makeID: @escaping @Sendable () -> String
    ) {
        self.now = now
        self.uptime = uptime
        self.makeID = makeID
    }
}

/// Where translation steps note losses and problems.
protocol TranslationNotes {
    /// Notes a loss or problem about `action`.
    mutating func note(_ kind: TranslationDiagnostic.Kind, _ action: String, _ message: String)
}

/// What translation rules can do while the engine handles an event: send CALLs through the call lanes, answer
/// CALLs, and note losses and problems. Owned by the ``TranslationEngine``.
struct Effects<Rules: TranslationRules>: TranslationNotes, Sendable {
    /// CALLs to the backend and to the charger: one outstanding per direction, the others waiting in order.
    var upstream = CallLane<String, SentCall<Rules.UpstreamContext>>()
    var charger = CallLane<String, SentCall<Rules.ChargerContext>>()
    let clock: TranslationClock
    /// How long a CALL may wait for its answer.
    let callTimeout: Duration
    /// What the event produced so far.
    private(set) var output: [TranslationOutput] = []
    /// The charger's connection is gone: nothing more is sent to it.
    var chargerGone = false
    /// The side whose frame the engine is handling (`nil` for time passing, a start, a departure).
    var eventSide: Side?
    /// The OCPP 2.1 step, when one side speaks 2.1 over the rules' 2.0.1: what goes to that side is lifted.
    var step: VersionStep?

    init(clock: TranslationClock, callTimeout: Duration, step: VersionStep? = nil) {
        self.clock = clock
        self.callTimeout = callTimeout
        self.step = step
    }

    /// The version the peer on `side` speaks (the rules' unless the step stands between).
    func version(_ side: Side) -> OCPPVersion {
        step?.side == side ? .v21 : Rules.version(side)
    }

    /// A CALL for `side` as its peer's version takes it.
    private mutating func lifted(_ payload: JSONValue, _ action: String, to side: Side) -> JSONValue {
        guard var step, step.side == side else { return payload }
        defer { self.step = step }
        return step.lift(payload, action: action, response: false, &self)
    }

    /// The current time as RFC 3339.
    func now() -> String { clock.now() }
    /// The monotonic clock.
    func uptime() -> Duration { clock.uptime() }
    /// A new unique id.
    func makeID() -> String { clock.makeID() }

    /// Takes what the event produced.
    mutating func take() -> [TranslationOutput] {
        defer { output = [] }
        return output
    }

    // MARK: Sending

    /// Queues a CALL for the backend (sent at once when none is outstanding); returns its message id.
    @discardableResult
    mutating func sendUpstream(
        _ action: String,
        _ payload: JSONValue,
        answering caller: Caller? = nil,
        _ context: Rules.UpstreamContext,
        messageID: String? = nil,
        first: Bool = false
    ) -> String {
        let id = messageID ?? makeID()
        let payload = lifted(payload, action, to: .upstream)
        upstream.enqueue(
            SentCall(id: id, action: action, payload: payload, caller: caller, context: context),
            id: id,
            first: first
        )
        pumpUpstream()
        return id
    }

    /// Queues a CALL for the charger (sent at once when none is outstanding); returns its message id.
    @discardableResult
    mutating func sendCharger(
        _ action: String,
        _ payload: JSONValue,
        answering caller: Caller? = nil,
        _ context: Rules.ChargerContext
    ) -> String {
        let id = makeID()
        let payload = lifted(payload, action, to: .charger)
        charger.enqueue(SentCall(id: id, action: action, payload: payload, caller: caller, context: context), id: id)
        pumpCharger()
        return id
    }

    /// Sends the translation of `call` (the charger's) to the backend: the backend's answer answers it.
    mutating func forward(
        _ call: RPCFrame.Call,
        as action: String,
        _ payload: JSONValue,
        _ context: Rules.UpstreamContext
    ) {
        sendUpstream(action, payload, answering: Caller(call), context)
    }

    /// Sends the light path's translation (`payload`, compact JSON; no OCPP 2.1 step lifts it) of the charger's CALL
    /// `call` in `json` to the backend as `action`: the backend's answer answers it.
    mutating func forward(
        _ call: ConformingCall,
        in json: PlainJSON,
        as action: String,
        payload: [UInt8],
        _ context: Rules.UpstreamContext
    ) {
        let id = makeID()
        let caller = Caller(messageID: json.text(call.messageID), action: call.action)
        let text = String(decoding: payload, as: UTF8.self)
        upstream.enqueue(SentCall(id: id, action: action, text: text, caller: caller, context: context), id: id)
        pumpUpstream()
    }

    /// Sends the translation of `call` (the backend's) to the charger: the charger's answer answers it.
    mutating func toCharger(
        _ call: RPCFrame.Call,
        as action: String,
        _ payload: JSONValue,
        _ context: Rules.ChargerContext
    ) {
        sendCharger(action, payload, answering: Caller(call), context)
    }

    mutating func pumpUpstream() {
        guard let (id, call) = upstream.next(at: uptime()) else { return }
        output.append(.toUpstream(Self.callText(id, call)))
    }

    mutating func pumpCharger() {
        guard !chargerGone, let (id, call) = charger.next(at: uptime()) else { return }
        output.append(.toCharger(Self.callText(id, call)))
    }

    /// Changes the CALLs waiting for the backend (a transaction id learnt meanwhile goes into them).
    mutating func updateWaitingUpstream(_ body: (inout SentCall<Rules.UpstreamContext>) -> Void) {
        upstream.updateWaiting(body)
    }

    /// A CALL's frame text: its payload's text as the light path wrote it, or its tree written out.
    static func callText<Context>(_ id: String, _ call: SentCall<Context>) -> String {
        guard let text = call.text else {
            return RPCFrame.call(.init(messageID: id, action: call.action, payload: call.payload)).jsonText
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + id.utf8.count + call.action.utf8.count + 12)
        bytes.append(contentsOf: "[2,".utf8)
        JSONValue.writeString(id, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        JSONValue.writeString(call.action, to: &bytes)
        bytes.append(UInt8(ascii: ","))
        bytes.append(contentsOf: text.utf8)
        bytes.append(UInt8(ascii: "]"))
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Answering

    /// Answers a CALL of `side` with a CALLRESULT.
    mutating func reply(to side: Side, _ messageID: String, _ payload: JSONValue) {
        emit(side, RPCFrame.callResult(.init(messageID: messageID, payload: payload)).jsonText)
    }

    /// Answers a CALL of `side` with a CALLERROR, its code as that side's version spells it.
    mutating func refuse(to side: Side, _ messageID: String, _ code: RPCErrorCode, _ description: String) {
        refuse(to: side, messageID, code.spelled(for: version(side)), description)
    }

    /// Answers a CALL of `side` with a CALLERROR whose code is already spelt (one passed on from the other side).
    mutating func refuse(to side: Side, _ messageID: String, _ code: String, _ description: String) {
        let error = RPCFrame.CallError(
            messageID: messageID,
            errorCode: code,
            errorDescription: String(description.prefix(255))
        )
        emit(side, RPCFrame.callError(error).jsonText)
    }

    private mutating func emit(_ side: Side, _ text: String) {
        if side == .charger {
            guard !chargerGone else { return }
            output.append(.toCharger(text))
        } else {
            output.append(.toUpstream(text))
        }
    }

    // MARK: Notes

    /// Notes a loss or problem about `action`.
    mutating func note(_ kind: TranslationDiagnostic.Kind, _ action: String, _ message: String) {
        output.append(.diagnostic(TranslationDiagnostic(kind: kind, action: action, message: message, side: eventSide)))
    }

    /// Tells the relay something that is neither a frame nor a note (a password the charger accepted).
    mutating func emit(_ other: TranslationOutput) {
        output.append(other)
    }
}
