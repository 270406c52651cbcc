import Testing

@testable import Relay

/// A storm's handshakes run at most a loop's share at once; the rest wait in the order they came.
@Suite("Handshake slots")
struct HandshakeSlotsTests {
    @Test("beyond the bound connections wait, in order, and each ended handshake lets exactly one in")
    func bounded() {
        var slots = HandshakeSlots<Int>()
        var started: [Int] = []
        for waiter in 1...5 where slots.arrive(waiter, limit: 2) { started.append(waiter) }
        #expect(started == [1, 2])
        #expect(slots.inFlight == 2 && slots.waitingCount == 3)
        #expect(slots.finish(limit: 2) == 3)
        #expect(slots.finish(limit: 2) == 4)
        #expect(slots.inFlight == 2 && slots.waitingCount == 1)
        #expect(slots.finish(limit: 2) == 5)
        #expect(slots.finish(limit: 2) == nil)
        #expect(slots.finish(limit: 2) == nil)
        #expect(slots.inFlight == 0 && slots.waitingCount == 0)
        // Free again: a newcomer starts at once.
        let startsAtOnce = slots.arrive(6, limit: 2)
        #expect(startsAtOnce)
    }

    @Test("no bound (0) starts every handshake; a lowered bound lets the next in only once below it")
    func unboundedAndLowered() {
        var slots = HandshakeSlots<Int>()
        var started = 0
        for waiter in 1...100 where slots.arrive(waiter, limit: 0) { started += 1 }
        #expect(started == 100 && slots.inFlight == 100 && slots.waitingCount == 0)
        var bounded = HandshakeSlots<Int>()
        var admitted: [Int] = []
        for waiter in 1...5 where bounded.arrive(waiter, limit: 4) { admitted.append(waiter) }
        #expect(admitted == [1, 2, 3, 4])
        // A reload lowered the bound to 2: two handshakes must end before the waiting one starts.
        #expect(bounded.finish(limit: 2) == nil)
        #expect(bounded.finish(limit: 2) == nil)
        #expect(bounded.finish(limit: 2) == 5)
    }
}
