import OCPP

/// A translation between a charger and a backend that speak different OCPP versions: a pure state machine fed
/// the frames of both sides, returning what to send, to store and to note. ``TranslationSession`` serves 1.6
/// chargers on 2.0.1 backends, ``ReverseTranslationSession`` 2.0.1 chargers on 1.6 backends; the relay drives
/// either the same way.
public protocol VersionTranslation: Sendable {
    /// What must survive the connection (see ``TranslationOutput/persist(_:)``).
    var state: ChargerState { get }
    /// Whether a CALL is in flight in either direction (the relay then checks for expiry).
    var hasCallsInFlight: Bool { get }
    /// Both legs are open: what an earlier connection left to send goes out.
    mutating func started() -> [TranslationOutput]
    /// A frame from the charger.
    mutating func fromCharger(_ text: String) -> [TranslationOutput]
    /// A frame from the backend.
    mutating func fromUpstream(_ text: String) -> [TranslationOutput]
    /// Gives up on CALLs unanswered for `timeout` seconds.
    mutating func expireCalls(timeout: Double) -> [TranslationOutput]
}

extension TranslationSession: VersionTranslation {
    /// Nothing waits from an earlier connection in this direction: transaction ids are minted by the relay.
    public mutating func started() -> [TranslationOutput] { [] }
}

/// One direction's CALLs. OCPP allows one outstanding CALL per direction: the others wait here in order.
/// A CALL keeps its payload until it is sent, so that values learnt meanwhile (a transaction id) can go in.
struct CallLane<Purpose: Sendable>: Sendable {
    struct Entry: Sendable {
        var messageID: String
        var action: String
        var payload: JSONValue
        var purpose: Purpose
    }

    private(set) var queue: [Entry] = []
    private(set) var inFlight: Entry?
    private var sentAt = 0.0

    var isBusy: Bool { inFlight != nil }

    mutating func enqueue(_ entry: Entry, first: Bool = false) {
        if first { queue.insert(entry, at: 0) } else { queue.append(entry) }
    }

    /// The next CALL to send, when none is in flight (it is in flight from now on).
    mutating func next(now: Double) -> Entry? {
        guard inFlight == nil, !queue.isEmpty else { return nil }
        let entry = queue.removeFirst()
        inFlight = entry
        sentAt = now
        return entry
    }

    /// The CALL this answer is for, when it is the one in flight.
    mutating func answered(_ messageID: String) -> Entry? {
        guard let entry = inFlight, entry.messageID == messageID else { return nil }
        inFlight = nil
        return entry
    }

    /// The CALL in flight, taken off when it waited `timeout` seconds.
    mutating func expired(now: Double, timeout: Double) -> Entry? {
        guard let entry = inFlight, now - sentAt >= timeout else { return nil }
        inFlight = nil
        return entry
    }
}
