/// One direction of an OCPP-J connection's calls: at most one CALL outstanding (OCPP-J: a sender waits for the
/// answer or a timeout before its next CALL), the calls waiting behind it in order, and when the outstanding one
/// went.
///
/// Time is a `Duration` since any fixed point of a monotonic clock the owner reads (the relay's loop clock, a
/// test's counter); timeouts are `Duration`s too. The one correlation of calls for every part of the relay that
/// sends or watches them: the translation's lanes, the mirrors' calls to the charger, the calls the metrics time.
public struct CallLane<ID: Hashable & Sendable, Call: Sendable>: Sendable {
    /// The call sent and not answered yet.
    public struct Outstanding: Sendable {
        public var id: ID
        public var call: Call
        public var sentAt: Duration
    }

    public private(set) var outstanding: Outstanding?
    /// The calls waiting to be sent, in order.
    public private(set) var waiting: [(id: ID, call: Call)] = []

    public init() {}

    /// Whether a call is outstanding.
    public var isBusy: Bool { outstanding != nil }

    /// Whether nothing is outstanding and nothing waits.
    public var isIdle: Bool { outstanding == nil && waiting.isEmpty }

    /// How many calls are outstanding or waiting.
    public var count: Int { waiting.count + (outstanding == nil ? 0 : 1) }

    /// Queues a call, last (or first: a call sent again goes before the others).
    public mutating func enqueue(_ call: Call, id: ID, first: Bool = false) {
        if first { waiting.insert((id, call), at: 0) } else { waiting.append((id, call)) }
    }

    /// The next call to send, when none is outstanding: it is outstanding from `now`.
    public mutating func next(at now: Duration) -> (id: ID, call: Call)? {
        guard outstanding == nil, !waiting.isEmpty else { return nil }
        let next = waiting.removeFirst()
        outstanding = Outstanding(id: next.id, call: next.call, sentAt: now)
        return next
    }

    /// A call sent without queueing (one the relay passes on as it came): outstanding from `now`, in place of any
    /// other (whose answer then finds no call).
    public mutating func sent(_ call: Call, id: ID, at now: Duration) {
        outstanding = Outstanding(id: id, call: call, sentAt: now)
    }

    /// The outstanding call an answer with `id` is for, taken off; `nil` when `id` names no outstanding call.
    public mutating func answered(_ id: ID) -> Call? {
        guard let call = outstanding, call.id == id else { return nil }
        outstanding = nil
        return call.call
    }

    /// The outstanding call, taken off when it has waited `timeout` by `now`.
    public mutating func expired(at now: Duration, after timeout: Duration) -> (id: ID, call: Call)? {
        guard let call = outstanding, now - call.sentAt >= timeout else { return nil }
        outstanding = nil
        return (call.id, call.call)
    }

    /// Takes every call off, the outstanding one first: the connection is gone.
    public mutating func removeAll() -> [(id: ID, call: Call)] {
        var all = outstanding.map { [($0.id, $0.call)] } ?? []
        all += waiting
        outstanding = nil
        waiting = []
        return all
    }

    /// Changes the calls still waiting (a value learnt meanwhile goes into them).
    public mutating func updateWaiting(_ body: (inout Call) -> Void) {
        for index in waiting.indices { body(&waiting[index].call) }
    }

    /// Whether the outstanding call or a waiting one satisfies `predicate`.
    public func contains(where predicate: (Call) -> Bool) -> Bool {
        if let outstanding, predicate(outstanding.call) { return true }
        return waiting.contains { predicate($0.call) }
    }
}
