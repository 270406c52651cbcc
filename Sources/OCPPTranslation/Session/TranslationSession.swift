import OCPP

/// Something the translation wants the relay to do or know.
public enum TranslationOutput: Sendable, Equatable {
    /// Send this frame text to the backend (2.0.1).
    case toUpstream(String)
    /// Send this frame text to the charger (1.6).
    case toCharger(String)
    /// A translation problem or loss worth logging and recording.
    case diagnostic(TranslationDiagnostic)
    /// Store this state of the charger before sending any frame of this output or after it. Always first
    /// when present: everything the same event produced depends on it.
    case persist(ChargerState)
    /// The charger accepted a new Basic-auth password from the backend: the relay, when it checks the charger's
    /// password itself, must accept the new one from now on (and no longer the old). The password in the clear:
    /// never logged or recorded.
    case passwordChanged(String)
}

extension TranslationOutput {
    /// A diagnostic about `action`.
    static func note(_ kind: TranslationDiagnostic.Kind, _ action: String, _ message: String) -> TranslationOutput {
        .diagnostic(TranslationDiagnostic(kind: kind, action: action, message: message))
    }
}

/// A lossy or failed translation, for logs, metrics and recordings.
public struct TranslationDiagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// Information was dropped because the other version cannot carry it.
        case lossy
        /// A message could not be translated; its sender got an error or a rejection.
        case untranslatable
        /// A frame that is not valid OCPP.
        case malformed
    }

    public let kind: Kind
    /// The action concerned.
    public let action: String
    public let message: String

    public var description: String { "\(kind.rawValue) \(action): \(message)" }
}

/// Translates one 1.6 charger to a 2.0.1 backend: a pure state machine, driven by the frames of both
/// sides, returning the frames to send. It keeps OCPP's rules on both legs: one outstanding CALL per
/// direction (relay-originated CALLs wait in a queue), fresh message ids, CALLRESULTs correlated by id.
///
/// The persistent part is ``state`` (transactions, remote starts, request ids, …): an event that changes it
/// durably returns ``TranslationOutput/persist(_:)`` first, and the relay sends nothing of it (or after it)
/// before the state is stored. A seqNo taken inside a reserved block is not such a change. The correlation
/// of calls in flight lives only as long as the connection.
public struct TranslationSession: Sendable {
    public let identity: String
    public let tables: MappingTables
    public internal(set) var state: ChargerState
    /// Whether ``state`` changed durably during the event being handled.
    private var changed = false
    /// Whether a transaction took a new block of seqNos during the event being handled.
    var seqNosReserved = false

    let now: @Sendable () -> String
    let makeID: @Sendable () -> String
    let uptime: @Sendable () -> Double
    /// The early StartTransaction answer, if configured.
    let options: TranslationOptions
    var upstreamSentAt = 0.0
    var chargerSentAt = 0.0

    /// CALLs sent to the backend and what their results are for.
    var upstreamCalls: [String: UpstreamCall] = [:]
    var upstreamQueue: [(frame: RPCFrame, call: UpstreamCall)] = []
    var upstreamInFlight: String?
    /// CALLs sent to the charger and what their results are for.
    var chargerCalls: [String: ChargerCall] = [:]
    var chargerQueue: [(frame: RPCFrame, call: ChargerCall)] = []
    var chargerInFlight: String?

    /// - Parameters:
    ///   - now: the current time as RFC 3339 (payload timestamps the relay fills in).
    ///   - makeID: a new unique id (UUID): message ids and 2.0.1 transaction ids.
    ///   - uptime: a monotonic clock in seconds, for ``expireCalls(timeout:)``.
    public init(
        identity: String,
        tables: MappingTables,
        state: ChargerState,
        now: @escaping @Sendable () -> String,
        makeID: @escaping @Sendable () -> String,
        uptime: @escaping @Sendable () -> Double = { 0 },
        options: TranslationOptions = .init()
    ) {
        self.identity = identity
        self.tables = tables
        self.state = state
        self.now = now
        self.makeID = makeID
        self.uptime = uptime
        self.options = options
    }

    /// Gives up on a CALL in flight for longer than `timeout` seconds: its original sender gets a
    /// CALLERROR, and the queue behind it moves on. A late answer is then ignored.
    public mutating func expireCalls(timeout: Double) -> [TranslationOutput] {
        var out: [TranslationOutput] = []
        expire(timeout: timeout, &out)
        expireReservations(&out)
        persistIfChanged(&out)
        return out
    }

    private mutating func expire(timeout: Double, _ out: inout [TranslationOutput]) {
        let now = uptime()
        if let id = upstreamInFlight, now - upstreamSentAt >= timeout, let call = upstreamCalls.removeValue(forKey: id)
        {
            upstreamInFlight = nil
            out.append(
                .note(.untranslatable, call.action, "the backend did not answer within \(Int(timeout)) s")
            )
            if case .forCharger(let chargerID, _, _) = call.purpose {
                out.append(
                    .toCharger(
                        Self.callError(
                            chargerID,
                            "InternalError",
                            "the backend did not answer within \(Int(timeout)) s"
                        )
                    )
                )
            }
            pumpUpstream(&out)
        }
        if let id = chargerInFlight, now - chargerSentAt >= timeout, let call = chargerCalls.removeValue(forKey: id) {
            chargerInFlight = nil
            out.append(
                .note(.untranslatable, call.action, "the charger did not answer within \(Int(timeout)) s")
            )
            if let upstreamID = call.upstreamID {
                out.append(
                    .toUpstream(
                        Self.callError(
                            upstreamID,
                            "InternalError",
                            "the charger did not answer within \(Int(timeout)) s"
                        )
                    )
                )
            }
            pumpCharger(&out)
        }
    }

    /// Whether a CALL is in flight in either direction (the relay then checks for expiry).
    public var hasCallsInFlight: Bool {
        upstreamInFlight != nil || chargerInFlight != nil || !state.reservations.isEmpty
    }

    // MARK: Entry points

    /// A frame from the charger (OCPP 1.6).
    public mutating func fromCharger(_ text: String) -> [TranslationOutput] {
        var out: [TranslationOutput] = []
        chargerFrame(text, &out)
        persistIfChanged(&out)
        return out
    }

    /// A frame from the backend (OCPP 2.0.1).
    public mutating func fromUpstream(_ text: String) -> [TranslationOutput] {
        var out: [TranslationOutput] = []
        upstreamFrame(text, &out)
        persistIfChanged(&out)
        return out
    }

    private mutating func chargerFrame(_ text: String, _ out: inout [TranslationOutput]) {
        let frame: RPCFrame
        do {
            frame = try RPCFrame.parse(text)
        } catch {
            out.append(.note(.malformed, "?", "from the charger: \(error.message)"))
            if let id = error.messageID {
                out.append(.toCharger(Self.callError(id, error.rpcErrorCode(for: .v16), error.message)))
            }
            return
        }
        switch frame {
        case .call(let call):
            chargerCall(call, &out)
        case .callResult(let result):
            chargerAnswered(result.messageID, .result(result.payload), &out)
        case .callError(let error):
            chargerAnswered(error.messageID, .error(error), &out)
        case .send, .callResultError:
            out.append(
                .note(.malformed, "?", "OCPP 2.1 message type from a 1.6 charger ignored")
            )
        }
    }

    private mutating func upstreamFrame(_ text: String, _ out: inout [TranslationOutput]) {
        let frame: RPCFrame
        do {
            frame = try RPCFrame.parse(text)
        } catch {
            out.append(.note(.malformed, "?", "from the backend: \(error.message)"))
            if let id = error.messageID {
                out.append(.toUpstream(Self.callError(id, error.rpcErrorCode(for: .v201), error.message)))
            }
            return
        }
        switch frame {
        case .call(let call):
            backendCall(call, &out)
        case .callResult(let result):
            upstreamAnswered(result.messageID, .result(result.payload), &out)
        case .callError(let error):
            upstreamAnswered(error.messageID, .error(error), &out)
        case .send, .callResultError:
            out.append(.note(.malformed, "?", "OCPP 2.1 message type ignored"))
        }
    }

    // MARK: Frames

    static func callError(_ id: String, _ code: String, _ description: String) -> String {
        RPCFrame.callError(.init(messageID: id, errorCode: code, errorDescription: String(description.prefix(255))))
            .jsonText
    }

    static func result(_ id: String, _ payload: JSONValue) -> String {
        RPCFrame.callResult(.init(messageID: id, payload: payload)).jsonText
    }

    /// A CALLERROR code as the target version spells it.
    static func errorCode(_ code: String, for version: OCPPVersion) -> String {
        switch (code, version) {
        case ("FormatViolation", .v16), ("FormationViolation", .v16): "FormationViolation"
        case ("FormationViolation", .v201), ("FormatViolation", .v201): "FormatViolation"
        case ("OccurrenceConstraintViolation", _), ("OccurenceConstraintViolation", _): "OccurenceConstraintViolation"
        case ("MessageTypeNotSupported", .v16), ("RpcFrameworkError", .v16): "ProtocolError"
        default: code
        }
    }

    mutating func markChanged() {
        changed = true
    }

    /// Puts the state to persist first, when the event changed it durably or reserved seqNos. A state written for
    /// its own sake is exact (its open transactions resume at their next seqNo after a crash); one written only
    /// for a reservation keeps the block, so the events inside it cost no write.
    private mutating func persistIfChanged(_ out: inout [TranslationOutput]) {
        guard changed || seqNosReserved else { return }
        if changed {
            for index in state.transactions.indices where !state.transactions[index].ended {
                state.transactions[index].seqNoReserved = state.transactions[index].nextSeqNo
            }
        }
        changed = false
        seqNosReserved = false
        out.insert(.persist(state), at: 0)
    }

    // MARK: Queues (one outstanding CALL per direction)

    mutating func sendUpstream(
        _ action: String,
        _ payload: JSONValue,
        _ call: UpstreamCall,
        _ out: inout [TranslationOutput]
    ) {
        let frame = RPCFrame.call(.init(messageID: makeID(), action: action, payload: payload))
        var call = call
        if action == "TransactionEvent" {
            call.transactionID = payload.value(at: "transactionInfo.transactionId")?.stringValue
        }
        upstreamQueue.append((frame, call))
        pumpUpstream(&out)
    }

    /// Whether TransactionEvents (of `transactionID`, or of any transaction) are still to be delivered to the
    /// backend: queued behind another CALL, or sent and not yet answered.
    func transactionEventsUndelivered(transactionID: String?) -> Bool {
        let inFlight = upstreamInFlight.flatMap { upstreamCalls[$0] }
        return ([inFlight].compactMap { $0 } + upstreamQueue.map(\.call)).contains { call in
            guard let id = call.transactionID else { return false }
            return transactionID == nil || id == transactionID
        }
    }

    mutating func pumpUpstream(_ out: inout [TranslationOutput]) {
        guard upstreamInFlight == nil, !upstreamQueue.isEmpty else { return }
        let (frame, call) = upstreamQueue.removeFirst()
        upstreamInFlight = frame.messageID
        upstreamSentAt = uptime()
        upstreamCalls[frame.messageID] = call
        out.append(.toUpstream(frame.jsonText))
    }

    mutating func sendToCharger(
        _ action: String,
        _ payload: JSONValue,
        _ call: ChargerCall,
        _ out: inout [TranslationOutput]
    ) {
        let frame = RPCFrame.call(.init(messageID: makeID(), action: action, payload: payload))
        chargerQueue.append((frame, call))
        pumpCharger(&out)
    }

    mutating func pumpCharger(_ out: inout [TranslationOutput]) {
        guard chargerInFlight == nil, !chargerQueue.isEmpty else { return }
        let (frame, call) = chargerQueue.removeFirst()
        chargerInFlight = frame.messageID
        chargerSentAt = uptime()
        chargerCalls[frame.messageID] = call
        out.append(.toCharger(frame.jsonText))
    }

    // MARK: Results

    private mutating func upstreamAnswered(
        _ id: String,
        _ result: CallOutcome,
        _ out: inout [TranslationOutput]
    ) {
        guard let call = upstreamCalls.removeValue(forKey: id) else {
            out.append(
                .note(.malformed, "?", "the backend answered unknown message id \(id)")
            )
            return
        }
        if upstreamInFlight == id { upstreamInFlight = nil }
        switch result {
        case .result(let payload):
            upstreamResult(call, payload, &out)
        case .error(let error):
            if case .forCharger(let chargerID, let action, _) = call.purpose {
                out.append(
                    .toCharger(
                        Self.callError(chargerID, Self.errorCode(error.errorCode, for: .v16), error.errorDescription)
                    )
                )
                out.append(
                    .note(.untranslatable, action, "the backend answered \(error.errorCode): \(error.errorDescription)")
                )
            } else {
                out.append(
                    .note(
                        .untranslatable,
                        call.action,
                        "the backend answered the relay's \(call.action) with \(error.errorCode): \(error.errorDescription)"
                    )
                )
            }
        }
        pumpUpstream(&out)
    }

    private mutating func chargerAnswered(
        _ id: String,
        _ result: CallOutcome,
        _ out: inout [TranslationOutput]
    ) {
        guard let call = chargerCalls.removeValue(forKey: id) else {
            out.append(
                .note(.malformed, "?", "the charger answered unknown message id \(id)")
            )
            return
        }
        if chargerInFlight == id { chargerInFlight = nil }
        chargerResult(call, result, &out)
        pumpCharger(&out)
    }
}

/// How a CALL was answered.
enum CallOutcome: Sendable {
    case result(JSONValue)
    case error(RPCFrame.CallError)
}

/// A CALL the relay sent to the backend, and what its result is for.
struct UpstreamCall: Sendable {
    enum Purpose: Sendable {
        /// Translates the charger's CALL with this id; the result answers it.
        case forCharger(messageID: String, action: String, context: ChargerCallContext)
        /// The relay's own (a TransactionEvent for a status change, a NotifyReport): the result is consumed.
        case relay
        /// The Started event of a transaction whose StartTransaction the relay answered early: the result is the
        /// token's verdict, which a RemoteStopTransaction enforces when it is not Accepted.
        case verdict(transactionID: String)
    }

    var action: String
    var purpose: Purpose
    /// The 2.0.1 transaction a TransactionEvent belongs to (GetTransactionStatus asks whether it is delivered).
    var transactionID: String? = nil
}

/// What a charger CALL's translation must remember to translate the result.
enum ChargerCallContext: Sendable {
    case generic(ActionMapping)
    case boot
    case authorize
    case startTransaction(transactionID: String)
    case stopTransaction
    case emptyResult
    /// A Plug & Charge message unwrapped from a DataTransfer: the answer goes back wrapped.
    case plugAndCharge
}

/// A CALL the relay sent to the charger, and what its result is for.
struct ChargerCall: Sendable {
    /// The backend's CALL id this serves (nil for the relay's own), and its action.
    var upstreamID: String?
    var action: String
    var context: BackendCallContext
}

/// What a backend CALL's translation must remember.
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
