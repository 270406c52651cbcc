import OCPP
import OCPPSchema

/// The rules of 2.0.1 on 2.0.1, beside the OCPP 2.1 step (``VersionStep``): a 2.1 charger on a 2.0.1 backend, or a
/// 2.0.1 charger on a 2.1 backend. Every message 2.0.1 has crosses as itself, its answer back the same way; what
/// 2.1 changes is the step's work, and what 2.1 alone has is the step table's (``StepTable``).
struct SameRules: TranslationRules {
    typealias State = NoState
    typealias UpstreamContext = Void
    typealias ChargerContext = Void

    static let table = MessageTable.same
    static var stateKey: WritableKeyPath<ChargerState, NoState> { \.none }

    let setup: RuleSetup
    var state = NoState()

    /// Every 2.0.1 message, as itself.
    private static let crossing = ActionMapping(transform: .same, lossy: [])

    init(setup: RuleSetup) {
        self.setup = setup
    }

    func mapping(for action: String, from side: Side) -> ActionMapping? {
        SchemaFacts.ocpp201.request(action) == nil ? nil : Self.crossing
    }

    mutating func translate(
        _ call: RPCFrame.Call,
        _ transform: Transform,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        if io.eventSide == .upstream {
            io.toCharger(call, as: call.action, call.payload, ())
        } else {
            io.forward(call, as: call.action, call.payload, ())
        }
    }

    mutating func upstreamResult(_ call: SentCall<Void>, _ payload: JSONValue, _ io: inout Effects<Self>) {
        if let caller = call.caller { io.reply(to: .charger, caller.messageID, payload) }
    }

    mutating func chargerResult(_ call: SentCall<Void>, _ payload: JSONValue, _ io: inout Effects<Self>) {
        if let caller = call.caller { io.reply(to: .upstream, caller.messageID, payload) }
    }

    static func byFieldRules(_ mapping: ActionMapping) {}

    mutating func takeStateChange() -> StateChange { .none }
}
