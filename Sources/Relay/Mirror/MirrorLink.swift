import OCPP
import OCPPReplay
import RelayConfig
import RelayRecording

/// One mirror of one charger's session, as a pure state machine in the charger's terms (its OCPP version and
/// message ids; a translated mirror's frames pass through its own translator below this).
///
/// It decides what the mirror gets (every charger CALL, and the charger's answers to the mirror's own calls),
/// holds messages while the mirror is down (up to its queue, then drops and counts them), replays the charger's
/// BootNotification to a mirror that (re)connects before anything else, compares each of the mirror's answers
/// with the primary's under the replay's comparison rules, maps 1.6 transaction ids between the charger (which
/// keeps the primary's) and the mirror, and refuses or passes on the mirror's own calls by its mode.
/// ``RelaySession`` performs its actions; ``MirrorSet`` owns the charger's one-outstanding-call slot.
struct MirrorLink: Sendable {
    enum Connection: Equatable, Sendable {
        /// Not connected; a dial is scheduled.
        case down
        case dialling
        /// Connected; the boot with this message id waits for the mirror's answer before the queue goes.
        case booting(String)
        case open
    }

    enum Action: Equatable, Sendable {
        /// Send this frame (charger terms) to the mirror.
        case send(String)
        /// Dial the mirror after this delay.
        case dial(after: Duration)
        /// How a charger message fared.
        case outcome(MirrorOutcome.Kind, action: String, messageID: String, [MirrorOutcome.Difference])
        /// The mirror's call was refused with this answer (sent to the mirror by ``send(_:)`` too).
        case refused(action: String)
        /// A permitted call for the charger, already carrying its relay-made id; ``MirrorSet`` sends it when the
        /// charger has no call outstanding.
        case callCharger(id: String, text: String)
        /// The transaction id map changed: persist it.
        case persist([String: String])
        /// Something worth a line in the recording and the log.
        case note(String)
        /// Ping the mirror (it was silent for a whole liveness interval).
        case ping
        /// Reset the mirror's connection (it did not answer the ping; SO_LINGER 0, so nothing queued reaches it later);
        /// its end re-dials.
        case drop
    }

    /// A frame held for the mirror: a charger CALL (with its id and action) or an answer to the mirror's call.
    private struct Queued: Sendable {
        var id: String?
        var action: String?
        var text: String
    }

    /// A charger message the mirror has to answer, or an answer of the primary's waiting for the mirror's.
    private struct Pending: Sendable {
        var action: String
        /// When it was sent to the mirror, on the relay's monotonic clock (`nil`: queued).
        var sentAt: Duration?
        var primary: FrameEnvelope?
        var mirror: FrameEnvelope?
    }

    let name: String
    let mode: MirrorSettings.Mode
    let commands: Set<String>
    let queueLimit: Int
    /// How long a mirror (and the primary) get to answer.
    let callTimeout: Duration
    /// Prefix of the message ids the relay makes for this mirror (`m1-`): the charger's answers are routed by it.
    let idPrefix: String
    /// Whether the charger speaks 1.6 (transaction ids are the backend's choice then, and are mapped).
    let mapsTransactions: Bool

    private(set) var connection = Connection.down
    private var failures = 0
    /// Frames held while the mirror is not open, in order.
    private var queue: [Queued] = []
    /// The charger's last BootNotification frame.
    private var lastBoot: FrameEnvelope?
    private var pending: [String: Pending] = [:]
    private var comparator: Comparator
    /// The charger's (the primary's) 1.6 transaction id → the mirror's, as JSON text.
    private(set) var transactionIDs: [String: String]
    /// Relay-made ids of the mirror's calls passed to the charger → the mirror's own ids.
    private var relayCalls: [String: String] = [:]
    private var counter = 0
    /// Whether the mirror said anything since the last liveness check, and whether a ping waits for its answer.
    private var liveness = Liveness()

    init(
        settings: MirrorSettings,
        index: Int,
        callTimeout: Duration,
        mapsTransactions: Bool,
        transactionIDs: [String: String] = [:]
    ) {
        self.name = settings.name
        self.mode = settings.mode
        self.commands = settings.commands
        self.queueLimit = settings.queue
        self.callTimeout = callTimeout
        self.idPrefix = "m\(index)-"
        self.mapsTransactions = mapsTransactions
        self.transactionIDs = transactionIDs
        self.comparator = Comparator(rules: ComparisonRules.defaults.adding(ignore: settings.ignore))
    }

    // MARK: The mirror's connection

    /// The session started: dial now.
    mutating func start() -> [Action] {
        connection = .dialling
        return [.dial(after: .zero)]
    }

    mutating func dialling() {
        connection = .dialling
    }

    /// The mirror accepted the WebSocket: the boot first (the charger's last one, unless the queue starts with
    /// it), then what queued up.
    mutating func connected(now: Duration) -> [Action] {
        failures = 0
        liveness = Liveness()
        if let first = queue.first, first.action == "BootNotification", let id = first.id {
            queue.removeFirst()
            connection = .booting(id)
            pending[id]?.sentAt = now
            return [.send(first.text)]
        }
        if let lastBoot {
            counter += 1
            let id = "\(idPrefix)boot\(counter)"
            connection = .booting(id)
            return [
                .note("mirror connected; the charger's BootNotification goes first"),
                .send(lastBoot.readdressed(to: id)),
            ]
        }
        connection = .open
        return flushQueue(now: now)
    }

    /// Dialling failed or the leg went: messages sent and not answered count as unanswered, and the mirror is
    /// dialled again after a backoff (1, 2, 4 … 60 s).
    mutating func lost(_ why: String) -> [Action] {
        failures += 1
        let seconds = min(60, 1 << min(failures - 1, 6))
        connection = .down
        var actions: [Action] = [.note("\(why); dialling again in \(seconds) s")]
        for (id, entry) in pending.sorted(by: { $0.key < $1.key }) where entry.sentAt != nil && entry.mirror == nil {
            pending[id] = nil
            actions.append(.outcome(.unanswered, action: entry.action, messageID: id, []))
        }
        relayCalls = [:]
        actions.append(.dial(after: .seconds(seconds)))
        return actions
    }

    /// The session ends: what never reached the mirror counts as dropped, what it never answered as unanswered.
    mutating func stop() -> [Action] {
        connection = .down
        queue = []
        let actions = pending.sorted(by: { $0.key < $1.key }).compactMap { id, entry -> Action? in
            guard entry.mirror == nil else { return nil }
            return .outcome(entry.sentAt == nil ? .dropped : .unanswered, action: entry.action, messageID: id, [])
        }
        pending = [:]
        return actions
    }

    private mutating func flushQueue(now: Duration) -> [Action] {
        let held = queue
        queue = []
        return held.map { entry in
            if let id = entry.id { pending[id]?.sentAt = now }
            return .send(entry.text)
        }
    }

    // MARK: From the charger

    /// A CALL from the charger.
    mutating func chargerCall(_ envelope: FrameEnvelope, text: String, now: Duration) -> [Action] {
        let action = envelope.action ?? "?"
        if action == "BootNotification" { lastBoot = envelope }
        let frame = mapTransactionIDs(envelope, text: text, toMirror: true)
        pending[envelope.messageID] = Pending(action: action)
        return deliver(frame, id: envelope.messageID, action: action, now: now)
    }

    /// The charger answered a call this mirror made (`id` relay-made).
    mutating func chargerAnswered(_ envelope: FrameEnvelope) -> [Action] {
        guard let call = relayCalls.removeValue(forKey: envelope.messageID) else { return [] }
        return deliver(envelope.readdressed(to: call), id: nil, action: nil, now: .zero)
    }

    private mutating func deliver(_ frame: String, id: String?, action: String?, now: Duration) -> [Action] {
        if connection == .open {
            if let id { pending[id]?.sentAt = now }
            return [.send(frame)]
        }
        guard queue.count < queueLimit else {
            guard let id, let action else { return [] }
            pending[id] = nil
            return [.outcome(.dropped, action: action, messageID: id, [])]
        }
        queue.append(Queued(id: id, action: action, text: frame))
        return []
    }

    /// The primary's answer to a charger CALL, as the charger gets it.
    mutating func primaryAnswered(_ envelope: FrameEnvelope) -> [Action] {
        guard pending[envelope.messageID] != nil else { return [] }
        pending[envelope.messageID]?.primary = envelope
        return compareIfBoth(envelope.messageID)
    }

    // MARK: From the mirror

    /// A frame from the mirror (charger terms).
    mutating func mirrorFrame(_ text: String, now: Duration) -> [Action] {
        guard let envelope = FrameEnvelope(text) else {
            return [.note("the mirror sent something that is not an OCPP frame; ignored")]
        }
        if envelope.type == 2 { return mirrorCall(envelope, text: text) }
        if case .booting(let bootID) = connection, envelope.messageID == bootID {
            connection = .open
            var actions: [Action] = []
            if pending[bootID] != nil {
                pending[bootID]?.mirror = envelope
                actions += compareIfBoth(bootID)
            }
            if envelope.type == 4 || !(envelope.payload?["status"]?.stringValue == "Accepted") {
                actions.append(.note("the mirror did not accept the BootNotification; sending what queued up anyway"))
            }
            return actions + flushQueue(now: now)
        }
        guard pending[envelope.messageID] != nil else { return [] }
        pending[envelope.messageID]?.mirror = envelope
        return compareIfBoth(envelope.messageID)
    }

    private mutating func mirrorCall(_ envelope: FrameEnvelope, text: String) -> [Action] {
        let action = envelope.action ?? "?"
        guard mode == .secondary, commands.contains(action) else {
            let why =
                mode == .shadow
                ? "ocpp-relay: \(name) is a shadow backend; its calls do not reach the charger"
                : "ocpp-relay: \(name) may not send \(action) to the charger"
            let refusal = RPCFrame.callError(
                .init(messageID: envelope.messageID, errorCode: "SecurityError", errorDescription: why)
            )
            return [.refused(action: action), .send(refusal.jsonText)]
        }
        counter += 1
        let id = "\(idPrefix)\(counter)"
        relayCalls[id] = envelope.messageID
        let mapped = FrameEnvelope(mapTransactionIDs(envelope, text: text, toMirror: false)) ?? envelope
        return [.callCharger(id: id, text: mapped.readdressed(to: id))]
    }

    /// The transaction id map read back from the state store (a relay restarted mid-transaction).
    mutating func restore(transactionIDs stored: [String: String]) {
        transactionIDs.merge(stored) { current, _ in current }
    }

    /// Whether `id` is one this mirror made for the charger.
    func owns(_ id: String) -> Bool { id.hasPrefix(idPrefix) }

    // MARK: Time

    /// Answers that did not come within the call timeout.
    mutating func expire(now: Duration) -> [Action] {
        var actions: [Action] = []
        for (id, entry) in pending.sorted(by: { $0.key < $1.key }) {
            guard let sentAt = entry.sentAt, now > sentAt, now - sentAt > callTimeout else { continue }
            if entry.mirror == nil {
                pending[id] = nil
                actions.append(.outcome(.unanswered, action: entry.action, messageID: id, []))
            } else if now - sentAt > callTimeout * 2 {
                pending[id] = nil  // the primary never answered: nothing to compare with
            }
        }
        return actions
    }

    /// Anything arrived from the mirror (a pong too): it is alive.
    mutating func heardFrom() {
        liveness.heard()
    }

    /// The periodic check (``Liveness``, four times per `timeouts.ping`): a mirror silent for a whole interval is
    /// pinged, one that does not answer is reset (and dialled again), so that a backend gone without a FIN does not
    /// pile up unanswered messages for ever.
    mutating func livenessCheck() -> [Action] {
        guard connection != .down, connection != .dialling else { return [] }
        switch liveness.check() {
        case .alive: return []
        case .ping: return [.ping]
        case .dead: break
        }
        return [.note("no answer to a ping within the liveness interval; connection reset"), .drop]
    }

    /// The charger did not answer this mirror's call (`id` relay-made) within the call timeout: the mirror gets
    /// a CALLERROR instead of waiting for ever.
    mutating func chargerNeverAnswered(_ id: String) -> [Action] {
        guard let call = relayCalls.removeValue(forKey: id) else { return [] }
        let error = RPCFrame.callError(
            .init(
                messageID: call,
                errorCode: "GenericError",
                errorDescription: "ocpp-relay: the charger did not answer within the call timeout"
            )
        )
        return deliver(error.jsonText, id: nil, action: nil, now: .zero)
    }

    /// Whether anything waits for time to pass.
    var hasPending: Bool { !pending.isEmpty }

    /// Whether the mirror is connected and still to get what queued while it was booting, or to answer a message it
    /// was sent: what a session that ends waits for, within the mirror's call timeout. A mirror that is down owes
    /// nothing (what queued for it counts as dropped at once).
    var owesAnything: Bool {
        guard connection != .down, connection != .dialling else { return false }
        return !queue.isEmpty || pending.values.contains { $0.sentAt != nil && $0.mirror == nil }
    }

    // MARK: Comparison

    private mutating func compareIfBoth(_ id: String) -> [Action] {
        guard let entry = pending[id], let primary = entry.primary, let mirror = entry.mirror else { return [] }
        pending[id] = nil
        var actions: [Action] = []
        let differences = compare(entry.action, primary, mirror, &actions)
        actions.insert(
            .outcome(differences.isEmpty ? .matched : .diverged, action: entry.action, messageID: id, differences),
            at: 0
        )
        return actions
    }

    private mutating func compare(
        _ action: String,
        _ primary: FrameEnvelope,
        _ mirror: FrameEnvelope,
        _ actions: inout [Action]
    ) -> [MirrorOutcome.Difference] {
        if primary.rest == mirror.rest && primary.type == mirror.type { return [] }
        switch (primary.type, mirror.type) {
        case (3, 3):
            guard let p = primary.payload, let m = mirror.payload else {
                return [.init(path: "", primary: String(primary.rest), mirror: String(mirror.rest))]
            }
            if mapsTransactions, action == "StartTransaction", let pid = p["transactionId"],
                let mid = m["transactionId"]
            {
                transactionIDs[pid.jsonText] = mid.jsonText
                actions.append(.persist(transactionIDs))
            }
            return comparator.compare(action: "\(action).result", expected: p, got: m).map {
                .init(path: $0.path, primary: $0.expected, mirror: $0.got)
            }
        case (4, 4):
            let (p, m) = (primary.errorCode ?? "?", mirror.errorCode ?? "?")
            return p == m ? [] : [.init(path: "errorCode", primary: p, mirror: m)]
        default:
            func kind(_ e: FrameEnvelope) -> String { e.type == 3 ? "CALLRESULT" : "CALLERROR \(e.errorCode ?? "?")" }
            return [.init(path: "", primary: kind(primary), mirror: kind(mirror))]
        }
    }

    // MARK: Transaction ids (OCPP 1.6)

    /// Payload members naming a 1.6 transaction, by action: the charger's messages carry the primary's id (mapped
    /// to the mirror's), the mirror's calls its own (mapped back).
    private static let chargerTransactionActions: Set<String> = ["StopTransaction", "MeterValues"]

    private func mapTransactionIDs(_ envelope: FrameEnvelope, text: String, toMirror: Bool) -> String {
        guard mapsTransactions, !transactionIDs.isEmpty, let action = envelope.action else { return text }
        let map =
            toMirror ? transactionIDs : Dictionary(transactionIDs.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        guard var payload = envelope.payload else { return text }
        switch action {
        case _ where toMirror && Self.chargerTransactionActions.contains(action),
            "RemoteStopTransaction" where !toMirror:
            guard let id = payload["transactionId"], let mapped = map[id.jsonText] else { return text }
            payload = payload.setting("transactionId", to: mapped)
        case "SetChargingProfile" where !toMirror:
            guard let profile = payload["csChargingProfiles"], let id = profile["transactionId"],
                let mapped = map[id.jsonText]
            else { return text }
            payload = payload.setting("csChargingProfiles", to: profile.setting("transactionId", to: mapped))
        default:
            return text
        }
        var copy = envelope
        let rewritten = payload.jsonText
        copy.rest = Substring(rewritten)
        return copy.readdressed(to: envelope.messageID)
    }
}

extension JSONValue {
    /// This object with member `key` set to the value `json` holds.
    fileprivate func setting(_ key: String, to json: String) -> JSONValue {
        guard let value = try? JSONParser.parse(json) else { return self }
        return setting(key, to: value)
    }

    fileprivate func setting(_ key: String, to value: JSONValue) -> JSONValue {
        guard case .object(var members) = self else { return self }
        if let index = members.firstIndex(where: { $0.key == key }) {
            members[index].value = value
        } else {
            members.append((key: key, value: value))
        }
        return .object(members)
    }
}
