import OCPP
import OCPPSchema

/// The side of a translated connection a frame comes from or goes to.
public enum Side: Sendable, Hashable, CustomStringConvertible {
    case charger
    case upstream

    /// The other side: where a CALL from this one is translated to.
    public var other: Side { self == .charger ? .upstream : .charger }

    /// The peer on this side, for messages.
    public var description: String { self == .charger ? "the charger" : "the backend" }
}

/// The CALL of one side that a CALL the relay sends to the other translates: the answer goes back to it.
struct Caller: Sendable, Hashable {
    var messageID: String
    var action: String

    init(messageID: String, action: String) {
        self.messageID = messageID
        self.action = action
    }

    init(_ call: RPCFrame.Call) {
        self.init(messageID: call.messageID, action: call.action)
    }
}

/// A CALL the relay sends to one side: what it says, whose CALL it translates (if any), and what the rules need
/// to make sense of its answer.
///
/// A class: it moves through a call lane (queued, sent, answered) as one reference rather than as copies of its
/// members (measured on the frame path). Confined to its engine.
final class SentCall<Context: Sendable>: @unchecked Sendable {
    /// Its message id.
    let id: String
    let action: String
    /// The payload; a value learnt while the call waits may still go in (``CallLane/updateWaiting(_:)``). A payload
    /// the light path wrote as text (``text``) is read into a tree only when asked for.
    var payload: JSONValue {
        get { tree ?? text.flatMap { try? JSONParser.parse($0.utf8) } ?? .object([]) }
        set {
            tree = newValue
            text = nil
        }
    }
    /// The payload as compact JSON text, when the light path wrote it so; `nil` when it is ``payload``'s tree.
    private(set) var text: String?
    private var tree: JSONValue?
    /// The other side's CALL this one translates: its answer becomes that one's. `nil` for the relay's own calls.
    let caller: Caller?
    let context: Context

    init(id: String, action: String, payload: JSONValue, caller: Caller?, context: Context) {
        self.id = id
        self.action = action
        self.tree = payload
        self.caller = caller
        self.context = context
    }

    /// A CALL whose payload is compact JSON text already (the light path's).
    init(id: String, action: String, text: String, caller: Caller?, context: Context) {
        self.id = id
        self.action = action
        self.text = text
        self.caller = caller
        self.context = context
    }
}

/// Why a CALL the relay sent got no result.
enum CallFailure: Error, Sendable {
    /// The peer answered with a CALLERROR.
    case error(RPCFrame.CallError)
    /// No answer within the call timeout.
    case timedOut(Duration)
    /// The peer's connection went before it answered.
    case peerLeft
    /// The answer cannot cross to the rules' version (the OCPP 2.1 step).
    case untranslatable(String)

    /// What happened, for messages: "the backend answered NotSupported: …".
    func text(_ side: Side) -> String {
        switch self {
        case .error(let error): "\(side) answered \(error.errorCode): \(error.errorDescription)"
        case .timedOut(let timeout): "\(side) did not answer within \(timeout.components.seconds) s"
        case .peerLeft: "\(side) disconnected before answering"
        case .untranslatable(let why): "\(side)'s answer could not be translated: \(why)"
        }
    }
}

/// What one pair of OCPP versions contributes to the ``TranslationEngine``: its tables, its typed transforms and its
/// part of the charger's state. The engine owns everything the pairs share (frames, the tables' verdict on a call,
/// the judgement of a call against its version's schema, one call lane per direction with its timeouts, the order
/// of frames behind state writes, the drain of what the relay owes a backend, the notes), so a pair answers only
/// "what does this message become" and "what does this answer mean".
///
/// The rules' methods get the engine's ``Effects`` to send, answer and note through; they own ``state`` and tell the
/// engine after each event whether it must be stored (``takeStateChange()``).
protocol TranslationRules: Sendable {
    /// What the rules keep of a charger across connections and restarts (part of ``ChargerState``).
    associatedtype State: Codable & Sendable & Equatable
    /// What the answer of a CALL sent to the backend is for, and of one sent to the charger.
    associatedtype UpstreamContext: Sendable
    associatedtype ChargerContext: Sendable

    /// The message table of the pair (its file, the chargers' version and the backends').
    static var table: MessageTable { get }
    /// Where ``state`` lives in the stored ``ChargerState``.
    static var stateKey: WritableKeyPath<ChargerState, State> { get }

    var state: State { get set }
    /// The tables, options and clock the rules were made with.
    var setup: RuleSetup { get }

    /// The table's entry for a CALL from `side` (the pair's message table; ``mapping(for:from:)`` below).
    func mapping(for action: String, from side: Side) -> ActionMapping?

    /// A refusal that applies before any table (a 2.0.1 backend takes nothing before it accepted the boot).
    func refusal(of call: RPCFrame.Call, from side: Side) -> (code: RPCErrorCode, description: String)?

    /// Translates a charger's frame from its bytes, without trees, when it is one the rules' light path takes;
    /// `false` (nothing done) sends it the tree path.
    mutating func lightFromCharger(_ frame: UnsafeBufferPointer<UInt8>, _ io: inout Effects<Self>) -> Bool

    /// Translates a CALL whose table entry names `transform` (the engine translates one without by its field
    /// rules, ``translateByFieldRules(_:_:from:_:)``). Throws what makes it untranslatable: the sender is refused
    /// with the error's CALLERROR.
    mutating func translate(
        _ call: RPCFrame.Call,
        _ transform: Transform,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable)

    /// The backend answered a CALL the relay sent it.
    mutating func upstreamResult(_ call: SentCall<UpstreamContext>, _ payload: JSONValue, _ io: inout Effects<Self>)
    /// The charger answered a CALL the relay sent it.
    mutating func chargerResult(_ call: SentCall<ChargerContext>, _ payload: JSONValue, _ io: inout Effects<Self>)

    /// What the answer of a CALL translated by an entry's field rules is for, on each side.
    static func byFieldRules(_ mapping: ActionMapping) -> UpstreamContext
    static func byFieldRules(_ mapping: ActionMapping) -> ChargerContext

    /// A CALL to the backend failed. Return `false` to leave it to the engine: the caller (if any) gets the
    /// CALLERROR, and the failure is noted.
    mutating func upstreamFailed(
        _ call: SentCall<UpstreamContext>,
        id: String,
        _ failure: CallFailure,
        _ io: inout Effects<Self>
    ) -> Bool
    /// A CALL to the charger failed; as ``upstreamFailed(_:id:_:_:)``.
    mutating func chargerFailed(
        _ call: SentCall<ChargerContext>,
        id: String,
        _ failure: CallFailure,
        _ io: inout Effects<Self>
    ) -> Bool

    /// Both legs are open: what an earlier connection left to send goes out.
    mutating func started(_ io: inout Effects<Self>)
    /// Time passed (about once a second while ``waitsForTime``).
    mutating func tick(_ io: inout Effects<Self>)
    /// Whether the rules wait for time to pass (an answer held for a verdict, a reservation's expiry).
    var waitsForTime: Bool { get }
    /// The charger is gone: anything held for it is dropped.
    mutating func chargerLeft(_ io: inout Effects<Self>)
    /// Whether the event just handled changed ``state`` in a way that must be stored before anything it produced
    /// goes out; the rules forget the change once asked.
    mutating func takeStateChange() -> StateChange
}

/// How an event changed the rules' state.
enum StateChange: Sendable, Equatable {
    case none
    /// Nothing durable changed, but the state must be written for a reservation it holds (a block of seqNos).
    case reservation
    /// The state changed: it is stored before anything of the event goes out.
    case durable
}

extension TranslationRules {
    func refusal(of call: RPCFrame.Call, from side: Side) -> (code: RPCErrorCode, description: String)? {
        nil
    }

    mutating func lightFromCharger(_ frame: UnsafeBufferPointer<UInt8>, _ io: inout Effects<Self>) -> Bool {
        false
    }

    mutating func upstreamFailed(
        _ call: SentCall<UpstreamContext>,
        id: String,
        _ failure: CallFailure,
        _ io: inout Effects<Self>
    ) -> Bool { false }

    mutating func chargerFailed(
        _ call: SentCall<ChargerContext>,
        id: String,
        _ failure: CallFailure,
        _ io: inout Effects<Self>
    ) -> Bool { false }

    mutating func started(_ io: inout Effects<Self>) {}
    mutating func tick(_ io: inout Effects<Self>) {}
    var waitsForTime: Bool { false }
    mutating func chargerLeft(_ io: inout Effects<Self>) {}

    var tables: MappingTables { setup.tables }
    var options: TranslationOptions { setup.options }
    var clock: TranslationClock { setup.clock }
    /// The current time as RFC 3339.
    func now() -> String { clock.now() }
    /// A new unique id.
    func makeID() -> String { clock.makeID() }

    static var chargerVersion: OCPPVersion { table.chargerVersion }
    static var upstreamVersion: OCPPVersion { table.upstreamVersion }

    /// The version of a side.
    static func version(_ side: Side) -> OCPPVersion { side == .charger ? chargerVersion : upstreamVersion }

    /// The table's entry for a CALL from `side`.
    func mapping(for action: String, from side: Side) -> ActionMapping? {
        switch (Self.table, side) {
        case (.forward, .charger): tables.charger[action]
        case (.forward, .upstream): tables.backend[action]
        case (.reverse, .charger): tables.reverseCharger[action]
        case (.reverse, .upstream): tables.reverseBackend[action]
        case (.same, _): nil
        }
    }
}

extension TranslationRules {
    /// Translates a CALL by its table entry's field rules: its payload mapped field by field and sent to the other
    /// side as the entry's action; the answer comes back through ``answerByFieldRules(_:_:to:on:_:)``.
    mutating func translateByFieldRules(
        _ call: RPCFrame.Call,
        _ mapping: ActionMapping,
        from side: Side,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let payload = try tables.apply(mapping.request ?? [], to: call.payload, action: call.action, &io)
        let action = mapping.action ?? call.action
        if side == .charger {
            io.sendUpstream(action, payload, answering: Caller(call), Self.byFieldRules(mapping))
        } else {
            io.sendCharger(action, payload, answering: Caller(call), Self.byFieldRules(mapping))
        }
    }

    /// A DataTransfer from `side`: the 2.0.1 Plug & Charge message it carries, or `nil` once it was translated as any
    /// other DataTransfer, by its entry's field rules.
    mutating func plugAndChargeMessage(
        in call: RPCFrame.Call,
        _ mapping: ActionMapping,
        from side: Side,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) -> (action: String, payload: JSONValue)? {
        let messages = side == .charger ? PlugAndCharge.chargerMessages : PlugAndCharge.backendMessages
        if let carried = try PlugAndCharge.unwrap(call.payload, messages: messages) { return carried }
        try translateByFieldRules(call, mapping, from: side, &io)
        return nil
    }

    /// The answer to a CALL translated by field rules, mapped back by the entry's response rules for its caller on
    /// `side`; an answer the rules cannot map gets the caller an InternalError.
    func answerByFieldRules(
        _ mapping: ActionMapping,
        _ payload: JSONValue,
        to caller: Caller,
        on side: Side,
        _ io: inout Effects<Self>
    ) {
        do throws(Untranslatable) {
            let answer = try tables.apply(mapping.response ?? [], to: payload, action: caller.action, &io)
            io.reply(to: side, caller.messageID, answer)
        } catch {
            let why = "\(side.other)'s answer could not be translated: \(error.message)"
            io.refuse(to: side, caller.messageID, .internalError, why)
            io.note(.untranslatable, caller.action, error.message)
        }
    }
}

/// What a rule set is made with: the tables it translates by, what the peers implement, where it reads the time.
struct RuleSetup: Sendable {
    let tables: MappingTables
    let options: TranslationOptions
    let clock: TranslationClock
}

extension TranslationRules {
    /// The charger's CALL in `frame` when a light path may take it: the action at `action` in
    /// ``OCPP/OCPPAction/all``, its table entry the stock `transform` (no refusal, no answer of the relay's), no OCPP
    /// 2.1 step, and a frame that keeps its schema with plain strings (``OCPPSchema/SchemaFacts/conformingCall(_:)``).
    /// `nil` for any other: the tree path's.
    func lightCall(
        _ frame: UnsafeBufferPointer<UInt8>,
        _ action: Int?,
        _ transform: Transform,
        _ io: Effects<Self>
    ) -> ConformingCall? {
        guard setup.options.lightPath, io.step == nil, let action,
            let header = RPCFrameHeader.scan(UnsafeRawBufferPointer(frame)), header.messageType == 2,
            header.action == action,
            let mapping = mapping(for: OCPPAction.all[action], from: .charger), mapping.transform == transform,
            mapping.error == nil, mapping.answer == nil
        else { return nil }
        return SchemaFacts.of(Self.version(.charger)).conformingCall(frame)
    }
}
