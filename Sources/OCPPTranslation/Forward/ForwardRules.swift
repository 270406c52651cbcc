import OCPP

/// The rules of a 1.6 charger on a 2.0.1 backend (``MessageTable/forward``, `messages.yaml`): the charger's 1.6
/// CALLs become 2.0.1 CALLs (StartTransaction, MeterValues and StopTransaction one transaction's TransactionEvents,
/// StatusNotification a StatusNotification or NotifyEvent, …) and the backend's 2.0.1 CALLs 1.6 ones, the answers
/// back the same way, by the tables' field rules or the transforms they name.
///
/// What must survive the connection (transactions and their seqNos, remote starts, request ids, token types, …) is
/// ``ForwardState``. A seqNo taken inside a reserved block is not a durable change: a MeterValues in a transaction
/// costs no write.
struct ForwardRules: TranslationRules {
    typealias State = ForwardState
    typealias ChargerContext = BackendCallContext

    static let table = MessageTable.forward
    static var stateKey: WritableKeyPath<ChargerState, ForwardState> { \.forward }

    let setup: RuleSetup
    var state = ForwardState()
    /// Whether ``state`` changed durably during the event being handled.
    private var changed = false
    /// Whether a transaction took a new block of seqNos during the event being handled.
    var seqNosReserved = false

    init(setup: RuleSetup) {
        self.setup = setup
    }

    /// A 2.0.1 backend takes nothing from a charger before it accepted its BootNotification.
    func refusal(of call: RPCFrame.Call, from side: Side) -> (code: RPCErrorCode, description: String)? {
        guard side == .charger, !state.bootAccepted, call.action != "BootNotification",
            tables.charger[call.action] != nil
        else { return nil }
        return (.securityError, "the backend has not accepted a BootNotification yet")
    }

    /// The light path takes a MeterValues inside a transaction (``lightMeterValues(_:_:)``).
    mutating func lightFromCharger(_ frame: UnsafeBufferPointer<UInt8>, _ io: inout Effects<Self>) -> Bool {
        lightMeterValues(frame, &io)
    }

    /// The transforms the table names, for the charger's messages and the backend's.
    mutating func translate(
        _ call: RPCFrame.Call,
        _ transform: Transform,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        switch transform {
        case .charger(.bootNotification): try bootNotification(call, &io)
        case .charger(.statusNotification): try statusNotification(call, &io)
        case .charger(.authorize): try authorize(call, &io)
        case .charger(.startTransaction): try startTransaction(call, &io)
        case .charger(.stopTransaction): try stopTransaction(call, &io)
        case .charger(.meterValues): try meterValues(call, &io)
        case .charger(.diagnosticsStatusNotification): try diagnosticsStatus(call, &io)
        case .charger(.firmwareStatusNotification): try firmwareStatus(call, &io)
        case .charger(.dataTransfer): try dataTransfer(call, mapping, &io)
        case .backend(.requestStartTransaction): try requestStartTransaction(call, &io)
        case .backend(.requestStopTransaction): try requestStopTransaction(call, &io)
        case .backend(.reset): try reset(call, &io)
        case .backend(.changeAvailability): try changeAvailability(call, &io)
        case .backend(.unlockConnector): try unlockConnector(call, &io)
        case .backend(.triggerMessage): try triggerMessage(call, &io)
        case .backend(.getVariables): getVariables(call, &io)
        case .backend(.setVariables): setVariables(call, &io)
        case .backend(.getBaseReport): try baseReport(call, &io)
        case .backend(.setChargingProfile): try setChargingProfile(call, &io)
        case .backend(.getCompositeSchedule): try getCompositeSchedule(call, &io)
        case .backend(.sendLocalList): try sendLocalList(call, &io)
        case .backend(.getLog): try getLog(call, &io)
        case .backend(.updateFirmware): try updateFirmware(call, &io)
        case .backend(.getTransactionStatus): getTransactionStatus(call, &io)
        case .backend(.clearChargingProfile): try clearChargingProfile(call, &io)
        case .backend(.getChargingProfiles): try getChargingProfiles(call, &io)
        case .backend(.certificateSigned): try certificateSigned(call, &io)
        case .backend(.installCertificate): try installCertificate(call, &io)
        case .backend(.getInstalledCertificateIds): getInstalledCertificateIds(call, &io)
        case .backend(.reserveNow): try reserveNow(call, mapping, &io)
        case .backend(.cancelReservation): try cancelReservation(call, mapping, &io)
        case .reverseCharger, .reverseBackend, .same:
            throw Untranslatable(message: "\(transform) is not a transform of \(Self.table.fileName)")
        }
    }

    static func byFieldRules(_ mapping: ActionMapping) -> UpstreamContext { .generic(mapping) }
    static func byFieldRules(_ mapping: ActionMapping) -> ChargerContext { .generic(mapping) }

    /// A charger's CALLERROR: fan-out jobs turn it into a failed entry, a command the charger does not implement
    /// into the message's own refusal; the engine passes any other on.
    mutating func chargerFailed(
        _ call: SentCall<ChargerContext>,
        id: String,
        _ failure: CallFailure,
        _ io: inout Effects<Self>
    ) -> Bool {
        guard case .error(let error) = failure else { return false }
        return chargerError(call, error, &io)
    }

    /// Reservations whose expiry passed while the charger said nothing.
    mutating func tick(_ io: inout Effects<Self>) {
        expireReservations(&io)
    }

    var waitsForTime: Bool { !state.reservations.isEmpty }

    /// A state written for its own sake is exact (its open transactions resume at their next seqNo after a crash);
    /// one written only for a reservation keeps the block, so the events inside it cost no write.
    mutating func takeStateChange() -> StateChange {
        defer {
            changed = false
            seqNosReserved = false
        }
        guard changed else { return seqNosReserved ? .reservation : .none }
        for index in state.transactions.indices where !state.transactions[index].ended {
            state.transactions[index].seqNoReserved = state.transactions[index].nextSeqNo
        }
        return .durable
    }

    mutating func markChanged() {
        changed = true
    }
}

extension ForwardRules {
    /// What a CALL the relay sent the backend is for.
    enum UpstreamContext: Sendable {
        /// Translates a charger CALL by the table's field rules.
        case generic(ActionMapping)
        case boot
        case authorize
        case startTransaction(transactionID: String)
        case stopTransaction
        /// The charger's answer is `{}`.
        case emptyResult
        /// A Plug & Charge message unwrapped from a DataTransfer: the answer goes back wrapped.
        case plugAndCharge
        /// The relay's own (a TransactionEvent for a status change, a NotifyReport): the result is consumed.
        case relay
        /// The Started event of a transaction whose StartTransaction the relay answered early: the result is the
        /// token's verdict, which a RemoteStopTransaction enforces when it is not Accepted.
        case verdict(transactionID: String)
    }
}

/// What a backend CALL's translation to a 1.6 charger must remember.
enum BackendCallContext: Sendable {
    case generic(ActionMapping)
    case requestStart(remoteStartId: Int)
    case reset
    case getVariables(GetVariablesJob)
    case setVariables(SetVariablesJob)
    case baseReport(requestId: Int)
    case getCompositeSchedule(evseId: Int, duration: Int)
    case setChargingProfile(evseId: Int, profile: JSONValue)
    case clearChargingProfile(request: JSONValue)
    case getLog
    case updateFirmware
    case statusMap(EnumMapName?)
    /// The charger's answer has the 2.0.1 answer's fields (a Security Whitepaper message).
    case passthrough
    /// A message wrapped in a Plug & Charge DataTransfer: the answer is unwrapped.
    case plugAndCharge
    case certificates(CertificateQuery)
    /// ReserveNow or CancelReservation by the table's rules: an accepted change is remembered.
    case reservation(ActionMapping, ReservationChange)
}
