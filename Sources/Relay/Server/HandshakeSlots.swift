import NIOCore

/// The handshakes one event loop carries out at once (`limits.handshakes`, shared out among the loops): in a
/// reconnect storm the handshakes beyond the bound wait in the order they came, and each one that ends (its session
/// started, or its connection gone) lets the next one in. Pure.
///
/// Why: a handshake's buffers, parsers and dial are short-lived, a session's objects are not; when thousands of
/// handshakes run at once their memory lies between the sessions' and the allocator can give little of it back
/// (4,000 chargers connecting at once left the relay 28 KiB per idle connection, 200 at a time 11.5).
struct HandshakeSlots<Waiter> {
    private(set) var inFlight = 0
    private var waiting = CircularBuffer<Waiter>()

    var waitingCount: Int { waiting.count }

    /// A connection arrives: true when its handshake may start now (it holds a slot), false when it waits.
    /// `limit` 0: no bound.
    mutating func arrive(_ waiter: Waiter, limit: Int) -> Bool {
        guard limit > 0, inFlight >= limit else {
            inFlight += 1
            return true
        }
        waiting.append(waiter)
        return false
    }

    /// A handshake holding a slot ended: the waiter that takes its slot, if one waits (and the bound, which a reload
    /// may have lowered, allows it).
    mutating func finish(limit: Int) -> Waiter? {
        inFlight -= 1
        guard !waiting.isEmpty, limit == 0 || inFlight < limit else { return nil }
        inFlight += 1
        return waiting.removeFirst()
    }
}
