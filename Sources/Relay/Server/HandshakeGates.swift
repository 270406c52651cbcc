import NIOCore

/// Each event loop's ``HandshakeSlots`` carried out (`limits.handshakes`, shared out among the loops): a connection
/// beyond the bound has its reads paused, and its handshake (with its `timeouts.handshake`) starts when a slot is
/// freed. Made at start for the loops of the group; each gate is touched only on its loop.
final class HandshakeGates: @unchecked Sendable {
    private final class Gate {
        var slots = HandshakeSlots<Waiter>()
    }

    private struct Waiter {
        let channel: any Channel
        let handshake: Handshake
        let start: () -> Void
    }

    /// Never changed after `init`: read from every loop.
    private let gates: [ObjectIdentifier: Gate]

    init(group: any EventLoopGroup) {
        var gates: [ObjectIdentifier: Gate] = [:]
        for loop in group.makeIterator() { gates[ObjectIdentifier(loop)] = Gate() }
        self.gates = gates
    }

    /// One loop's share of the relay's bound (0: none).
    private func share(_ limit: Int) -> Int {
        limit == 0 ? 0 : max(1, (limit + gates.count - 1) / max(1, gates.count))
    }

    /// A connection arrived on its loop: its handshake starts now (`start`), or when a slot is freed.
    func arrive(_ channel: any Channel, _ handshake: Handshake, limit: Int, start: @escaping () -> Void) {
        guard let gate = gates[ObjectIdentifier(channel.eventLoop)] else { return start() }
        if gate.slots.arrive(Waiter(channel: channel, handshake: handshake, start: start), limit: share(limit)) {
            handshake.holdsSlot = true
            start()
        } else {
            try? channel.syncOptions?.setOption(.autoRead, value: false)
        }
    }

    /// The handshake of `handshake` ended (its session started, or its connection closed): when it held a slot, the
    /// next waiting connection that is still open takes it.
    func release(_ channel: any Channel, _ handshake: Handshake, limit: Int) {
        guard handshake.holdsSlot, let gate = gates[ObjectIdentifier(channel.eventLoop)] else { return }
        handshake.holdsSlot = false
        while let waiter = gate.slots.finish(limit: share(limit)) {
            // A connection that closed while it waited passes the slot on.
            guard !waiter.handshake.closed else { continue }
            waiter.handshake.holdsSlot = true
            try? waiter.channel.syncOptions?.setOption(.autoRead, value: true)
            waiter.start()
            return
        }
    }
}
