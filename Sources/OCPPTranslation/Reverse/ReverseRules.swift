import OCPP

/// The rules of a 2.0.1 charger on a 1.6 backend (``MessageTable/reverse``, `messages-201-on-16.yaml`,
/// `ocpp-mapping.md` §6): the relay is the charger's CSMS and the backend's charge point.
///
/// What must survive the connection (transactions and the backend's integer ids, the 1.6 CALLs of transactions
/// answered before the backend had them, minted remoteStartIds and requestIds, aliases of long tokens, connector
/// statuses) is ``ReverseState``: a TransactionEvent the relay answers before the backend answered what it became
/// is in the persisted outbox first, and a relay killed mid-transaction resumes that outbox on the next connection
/// with the same message ids. Events of a transaction whose StartTransaction the backend answered go in step with
/// the backend: the charger's answer waits for the backend's, and the charger keeps the event meanwhile.
struct ReverseRules: TranslationRules {
    typealias State = ReverseState
    typealias ChargerContext = BackendRequest

    static let table = MessageTable.reverse
    static var stateKey: WritableKeyPath<ChargerState, ReverseState> { \.reverse }

    let setup: RuleSetup
    /// How long a TransactionEvent's answer may wait for StartTransaction.conf (below the charger's timeout; at
    /// most half the call timeout, so that the charger is answered before the relay gives up on the call).
    let holdTimeout: Duration
    var state = ReverseState()
    private var changed = false
    /// The answer to the TransactionEvent that opened a 1.6 transaction, held until StartTransaction.conf tells
    /// whether the token was accepted.
    var held: (messageID: String, transaction: String, since: Duration)?
    /// How often each transaction CALL went unanswered (it is sent again, with the same id, a few times).
    var attempts: [String: Int] = [:]

    /// How many times a transaction's CALL is sent before the relay gives up on it.
    static let transactionAttempts = 3

    init(setup: RuleSetup, holdTimeout: Duration = .seconds(10)) {
        self.setup = setup
        self.holdTimeout = holdTimeout
    }

    /// The transforms the table names, for the charger's messages and the backend's.
    /// The light path takes a TransactionEvent Updated with meter values (``lightTransactionEvent(_:_:)``).
    mutating func lightFromCharger(_ frame: UnsafeBufferPointer<UInt8>, _ io: inout Effects<Self>) -> Bool {
        lightTransactionEvent(frame, &io)
    }

    mutating func translate(
        _ call: RPCFrame.Call,
        _ transform: Transform,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        switch transform {
        case .reverseCharger(.bootNotification): try bootNotification(call, &io)
        case .reverseCharger(.statusNotification): statusNotification(call, &io)
        case .reverseCharger(.authorize): try authorize(call, &io)
        case .reverseCharger(.transactionEvent): try transactionEvent(call, &io)
        case .reverseCharger(.meterValues): try meterValues(call, &io)
        case .reverseCharger(.logStatusNotification): logStatus(call, &io)
        case .reverseCharger(.firmwareStatusNotification): firmwareStatus(call, &io)
        case .reverseCharger(.notifyEvent): notifyEvent(call, &io)
        case .reverseCharger(.securityEventNotification): try securityEvent(call, mapping, &io)
        case .reverseCharger(.signCertificate): try signCertificate(call, mapping, &io)
        case .reverseCharger(.plugAndCharge): plugAndCharge(call, &io)
        case .reverseBackend(.remoteStartTransaction): try remoteStart(call, &io)
        case .reverseBackend(.remoteStopTransaction): remoteStop(call, &io)
        case .reverseBackend(.reset): reset(call, &io)
        case .reverseBackend(.changeAvailability): changeAvailability(call, &io)
        case .reverseBackend(.unlockConnector): unlockConnector(call, &io)
        case .reverseBackend(.triggerMessage): triggerMessage(call, &io)
        case .reverseBackend(.getConfiguration): getConfiguration(call, &io)
        case .reverseBackend(.changeConfiguration): changeConfiguration(call, &io)
        case .reverseBackend(.setChargingProfile): try setChargingProfile(call, &io)
        case .reverseBackend(.clearChargingProfile): clearChargingProfile(call, &io)
        case .reverseBackend(.getCompositeSchedule): getCompositeSchedule(call, &io)
        case .reverseBackend(.reserveNow): reserveNow(call, &io)
        case .reverseBackend(.sendLocalList): sendLocalList(call, &io)
        case .reverseBackend(.getDiagnostics): getDiagnostics(call, &io)
        case .reverseBackend(.updateFirmware): updateFirmware(call, &io)
        case .reverseBackend(.getInstalledCertificateIds): try getInstalledCertificateIds(call, &io)
        case .reverseBackend(.extendedTriggerMessage): try extendedTriggerMessage(call, &io)
        case .reverseBackend(.getLog): try securityGetLog(call, &io)
        case .reverseBackend(.signedUpdateFirmware): try signedUpdateFirmware(call, &io)
        case .reverseBackend(.dataTransfer): try backendDataTransfer(call, mapping, &io)
        case .charger, .backend, .same:
            throw Untranslatable(message: "\(transform) is not a transform of \(Self.table.fileName)")
        }
    }

    static func byFieldRules(_ mapping: ActionMapping) -> UpstreamContext { .generic(mapping) }
    static func byFieldRules(_ mapping: ActionMapping) -> ChargerContext { .generic(mapping) }

    /// What an earlier connection left in the outbox goes first, with its message ids.
    mutating func started(_ io: inout Effects<Self>) {
        guard !state.outbox.isEmpty else { return }
        for message in state.outbox {
            var payload = message.payload
            if let transaction = message.transaction, message.action != "StartTransaction",
                let number = state.transactions.last(where: { $0.id == transaction })?.number
            {
                payload.set("transactionId", .int(number))
            }
            io.sendUpstream(message.action, payload, .transaction(message.transaction), messageID: message.messageID)
        }
        io.note(
            .lossy,
            "StartTransaction",
            "\(state.outbox.count) transaction message(s) of an earlier connection sent again with their ids"
        )
    }

    /// The charger must not time out waiting for StartTransaction.conf: it is answered without the token's
    /// verdict, which a late rejection then enforces with RequestStopTransaction.
    mutating func tick(_ io: inout Effects<Self>) {
        guard let held, io.uptime() - held.since >= min(holdTimeout, io.callTimeout / 2) else { return }
        self.held = nil
        io.reply(to: .charger, held.messageID, .object([]))
        io.note(.lossy, "TransactionEvent", "StartTransaction.conf is late; the charger was answered without it")
    }

    var waitsForTime: Bool { held != nil }

    mutating func chargerLeft(_ io: inout Effects<Self>) {
        held = nil
    }

    mutating func takeStateChange() -> StateChange {
        defer { changed = false }
        return changed ? .durable : .none
    }

    mutating func markChanged() {
        changed = true
    }

    // MARK: Sending

    /// Queues a 1.6 CALL for the backend; a transaction's message the charger was already answered for goes into
    /// the persisted outbox too.
    mutating func sendUpstream(
        _ action: String,
        _ payload: JSONValue,
        answering caller: Caller? = nil,
        _ context: UpstreamContext,
        _ io: inout Effects<Self>
    ) {
        let id = io.makeID()
        if case .transaction(let transaction) = context {
            state.outbox.append(.init(messageID: id, action: action, payload: payload, transaction: transaction))
            markChanged()
        }
        io.sendUpstream(action, payload, answering: caller, context, messageID: id)
    }

    /// The backend's id is known: the transaction's messages waiting for it carry it (here and in the outbox).
    mutating func numberKnown(_ transaction: String, _ number: Int, _ io: inout Effects<Self>) {
        func fill(_ action: String, _ owner: String?, _ payload: inout JSONValue) {
            guard owner == transaction, action != "StartTransaction" else { return }
            payload.set("transactionId", .int(number))
        }
        io.updateWaitingUpstream { call in
            if case .transaction(let owner) = call.context { fill(call.action, owner, &call.payload) }
        }
        for index in state.outbox.indices {
            fill(state.outbox[index].action, state.outbox[index].transaction, &state.outbox[index].payload)
        }
    }

    // MARK: Failures

    /// A CALL to the backend failed. A transaction's message is sent again (first, with its id: 1.6 delivers a
    /// transaction's messages in order) a few times; an event in step is answered on a refusal (without an answer
    /// the charger's own timeout makes it send again); a contract Authorize the backend did not take wrapped goes
    /// plain; a Plug & Charge message gets its own refusal. The engine handles the others.
    mutating func upstreamFailed(
        _ call: SentCall<UpstreamContext>,
        id: String,
        _ failure: CallFailure,
        _ io: inout Effects<Self>
    ) -> Bool {
        let why = failure.text(.upstream)
        switch (call.context, call.caller, failure) {
        case (.inStep, let caller?, _):
            io.note(.untranslatable, caller.action, why)
            if case .error = failure { io.reply(to: .charger, caller.messageID, .object([])) }
        case (.plugAndCharge(let fallback?), let caller?, .error):
            plainAuthorize(caller.messageID, fallback, because: why, &io)
        case (.plugAndCharge, let caller?, _):
            io.note(.untranslatable, caller.action, why)
            io.reply(to: .charger, caller.messageID, Refusal.answer(caller.action, .init(message: why)))
        case (.transaction(let transaction), _, _):
            let tries = attempts[id, default: 0] + 1
            attempts[id] = tries
            if tries < Self.transactionAttempts {
                io.sendUpstream(call.action, call.payload, call.context, messageID: id, first: true)
                io.note(.untranslatable, call.action, "\(why); sending it again (attempt \(tries + 1))")
                return true
            }
            delivered(id)
            io.note(.untranslatable, call.action, "\(why); given up after \(tries) attempts")
            if call.action == "StartTransaction", let transaction { transactionStartFailed(transaction, &io) }
        default:
            return false
        }
        return true
    }

    /// A CALLERROR of the charger to a SetChargingProfile: 1.6 answers NotSupported; the engine passes any other
    /// on.
    mutating func chargerFailed(
        _ call: SentCall<ChargerContext>,
        id: String,
        _ failure: CallFailure,
        _ io: inout Effects<Self>
    ) -> Bool {
        guard case .setChargingProfile = call.context, case .error(let error) = failure, let caller = call.caller
        else { return false }
        io.reply(to: .upstream, caller.messageID, .object([(key: "status", value: .string("NotSupported"))]))
        io.note(.untranslatable, caller.action, "the charger answered \(error.errorCode): \(error.errorDescription)")
        return true
    }

    /// A transaction CALL is answered (or given up): it leaves the outbox.
    mutating func delivered(_ id: String) {
        attempts[id] = nil
        guard state.outbox.contains(where: { $0.messageID == id }) else { return }
        state.outbox.removeAll { $0.messageID == id }
        markChanged()
    }
}

extension ReverseRules {
    /// What a CALL the relay sends the 1.6 backend is for.
    enum UpstreamContext: Sendable {
        /// Translates a charger CALL by the table's field rules.
        case generic(ActionMapping)
        case boot
        case authorize
        /// An answer without fields (`{}`).
        case empty
        /// The answer (`{}`) to a message of an open transaction (a TransactionEvent, clock-aligned MeterValues),
        /// sent once the backend has its 1.6 counterpart: the charger keeps the message until then, so nothing
        /// needs the relay's disk. Never a CALLERROR (a charger drops a TransactionEvent after its retries).
        case inStep
        /// A 2.0.1 message sent wrapped in a Plug & Charge DataTransfer: the answer is unwrapped. A contract
        /// Authorize carries its plain 1.6 form, sent instead when the backend does not take the wrapped one.
        case plugAndCharge(fallback: JSONValue?)
        /// A transaction's message (StartTransaction, MeterValues, StopTransaction) whose charger event was answered
        /// already: in the persisted outbox, its `transactionId` filled in once known. The 2.0.1 transaction it
        /// belongs to, if any.
        case transaction(String?)
        /// The relay's own (a synthesised StatusNotification, a triggered BootNotification): the result is consumed.
        case relay
    }
}

/// What the translation of a 1.6 backend's CALL to a 2.0.1 charger must remember to translate the charger's
/// result.
enum BackendRequest: Sendable {
    case generic(ActionMapping)
    /// `{status}` answers, mapped through this enum map (identical when `nil`).
    case status(EnumMapName?)
    case remoteStart(ReverseState.RemoteStart)
    case getConfiguration(ConfigurationRead)
    /// With the charger's new password, when the key is its AuthorizationKey.
    case changeConfiguration(password: String?)
    case setChargingProfile
    case compositeSchedule(connectorId: Int)
    case getDiagnostics
    case updateFirmware
    /// A Whitepaper GetInstalledCertificateIds: the 2.0.1 chain becomes a list of hashes.
    case installedCertificates
    /// A Whitepaper GetLog: status and filename.
    case logAnswer
    /// A 2.0.1 message unwrapped from the backend's Plug & Charge DataTransfer: the answer goes back wrapped.
    case plugAndCharge
    /// The relay's own (RequestStopTransaction after a late rejection).
    case relay
}

/// A GetConfiguration in progress: which keys went to the charger as which variables, and what the relay
/// answers itself.
struct ConfigurationRead: Sendable {
    var asked: [ConfigurationKeyMapping]
    var unknown: [String]
    var known: [JSONValue]
}
