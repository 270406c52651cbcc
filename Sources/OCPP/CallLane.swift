/// One direction of an OCPP-J connection's calls: at most one CALL outstanding (OCPP-J: a sender waits for the
/// answer or a timeout before its next CALL), the calls waiting behind it in order, and when the outstanding one
/// went.
///
/// Time is a `Duration` since any fixed point of a monotonic clock the owner reads (the relay's loop clock, a
/// test's counter); timeouts are `Duration`s too. The one correlation of calls for every part of the relay that
/// sends or watches them: the translation's lanes, the mirrors' calls to the charger, the calls the metrics time.
///
/// Inlinable, so that every user gets it specialized for its own types (measured: unspecialized, the generic
/// metadata lookups and witness calls cost a translated round trip a tenth of its CPU).
@frozen
public struct CallLane<ID: Hashable & Sendable, Call: Sendable>: Sendable {
    /// The call sent and not answered yet.
    @frozen
    public struct Outstanding: Sendable {
        public var id: ID
        public var call: Call
        public var sentAt: Duration

        @inlinable
        init(id: ID, call: Call, sentAt: Duration) {
            self.id = id
            self.call = call
            self.sentAt = sentAt
        }
    }

    @usableFromInline var storedOutstanding: Outstanding?
    @usableFromInline var storedWaiting: [(id: ID, call: Call)] = []

    /// The call sent and not answered yet.
    @inlinable public var outstanding: Outstanding? { storedOutstanding }
    /// The calls waiting to be sent, in order.
    @inlinable public var waiting: [(id: ID, call: Call)] { storedWaiting }

    @inlinable
    public init() {}

    /// Whether a call is outstanding.
    @inlinable
    public var isBusy: Bool { outstanding != nil }

    /// Whether nothing is outstanding and nothing waits.
    @inlinable
    public var isIdle: Bool { outstanding == nil && storedWaiting.isEmpty }

    /// How many calls are outstanding or waiting.
    @inlinable
    public var count: Int { storedWaiting.count + (outstanding == nil ? 0 : 1) }

    /// Queues a call, last (or first: a call sent again goes before the others).
    @inlinable
    public mutating func enqueue(_ call: Call, id: ID, first: Bool = false) {
        if first { storedWaiting.insert((id, call), at: 0) } else { storedWaiting.append((id, call)) }
    }

    /// The next call to send, when none is outstanding: it is outstanding from `now`.
    @inlinable
    public mutating func next(at now: Duration) -> (id: ID, call: Call)? {
        guard outstanding == nil, !storedWaiting.isEmpty else { return nil }
        let next = storedWaiting.removeFirst()
        storedOutstanding = Outstanding(id: next.id, call: next.call, sentAt: now)
        return next
    }

    /// A call sent without queueing (one the relay passes on as it came): outstanding from `now`, in place of any
    /// other (whose answer then finds no call).
    @inlinable
    public mutating func sent(_ call: Call, id: ID, at now: Duration) {
        storedOutstanding = Outstanding(id: id, call: call, sentAt: now)
    }

    /// The outstanding call an answer with `id` is for, taken off; `nil` when `id` names no outstanding call.
    @inlinable
    public mutating func answered(_ id: ID) -> Call? {
        guard let call = storedOutstanding, call.id == id else { return nil }
        storedOutstanding = nil
        return call.call
    }

    /// The outstanding call, taken off when it has waited `timeout` by `now`.
    @inlinable
    public mutating func expired(at now: Duration, after timeout: Duration) -> (id: ID, call: Call)? {
        guard let call = storedOutstanding, now - call.sentAt >= timeout else { return nil }
        storedOutstanding = nil
        return (call.id, call.call)
    }

    /// Takes every call off, the outstanding one first: the connection is gone.
    @inlinable
    public mutating func removeAll() -> [(id: ID, call: Call)] {
        var all = storedOutstanding.map { [($0.id, $0.call)] } ?? []
        all += storedWaiting
        storedOutstanding = nil
        storedWaiting = []
        return all
    }

    /// Changes the calls still waiting (a value learnt meanwhile goes into them).
    @inlinable
    public mutating func updateWaiting(_ body: (inout Call) -> Void) {
        for index in storedWaiting.indices { body(&storedWaiting[index].call) }
    }

    /// Whether the outstanding call or a waiting one satisfies `predicate`.
    @inlinable
    public func contains(where predicate: (Call) -> Bool) -> Bool {
        if let storedOutstanding, predicate(storedOutstanding.call) { return true }
        return storedWaiting.contains { predicate($0.call) }
    }
}
