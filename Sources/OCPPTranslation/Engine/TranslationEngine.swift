import OCPP
import OCPPSchema

/// A translation between a charger and a backend that speak different OCPP versions, as the relay drives it: fed
/// the frames of both sides and the passing of time, it returns what to send, to store and to note. Implemented
/// once, by ``TranslationEngine``; the relay holds any pair's engine through this.
public protocol VersionTranslation: Sendable {
    /// What must survive the connection (see ``TranslationOutput/persist(_:write:)``).
    var state: ChargerState { get }
    /// Whether anything waits for time to pass (a CALL's answer, a held answer, a reservation's expiry).
    var waitsForTime: Bool { get }
    /// Whether nothing is owed the backend: no CALL waits to be sent or answered, and no state write is pending.
    var drained: Bool { get }
    /// How many CALLs for the backend are still waiting or unanswered.
    var undelivered: Int { get }
    /// Both legs are open: what an earlier connection left to send goes out.
    mutating func started() -> [TranslationOutput]
    /// A frame from the charger; `cause` tags what it releases later (``HeldOutputs``).
    mutating func fromCharger(_ text: String, cause: UInt64?) -> [TranslationOutput]
    /// A frame from the backend.
    mutating func fromUpstream(_ text: String, cause: UInt64?) -> [TranslationOutput]
    /// Time passed: CALLs unanswered for the call timeout fail, held answers and reservations expire.
    mutating func tick() -> [TranslationOutput]
    /// State write `write` is stored (or failed to be): what waited for it goes out, in order.
    mutating func stored(_ write: Int) -> [HeldOutputs]
    /// The charger's connection is gone: calls to it fail, the backend's new calls are refused, and what is owed
    /// the backend still goes (the relay closes the backend's leg once ``drained``).
    mutating func chargerLeft() -> [TranslationOutput]
}

extension VersionTranslation {
    /// A frame from the charger, untagged.
    public mutating func fromCharger(_ text: String) -> [TranslationOutput] { fromCharger(text, cause: nil) }
    /// A frame from the backend, untagged.
    public mutating func fromUpstream(_ text: String) -> [TranslationOutput] { fromUpstream(text, cause: nil) }
}

/// The one translation engine: parses frames, gets the tables' verdict on a CALL, judges a CALL against its
/// version's schema facts, keeps one call lane per direction with its timeouts, orders frames behind the state
/// writes they depend on, drains what the relay owes the backend when the charger leaves, and writes the notes.
/// A version pair contributes its ``TranslationRules``.
///
/// Pure: no I/O, time and ids injected (``TranslationClock``). The relay holds an engine as `any
/// VersionTranslation`, whose witnesses are generic: each entry point is specialized for every rule set
/// (`@_specialize`), so that a frame runs specialized code rather than generic code that looks up metadata at run
/// time (measured: a tenth of a translated round trip's CPU).
struct TranslationEngine<Rules: TranslationRules>: VersionTranslation {
    let identity: String
    private(set) var rules: Rules
    private(set) var io: Effects<Rules>
    /// The stored state's parts the rules do not own, kept as loaded.
    private let base: ChargerState
    private var ordering = WriteOrdering()

    /// - Parameters:
    ///   - rules: the pair's rules; their state is taken from `state`.
    ///   - step: the side that speaks OCPP 2.1 over the rules' 2.0.1, if any (``VersionStep``).
    ///   - callTimeout: how long a CALL may wait for its answer.
    init(
        identity: String,
        rules: Rules,
        step: Side? = nil,
        state: ChargerState,
        clock: TranslationClock,
        callTimeout: Duration = .seconds(30)
    ) {
        self.identity = identity
        var rules = rules
        rules.state = state[keyPath: Rules.stateKey]
        let step = step.map { VersionStep(side: $0, table: rules.setup.tables.step21, state: state.step21) }
        self.rules = rules
        self.base = state
        self.io = Effects(clock: clock, callTimeout: callTimeout, step: step)
    }

    public var state: ChargerState {
        var state = base
        state[keyPath: Rules.stateKey] = rules.state
        if let step = io.step { state.step21 = step.state }
        return state
    }

    public var waitsForTime: Bool { io.upstream.isBusy || io.charger.isBusy || rules.waitsForTime }

    public var drained: Bool { io.upstream.isIdle && !ordering.isHolding }

    public var undelivered: Int { io.upstream.count }

    // MARK: Events

    @_specialize(where Rules == ForwardRules)
    @_specialize(where Rules == ReverseRules)
    @_specialize(where Rules == SameRules)
    public mutating func started() -> [TranslationOutput] {
        finish(cause: nil) { $0.rules.started(&$0.io) }
    }

    @_specialize(where Rules == ForwardRules)
    @_specialize(where Rules == ReverseRules)
    @_specialize(where Rules == SameRules)
    public mutating func fromCharger(_ text: String, cause: UInt64? = nil) -> [TranslationOutput] {
        finish(cause: cause, side: .charger) { $0.frame(text, from: .charger) }
    }

    @_specialize(where Rules == ForwardRules)
    @_specialize(where Rules == ReverseRules)
    @_specialize(where Rules == SameRules)
    public mutating func fromUpstream(_ text: String, cause: UInt64? = nil) -> [TranslationOutput] {
        finish(cause: cause, side: .upstream) { $0.frame(text, from: .upstream) }
    }

    @_specialize(where Rules == ForwardRules)
    @_specialize(where Rules == ReverseRules)
    @_specialize(where Rules == SameRules)
    public mutating func tick() -> [TranslationOutput] {
        finish(cause: nil) { engine in
            let now = engine.io.uptime()
            let timeout = engine.io.callTimeout
            if let (id, call) = engine.io.upstream.expired(at: now, after: timeout) {
                engine.upstreamFailed(call, id: id, .timedOut(timeout))
                engine.io.pumpUpstream()
            }
            if let (id, call) = engine.io.charger.expired(at: now, after: timeout) {
                engine.chargerFailed(call, id: id, .timedOut(timeout))
                engine.io.pumpCharger()
            }
            engine.rules.tick(&engine.io)
        }
    }

    @_specialize(where Rules == ForwardRules)
    @_specialize(where Rules == ReverseRules)
    @_specialize(where Rules == SameRules)
    public mutating func stored(_ write: Int) -> [HeldOutputs] {
        ordering.stored(write)
    }

    @_specialize(where Rules == ForwardRules)
    @_specialize(where Rules == ReverseRules)
    @_specialize(where Rules == SameRules)
    public mutating func chargerLeft() -> [TranslationOutput] {
        finish(cause: nil) { engine in
            guard !engine.io.chargerGone else { return }
            engine.io.chargerGone = true
            for (id, call) in engine.io.charger.removeAll() {
                engine.chargerFailed(call, id: id, .peerLeft)
            }
            engine.rules.chargerLeft(&engine.io)
        }
    }

    /// Runs an event and returns what may go now: a state to store first when the event changed it, and the
    /// frames only when no write is pending (otherwise they wait for ``stored(_:)``).
    private mutating func finish(
        cause: UInt64?,
        side: Side? = nil,
        _ event: (inout Self) -> Void
    ) -> [TranslationOutput] {
        io.eventSide = side
        event(&self)
        var outputs = io.take()
        let stepChanged = io.step?.takeChange() ?? false
        if rules.takeStateChange() != .none || stepChanged {
            let number = ordering.issue()
            ordering.hold(outputs, cause: cause)
            return [.persist(state, write: number)]
        }
        if ordering.isHolding {
            ordering.hold(outputs, cause: cause)
            outputs = []
        }
        return outputs
    }

    // MARK: Frames

    private mutating func frame(_ text: String, from side: Side) {
        if side == .charger {
            var text = text
            guard !text.withUTF8({ rules.lightFromCharger($0, &io) }) else { return }
        }
        let version = io.version(side)
        let frame: RPCFrame
        do {
            frame = try RPCFrame.parse(text)
        } catch {
            if version == .v21, error.code == .unknownMessageType {
                // OCPP-J 2.1: a frame of a type the receiver does not know is ignored.
                return io.note(.malformed, "?", "from \(side): \(error.message); ignored, as OCPP 2.1 says")
            }
            io.note(.malformed, "?", "from \(side): \(error.message)")
            if let id = error.messageID { io.refuse(to: side, id, error.rpcErrorCode(for: version), error.message) }
            return
        }
        switch frame {
        case .call(let call):
            self.call(call, from: side)
        case .callResult(let result):
            answered(result.messageID, .success(result.payload), from: side)
        case .callError(let error):
            answered(error.messageID, .failure(.error(error)), from: side)
        case .send(let send) where version == .v21:
            let older = "OCPP \(Rules.version(side.other).shortName)"
            io.note(.send, send.action, "a SEND from \(side); \(older) has no SEND: recorded, not forwarded")
        case .callResultError(let error) where version == .v21:
            io.note(
                .refusedAnswer,
                "?",
                "\(side) says the relay's answer to \(error.messageID) was wrong: \(error.errorCode) "
                    + error.errorDescription
            )
        case .send, .callResultError:
            io.note(.malformed, "?", "an OCPP 2.1 message type from \(side) (OCPP \(version.shortName)) is ignored")
        }
    }

    /// A CALL: the tables' verdict, the schema's judgement, then the rules.
    private mutating func call(_ call: RPCFrame.Call, from side: Side) {
        if side == .upstream && io.chargerGone {
            io.refuse(to: side, call.messageID, .genericError, "the charger is not connected")
            return io.note(.untranslatable, call.action, "refused: the charger has disconnected")
        }
        if let refusal = rules.refusal(of: call, from: side) {
            return io.refuse(to: side, call.messageID, refusal.code, refusal.description)
        }
        let facts = SchemaFacts.of(io.version(side))
        let other = "OCPP \(io.version(side.other).shortName)"
        // A message only OCPP 2.1 has, from the 2.1 peer, gets the step table's verdict; any other the pair's.
        let only21 = io.step?.side == side && SchemaFacts.ocpp201.request(call.action) == nil
        let entry =
            only21 ? io.step?.table.only21(call.action, from: side) : rules.mapping(for: call.action, from: side)
        let file = only21 ? StepTable.fileName : Rules.table.fileName
        guard let mapping = entry else {
            // Known to the sender's version and not translated: NotSupported; not an action of it at all:
            // NotImplemented.
            let known = facts.request(call.action) != nil
            let code: RPCErrorCode = known ? .notSupported : .notImplemented
            io.refuse(to: side, call.messageID, code, "\(call.action) has no \(other) translation")
            return io.note(.untranslatable, call.action, "no mapping in \(file)")
        }
        if let code = mapping.error {
            let spelled = RPCErrorCode.respell(code, for: io.version(side))
            let why = only21 ? "has no \(other) translation" : "is not supported through the relay"
            io.refuse(to: side, call.messageID, spelled, "\(call.action) \(why)")
            return io.note(.untranslatable, call.action, "refused by \(file) with \(code)")
        }
        if let answer = mapping.answer {
            io.reply(to: side, call.messageID, answer)
            return io.note(.lossy, call.action, "answered by the relay; \(other) has no such message")
        }
        guard var judged = judge(call, facts, from: side) else { return }
        do throws(Untranslatable) {
            if var step = io.step, step.side == side {
                defer { io.step = step }
                judged.payload = try step.lower(judged.payload, action: call.action, response: false, &io)
            }
            if let transform = mapping.transform {
                try rules.translate(judged, transform, mapping, &io)
            } else {
                try rules.translateByFieldRules(judged, mapping, from: side, &io)
            }
        } catch {
            io.refuse(to: side, call.messageID, error.code, error.message)
            io.note(.untranslatable, call.action, error.message)
        }
    }

    /// The CALL as it may be translated: unchanged when its version's schema takes it, mended when what breaks the
    /// schema reads one way only; `nil` when it was refused with the CALLERROR OCPP prescribes for the fault.
    /// Members a closed object does not take and malformed timestamps are noted, not refused: the translation
    /// leaves out what it does not know, and copies timestamps as they came.
    private mutating func judge(_ call: RPCFrame.Call, _ facts: SchemaFacts, from side: Side) -> RPCFrame.Call? {
        guard let schema = facts.request(call.action) else { return call }
        var violations = schema.violations(in: call.payload)
        guard !violations.isEmpty else { return call }
        var call = call
        // Mended only when that leaves nothing to refuse; otherwise the fault as it came is refused.
        if let fault = violations.first(where: \.refuses) {
            guard let (mended, fixes) = schema.normalised(call.payload),
                case let left = schema.violations(in: mended), !left.contains(where: \.refuses)
            else {
                io.refuse(to: side, call.messageID, fault.callErrorCode, "\(fault)")
                io.note(.invalid, call.action, "refused: \(fault)")
                return nil
            }
            call.payload = mended
            let read = fixes.map { "\($0.path.isEmpty ? "the payload" : $0.path) read as \($0.rule.expectedKind)" }
            io.note(.normalised, call.action, read.joined(separator: ", "))
            violations = left
        }
        for violation in violations {
            io.note(.invalid, call.action, "\(violation) (translated anyway)")
        }
        return call
    }

    // MARK: Answers

    private mutating func answered(_ id: String, _ outcome: Result<JSONValue, CallFailure>, from side: Side) {
        switch side {
        case .upstream:
            guard let call = io.upstream.answered(id) else {
                return io.note(.malformed, "?", "the backend answered unknown message id \(id)")
            }
            switch lowered(outcome, call.action, from: side) {
            case .success(let payload): rules.upstreamResult(call, payload, &io)
            case .failure(let failure): upstreamFailed(call, id: id, failure)
            }
            io.pumpUpstream()
        case .charger:
            guard let call = io.charger.answered(id) else {
                return io.note(.malformed, "?", "the charger answered unknown message id \(id)")
            }
            switch lowered(outcome, call.action, from: side) {
            case .success(let payload): rules.chargerResult(call, payload, &io)
            case .failure(let failure): chargerFailed(call, id: id, failure)
            }
            io.pumpCharger()
        }
    }

    /// An answer from the 2.1 peer as the rules' 2.0.1 takes it; one that cannot cross fails its CALL.
    private mutating func lowered(
        _ outcome: Result<JSONValue, CallFailure>,
        _ action: String,
        from side: Side
    ) -> Result<JSONValue, CallFailure> {
        guard case .success(let payload) = outcome, var step = io.step, step.side == side else { return outcome }
        defer { io.step = step }
        do throws(Untranslatable) {
            return .success(try step.lower(payload, action: action, response: true, &io))
        } catch {
            return .failure(.untranslatable(error.message))
        }
    }

    private mutating func upstreamFailed(_ call: SentCall<Rules.UpstreamContext>, id: String, _ failure: CallFailure) {
        guard !rules.upstreamFailed(call, id: id, failure, &io) else { return }
        failed(call.action, call.caller, failure, from: .upstream)
    }

    private mutating func chargerFailed(_ call: SentCall<Rules.ChargerContext>, id: String, _ failure: CallFailure) {
        guard !rules.chargerFailed(call, id: id, failure, &io) else { return }
        failed(call.action, call.caller, failure, from: .charger)
    }

    /// What a failed CALL means when the rules leave it to the engine: its caller gets the CALLERROR (the peer's
    /// code in the caller's spelling, InternalError when there was no answer), and it is noted.
    private mutating func failed(_ action: String, _ caller: Caller?, _ failure: CallFailure, from side: Side) {
        let text = failure.text(side)
        guard let caller else {
            return io.note(.untranslatable, action, "the relay's \(action): \(text)")
        }
        io.note(.untranslatable, caller.action, text)
        switch failure {
        case .error(let error):
            let code = RPCErrorCode.respell(error.errorCode, for: Rules.version(side.other))
            io.refuse(to: side.other, caller.messageID, code, error.errorDescription)
        case .timedOut, .peerLeft, .untranslatable:
            io.refuse(to: side.other, caller.messageID, .internalError, text)
        }
    }
}

extension SchemaViolation {
    /// Whether a translated route refuses a CALL for this: everything but members the schema does not know (the
    /// translation leaves them out) and a timestamp's format (copied as it came).
    var refuses: Bool {
        switch rule {
        case .additionalProperty, .format: false
        default: true
        }
    }
}

extension SchemaViolation.Rule {
    /// What a mended value was read as.
    var expectedKind: String {
        if case .type(let expected, _) = self { return expected.rawValue }
        return "?"
    }
}

/// The order of frames behind state writes: an event that changed the state has its state written first, and its
/// frames, and every later event's, wait until that write is stored, so that nothing goes out before what it
/// depends on is on disk. Writes complete in the order they were issued.
struct WriteOrdering: Sendable {
    private(set) var issued = 0
    private(set) var done = 0
    private var held: [HeldOutputs] = []

    /// Whether frames wait for a write.
    var isHolding: Bool { !held.isEmpty || done < issued }

    mutating func issue() -> Int {
        issued += 1
        return issued
    }

    /// Keeps an event's outputs until the last write issued is stored.
    mutating func hold(_ outputs: [TranslationOutput], cause: UInt64?) {
        held.append(HeldOutputs(cause: cause, outputs: outputs, write: issued))
    }

    /// Write `write` is done: the outputs that waited for it (and for nothing later), in order.
    mutating func stored(_ write: Int) -> [HeldOutputs] {
        done = max(done, write)
        var released: [HeldOutputs] = []
        while let first = held.first, first.write <= done {
            released.append(held.removeFirst())
        }
        return released
    }
}
