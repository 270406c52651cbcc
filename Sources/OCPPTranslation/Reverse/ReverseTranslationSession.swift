import OCPP

/// Translates one 2.0.1 charger for a 1.6 backend (`ocpp-mapping.md` §6): the relay is the charger's CSMS and
/// the backend's charge point. A pure state machine like ``TranslationSession``, driven the same way.
///
/// What it must keep (transactions and the backend's integer ids, the 1.6 CALLs of transactions not yet
/// answered, minted remoteStartIds and requestIds, aliases of long tokens, connector statuses) lives in
/// ``ChargerState/reverse``; an event that changes it returns ``TranslationOutput/persist(_:)`` first, and the
/// relay sends nothing of that event before the state is stored. So a TransactionEvent is answered only once
/// what it became upstream is on disk, and a relay killed mid-transaction resumes its outbox on the next
/// connection with the same message ids.
public struct ReverseTranslationSession: VersionTranslation {
    public let identity: String
    public let tables: MappingTables
    public internal(set) var state: ChargerState
    private var changed = false

    let now: @Sendable () -> String
    let makeID: @Sendable () -> String
    let uptime: @Sendable () -> Double
    /// How long a TransactionEvent's answer may wait for StartTransaction.conf (below the charger's timeout; at
    /// most half the relay's call timeout, so that the charger is answered before the relay gives up on the call).
    let holdTimeout: Double
    /// What the backend implements beyond 1.6 (the Security Whitepaper, Plug & Charge).
    let options: TranslationOptions

    /// CALLs to the backend (1.6) and to the charger (2.0.1).
    var upstream = CallLane<UpstreamPurpose>()
    var downstream = CallLane<DownstreamPurpose>()
    /// The answer to the TransactionEvent that opened a 1.6 transaction, held until StartTransaction.conf tells
    /// whether the token was accepted.
    var held: (messageID: String, transaction: String, since: Double)?
    /// How often each transaction CALL went unanswered (it is sent again, with the same id, a few times).
    var attempts: [String: Int] = [:]

    /// How many times a transaction's CALL is sent before the relay gives up on it.
    static let transactionAttempts = 3

    public init(
        identity: String,
        tables: MappingTables,
        state: ChargerState,
        now: @escaping @Sendable () -> String,
        makeID: @escaping @Sendable () -> String,
        uptime: @escaping @Sendable () -> Double = { 0 },
        holdTimeout: Double = 10,
        options: TranslationOptions = .init()
    ) {
        self.identity = identity
        self.tables = tables
        self.state = state
        self.now = now
        self.makeID = makeID
        self.uptime = uptime
        self.holdTimeout = holdTimeout
        self.options = options
    }

    public var hasCallsInFlight: Bool { upstream.isBusy || downstream.isBusy || held != nil }

    // MARK: Entry points

    public mutating func started() -> [TranslationOutput] {
        var out: [TranslationOutput] = []
        for message in state.reverse.outbox {
            upstream.enqueue(
                .init(
                    messageID: message.messageID,
                    action: message.action,
                    payload: message.payload,
                    purpose: .transaction(message.transaction)
                )
            )
        }
        if !state.reverse.outbox.isEmpty {
            out.append(
                .note(
                    .lossy,
                    "StartTransaction",
                    "\(state.reverse.outbox.count) transaction message(s) of an earlier connection sent again with their ids"
                )
            )
        }
        pumpUpstream(&out)
        return finish(out)
    }

    public mutating func fromCharger(_ text: String) -> [TranslationOutput] {
        var out: [TranslationOutput] = []
        do {
            switch try RPCFrame.parse(text) {
            case .call(let call): chargerCall(call, &out)
            case .callResult(let result): downstreamAnswered(result.messageID, .result(result.payload), &out)
            case .callError(let error): downstreamAnswered(error.messageID, .error(error), &out)
            case .send, .callResultError:
                out.append(.note(.malformed, "?", "OCPP 2.1 message type from a 2.0.1 charger ignored"))
            }
        } catch {
            out.append(.note(.malformed, "?", "from the charger: \(error.message)"))
            if let id = error.messageID {
                out.append(.toCharger(TranslationSession.callError(id, error.rpcErrorCode(for: .v201), error.message)))
            }
        }
        return finish(out)
    }

    public mutating func fromUpstream(_ text: String) -> [TranslationOutput] {
        var out: [TranslationOutput] = []
        do {
            switch try RPCFrame.parse(text) {
            case .call(let call): backendCall(call, &out)
            case .callResult(let result): upstreamAnswered(result.messageID, .result(result.payload), &out)
            case .callError(let error): upstreamAnswered(error.messageID, .error(error), &out)
            case .send, .callResultError:
                out.append(.note(.malformed, "?", "OCPP 2.1 message type from a 1.6 backend ignored"))
            }
        } catch {
            out.append(.note(.malformed, "?", "from the backend: \(error.message)"))
            if let id = error.messageID {
                out.append(.toUpstream(TranslationSession.callError(id, error.rpcErrorCode(for: .v16), error.message)))
            }
        }
        return finish(out)
    }

    public mutating func expireCalls(timeout: Double) -> [TranslationOutput] {
        var out: [TranslationOutput] = []
        let now = uptime()
        if let held, now - held.since >= min(holdTimeout, timeout / 2) {
            // The charger must not time out: it is answered without the token's verdict, which a late
            // rejection then enforces with RequestStopTransaction.
            self.held = nil
            out.append(.toCharger(TranslationSession.result(held.messageID, .object([]))))
            out.append(
                .note(.lossy, "TransactionEvent", "StartTransaction.conf is late; the charger was answered without it")
            )
        }
        if let entry = upstream.expired(now: now, timeout: timeout) {
            upstreamFailed(entry, "the backend did not answer within \(Int(timeout)) s", timedOut: true, &out)
            pumpUpstream(&out)
        }
        if let entry = downstream.expired(now: now, timeout: timeout) {
            out.append(.note(.untranslatable, entry.action, "the charger did not answer within \(Int(timeout)) s"))
            if case .forBackend(let backendID, _, _) = entry.purpose {
                out.append(
                    .toUpstream(
                        TranslationSession.callError(
                            backendID,
                            "InternalError",
                            "the charger did not answer within \(Int(timeout)) s"
                        )
                    )
                )
            }
            pumpDownstream(&out)
        }
        return finish(out)
    }

    // MARK: State

    mutating func markChanged() {
        changed = true
    }

    private mutating func finish(_ out: [TranslationOutput]) -> [TranslationOutput] {
        guard changed else { return out }
        changed = false
        return [.persist(state)] + out
    }

    // MARK: Sending

    /// Queues a 1.6 CALL for the backend.
    mutating func sendUpstream(
        _ action: String,
        _ payload: JSONValue,
        _ purpose: UpstreamPurpose,
        _ out: inout [TranslationOutput]
    ) {
        let entry = CallLane<UpstreamPurpose>.Entry(
            messageID: makeID(),
            action: action,
            payload: payload,
            purpose: purpose
        )
        if case .transaction(let transaction) = purpose {
            state.reverse.outbox.append(
                .init(messageID: entry.messageID, action: action, payload: payload, transaction: transaction)
            )
            markChanged()
        }
        upstream.enqueue(entry)
        pumpUpstream(&out)
    }

    mutating func pumpUpstream(_ out: inout [TranslationOutput]) {
        guard var entry = upstream.next(now: uptime()) else { return }
        if case .transaction(let transaction?) = entry.purpose, entry.action != "StartTransaction" {
            // The backend's id, known by now (StartTransaction was answered before this left the queue), or -1
            // when StartTransaction failed for good: what a 1.6 charger sends then, too.
            let number = state.reverse.transactions.first { $0.id == transaction }?.number ?? -1
            entry.payload.set("transactionId", .int(number))
        }
        out.append(
            .toUpstream(
                RPCFrame.call(.init(messageID: entry.messageID, action: entry.action, payload: entry.payload)).jsonText
            )
        )
    }

    /// Queues a 2.0.1 CALL for the charger.
    mutating func sendDownstream(
        _ action: String,
        _ payload: JSONValue,
        _ purpose: DownstreamPurpose,
        _ out: inout [TranslationOutput]
    ) {
        downstream.enqueue(.init(messageID: makeID(), action: action, payload: payload, purpose: purpose))
        pumpDownstream(&out)
    }

    mutating func pumpDownstream(_ out: inout [TranslationOutput]) {
        guard let entry = downstream.next(now: uptime()) else { return }
        out.append(
            .toCharger(
                RPCFrame.call(.init(messageID: entry.messageID, action: entry.action, payload: entry.payload)).jsonText
            )
        )
    }

    // MARK: The tables' verdict

    /// Which side a CALL came from: its answer goes back there.
    enum Side {
        case charger, backend

        func reply(_ frame: String) -> TranslationOutput {
            self == .charger ? .toCharger(frame) : .toUpstream(frame)
        }

        /// The version on the other side, for messages.
        var otherVersion: String { self == .charger ? "1.6" : "2.0.1" }
    }

    /// The mapping to translate `call` with, or `nil` when the table settles it: an action it does not name
    /// (NotImplemented), one it refuses (its error), one the relay answers itself (noted as lossy).
    func tableMapping(
        _ call: RPCFrame.Call,
        _ table: [String: ActionMapping],
        from side: Side,
        _ out: inout [TranslationOutput]
    ) -> ActionMapping? {
        guard let mapping = table[call.action] else {
            let description = "\(call.action) has no OCPP \(side.otherVersion) translation"
            out.append(side.reply(TranslationSession.callError(call.messageID, "NotImplemented", description)))
            out.append(.note(.untranslatable, call.action, "no mapping in \(MessageTable.reverse.fileName)"))
            return nil
        }
        if let error = mapping.error {
            let description = "\(call.action) is not supported through the relay"
            out.append(side.reply(TranslationSession.callError(call.messageID, error, description)))
            return nil
        }
        if let answer = mapping.answer {
            out.append(side.reply(TranslationSession.result(call.messageID, answer)))
            out.append(.note(.lossy, call.action, "answered by the relay; the other version has no such message"))
            return nil
        }
        return mapping
    }

    /// A CALL that cannot be translated: its sender is told why.
    func refuse(_ call: RPCFrame.Call, _ error: Untranslatable, from side: Side, _ out: inout [TranslationOutput]) {
        out.append(
            side.reply(TranslationSession.callError(call.messageID, "PropertyConstraintViolation", error.message))
        )
        out.append(.note(.untranslatable, call.action, error.message))
    }

    // MARK: Answers

    private mutating func upstreamAnswered(_ id: String, _ outcome: CallOutcome, _ out: inout [TranslationOutput]) {
        guard let entry = upstream.answered(id) else {
            out.append(.note(.malformed, "?", "the backend answered unknown message id \(id)"))
            return
        }
        switch outcome {
        case .result(let payload):
            if case .transaction = entry.purpose { delivered(entry) }
            upstreamResult(entry, payload, &out)
        case .error(let error):
            upstreamFailed(
                entry,
                "the backend answered \(error.errorCode): \(error.errorDescription)",
                timedOut: false,
                &out
            )
        }
        pumpUpstream(&out)
    }

    /// A transaction CALL is answered: it leaves the outbox.
    private mutating func delivered(_ entry: CallLane<UpstreamPurpose>.Entry) {
        attempts[entry.messageID] = nil
        state.reverse.outbox.removeAll { $0.messageID == entry.messageID }
        markChanged()
    }

    /// A CALL to the backend failed: unanswered in time, or answered with a CALLERROR.
    private mutating func upstreamFailed(
        _ entry: CallLane<UpstreamPurpose>.Entry,
        _ why: String,
        timedOut: Bool,
        _ out: inout [TranslationOutput]
    ) {
        switch entry.purpose {
        case .answer(let chargerID, let action, .inStep):
            // A refusal is answered and noted; without an answer the charger's own timeout makes it send again.
            out.append(.note(.untranslatable, action, why))
            if !timedOut { out.append(.toCharger(TranslationSession.result(chargerID, .object([])))) }
        case .answer(let chargerID, _, .plugAndCharge(let fallback?)) where !timedOut:
            plainAuthorize(chargerID, fallback, because: why, &out)
        case .answer(let chargerID, let action, .plugAndCharge):
            out.append(.note(.untranslatable, action, why))
            out.append(
                .toCharger(
                    TranslationSession.result(chargerID, TranslationSession.refusal(action, .init(message: why)))
                )
            )
        case .answer(let chargerID, let action, _):
            out.append(.toCharger(TranslationSession.callError(chargerID, "InternalError", why)))
            out.append(.note(.untranslatable, action, why))
        case .relay:
            out.append(.note(.untranslatable, entry.action, "the relay's \(entry.action): \(why)"))
        case .transaction(let transaction):
            let tries = attempts[entry.messageID, default: 0] + 1
            attempts[entry.messageID] = tries
            if tries < Self.transactionAttempts {
                // Sent again first, with the same id: 1.6 delivers a transaction's messages in order.
                upstream.enqueue(entry, first: true)
                out.append(.note(.untranslatable, entry.action, "\(why); sending it again (attempt \(tries + 1))"))
                return
            }
            delivered(entry)
            out.append(.note(.untranslatable, entry.action, "\(why); given up after \(tries) attempts"))
            if entry.action == "StartTransaction", let transaction {
                transactionStartFailed(transaction, &out)
            }
        }
    }

    private mutating func downstreamAnswered(_ id: String, _ outcome: CallOutcome, _ out: inout [TranslationOutput]) {
        guard let entry = downstream.answered(id) else {
            out.append(.note(.malformed, "?", "the charger answered unknown message id \(id)"))
            return
        }
        chargerAnswered(entry, outcome, &out)
        pumpDownstream(&out)
    }
}

/// What a CALL to the 1.6 backend is for.
enum UpstreamPurpose: Sendable {
    /// The result answers the charger's CALL with this id.
    case answer(chargerID: String, action: String, context: ChargerAnswer)
    /// A transaction's message (StartTransaction, MeterValues, StopTransaction): in the persisted outbox, its
    /// `transactionId` filled in when it is sent. The 2.0.1 transaction it belongs to, if any.
    case transaction(String?)
    /// The relay's own (a synthesised StatusNotification, a triggered BootNotification): the result is consumed.
    case relay
}

/// How the backend's result becomes the charger's.
enum ChargerAnswer: Sendable {
    case generic(ActionMapping)
    case boot
    case authorize
    /// An answer without fields (`{}`).
    case empty
    /// The answer (`{}`) to a message of an open transaction (a TransactionEvent, clock-aligned MeterValues), sent
    /// once the backend has its 1.6 counterpart: the charger keeps the message until then, so nothing needs the
    /// relay's disk. Never a CALLERROR (a charger drops a TransactionEvent after its retries).
    case inStep
    /// A 2.0.1 message sent wrapped in a Plug & Charge DataTransfer: the answer is unwrapped. A contract Authorize
    /// carries its plain 1.6 form, sent instead when the backend does not take the wrapped one.
    case plugAndCharge(fallback: JSONValue?)
}

/// What a CALL to the 2.0.1 charger is for.
enum DownstreamPurpose: Sendable {
    /// Translates the backend's CALL with this id; the result answers it.
    case forBackend(backendID: String, action: String, context: BackendRequest)
    /// The relay's own (RequestStopTransaction after a late rejection).
    case relay
}

/// What the translation of a backend CALL must remember to translate the charger's result.
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
}

/// A GetConfiguration in progress: which keys went to the charger as which variables, and what the relay
/// answers itself.
struct ConfigurationRead: Sendable {
    var asked: [ConfigurationKeyMapping]
    var unknown: [String]
    var known: [JSONValue]
}
