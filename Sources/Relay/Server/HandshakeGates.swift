import NIOCore
import RelayObservability

/// Each event loop's ``HandshakeSlots`` carried out (`limits.handshakes`, shared out among the loops): a charger
/// whose request is in waits for a slot before its upstream is dialled, and holds it until its session starts or
/// its connection closes. Slots are taken once the request is in, so a client that never sends one (slowloris)
/// cannot hold one. Made at start for the loops of the group; each gate is touched only on its loop.
final class HandshakeGates: @unchecked Sendable {
    private final class Gate {
        var slots = HandshakeSlots<Handshake>()
    }

    /// Never changed after `init`: read from every loop.
    private let gates: [ObjectIdentifier: Gate]
    private let metrics: RelayMetrics

    init(group: any EventLoopGroup, metrics: RelayMetrics) {
        var gates: [ObjectIdentifier: Gate] = [:]
        for loop in group.makeIterator() { gates[ObjectIdentifier(loop)] = Gate() }
        self.gates = gates
        self.metrics = metrics
    }

    /// One loop's share of the relay's bound (0: none).
    private func share(_ limit: Int) -> Int {
        limit == 0 ? 0 : max(1, (limit + gates.count - 1) / max(1, gates.count))
    }

    /// Succeeds once `handshake` holds a slot of its loop: at once, or when a handshake ahead of it ends.
    func acquire(_ channel: any Channel, _ handshake: Handshake, limit: Int) -> EventLoopFuture<Void> {
        guard !handshake.holdsSlot, let gate = gates[ObjectIdentifier(channel.eventLoop)] else {
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        if gate.slots.arrive(handshake, limit: share(limit)) {
            handshake.holdsSlot = true
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        handshake.slotWaiter = promise
        metrics.handshakeWaiting(true)
        return promise.futureResult
    }

    /// The handshake ended: its session started (`closed` false) or its connection closed. A slot it held goes to
    /// the next waiting handshake whose connection is still open; a handshake still waiting fails.
    func release(_ channel: any Channel, _ handshake: Handshake, closed: Bool, limit: Int) {
        if closed {
            if let waiter = handshake.slotWaiter {
                handshake.slotWaiter = nil
                metrics.handshakeWaiting(false)
                waiter.fail(ChannelError.ioOnClosedChannel)
            }
        }
        guard handshake.holdsSlot, let gate = gates[ObjectIdentifier(channel.eventLoop)] else { return }
        handshake.holdsSlot = false
        while let next = gate.slots.finish(limit: share(limit)) {
            // A connection that closed while it waited (its waiter gone) passes the slot on.
            guard let waiter = next.slotWaiter else { continue }
            next.holdsSlot = true
            next.slotWaiter = nil
            metrics.handshakeWaiting(false)
            waiter.succeed()
            return
        }
    }
}
