import Testing

@testable import Relay

/// The legs' state machine, event by event, without a channel.
@Suite("Session legs")
struct SessionLegsTests {
    typealias Action = SessionLegs.Action

    @Test("a peer's close is recorded, echoed, and mirrored on the other leg after the flush, with its code")
    func peerCloseMirrored() {
        var legs = SessionLegs()
        #expect(
            legs.handle(.closeReceived(.charger, code: 4000, reason: "bye")) == [
                .recordClose(.charger, byPeer: true, code: 4000, reason: "bye"),
                .closeAndDisconnect(.charger, code: 4000),
                .afterFlush(.close(.upstream(0), code: 4000, reason: "bye")),
            ]
        )
        #expect(legs.charger.state == .closed && legs.isOpen(.upstream(0)))
        #expect(!legs.takes(from: .charger))
        #expect(legs.forwardTarget(from: .upstream(0)) == nil, "nothing goes to a closed charger")
        // The mirrored close: recorded as the relay's, sent, bounded by the close timer.
        #expect(
            legs.handle(.close(.upstream(0), code: 4000, reason: "bye")) == [
                .recordClose(.upstream(0), byPeer: false, code: 4000, reason: "bye"),
                .sendClose(.upstream(0), code: 4000, reason: "bye"),
                .startCloseTimer(.upstream(0)),
            ]
        )
        #expect(legs.upstreams[0].state == .closeSent)
        // Upstream answers: done; a second close from it is ignored.
        #expect(legs.handle(.closeReceived(.upstream(0), code: 4000, reason: "")) == [.disconnect(.upstream(0))])
        #expect(legs.handle(.closeReceived(.upstream(0), code: 4000, reason: "")) == [])
        #expect(legs.handle(.closeTimedOut(.upstream(0))) == [], "the timer finds the leg closed")
        #expect(legs.handle(.inactive(.upstream(0))) == [])
        #expect(legs.handle(.inactive(.charger)) == [.end])
        #expect(legs.ended)
    }

    @Test("the primary upstream's close is mirrored to the charger; a close without a code is echoed without one")
    func upstreamCloseMirrored() {
        var legs = SessionLegs()
        #expect(
            legs.handle(.closeReceived(.upstream(0), code: 1005, reason: "")) == [
                .recordClose(.upstream(0), byPeer: true, code: 1005, reason: ""),
                .closeAndDisconnect(.upstream(0), code: nil),
                .afterFlush(.close(.charger, code: 1005, reason: "")),
            ]
        )
        // 1005, 1006 and 1015 are never sent: the mirrored close carries no code and is recorded as 1005.
        #expect(
            legs.handle(.close(.charger, code: 1005, reason: "")) == [
                .recordClose(.charger, byPeer: false, code: 1005, reason: ""),
                .sendClose(.charger, code: nil, reason: ""),
                .startCloseTimer(.charger),
            ]
        )
    }

    @Test("a peer that never answers the relay's close is disconnected when the timer fires")
    func closeTimeout() {
        var legs = SessionLegs()
        _ = legs.handle(.close(.charger, code: 1001, reason: "relay shutting down"))
        #expect(legs.handle(.closeTimedOut(.charger)) == [.disconnect(.charger)])
        #expect(legs.charger.state == .closed)
        #expect(legs.handle(.close(.charger, code: 1001, reason: "again")) == [], "a closed leg is not closed twice")
    }

    @Test("a lost connection is recorded as 1006 and mirrored as lost (no close frame); the primary's is counted")
    func lostMirrored() {
        var legs = SessionLegs()
        #expect(
            legs.handle(.inactive(.upstream(0))) == [
                .recordClose(.upstream(0), byPeer: true, code: 1006, reason: "connection lost"),
                .upstreamLost,
                .afterFlush(.lostMirrored(.charger, because: .upstream(0))),
            ]
        )
        #expect(
            legs.handle(.lostMirrored(.charger, because: .upstream(0))) == [
                .recordClose(.charger, byPeer: false, code: 1006, reason: "upstream connection lost"),
                .disconnect(.charger),
            ]
        )
        #expect(legs.handle(.inactive(.charger)) == [.end])
        // A charger lost first: its upstream is dropped the same way; no upstream failure counted.
        var other = SessionLegs()
        #expect(
            other.handle(.inactive(.charger)) == [
                .recordClose(.charger, byPeer: true, code: 1006, reason: "connection lost"),
                .afterFlush(.lostMirrored(.upstream(0), because: .charger)),
            ]
        )
        #expect(other.handle(.inactive(.upstream(0))).last == .end)
        #expect(other.handle(.lostMirrored(.upstream(0), because: .charger)) == [], "already gone")
    }

    @Test("a frame too large closes its leg with 1009, a protocol violation with 1002; the other leg gets 1001")
    func failures() {
        var legs = SessionLegs()
        let message = "message larger than the 65536-byte limit; closed with 1009"
        #expect(
            legs.handle(.failed(.charger, .tooLarge(fragmented: false, limit: 65536))) == [
                .recordError(.charger, message),
                .recordClose(.charger, byPeer: false, code: 1009, reason: message),
                .closeAndDisconnect(.charger, code: 1009),
                .afterFlush(
                    .close(.upstream(0), code: 1001, reason: "charger connection closed: message too large")
                ),
            ]
        )
        var violated = SessionLegs()
        let actions = violated.handle(.failed(.upstream(0), .protocolViolation("unknown opcode 3")))
        #expect(actions.contains(.closeAndDisconnect(.upstream(0), code: 1002)))
        #expect(
            actions.last
                == .afterFlush(.close(.charger, code: 1001, reason: "upstream connection closed: protocol error"))
        )
        // An I/O error only records: the connection's end follows as inactive.
        var io = SessionLegs()
        #expect(io.handle(.failed(.charger, .io("connection reset"))) == [.recordError(.charger, "connection reset")])
        #expect(io.isOpen(.charger))
    }

    @Test(
        "liveness: a leg silent for an interval (four checks) is pinged, reset three checks later; anything heard keeps it"
    )
    func liveness() {
        var legs = SessionLegs(pingInterval: .seconds(30))
        for _ in 0..<3 { #expect(legs.handle(.livenessCheck) == []) }
        legs.heard(.upstream(0))
        #expect(legs.handle(.livenessCheck) == [.ping(.charger)], "the charger was silent for four checks")
        for _ in 0..<2 { #expect(legs.handle(.livenessCheck) == []) }
        // Three checks after its ping, the silent charger is reset (1.75 intervals after its last frame at most);
        // the upstream, heard one check later than the charger, gets its ping now.
        #expect(
            legs.handle(.livenessCheck) == [
                .recordError(.charger, "no answer to a ping within 30 s; connection reset"),
                .reset(.charger), .ping(.upstream(0)),
            ]
        )
        // The charger's connection goes; the upstream answers its ping, then closes: legs not open are not checked.
        _ = legs.handle(.inactive(.charger))
        legs.heard(.upstream(0))
        _ = legs.handle(.close(.upstream(0), code: 1001, reason: ""))
        for _ in 0..<8 { #expect(legs.handle(.livenessCheck) == []) }
    }

    @Test(
        "messages go charger ↔ primary; other upstreams are neither forwarded to nor from, and close with the charger"
    )
    func severalUpstreams() {
        var legs = SessionLegs(upstreams: 2)
        #expect(legs.forwardTarget(from: .charger) == .upstream(0))
        #expect(legs.forwardTarget(from: .upstream(0)) == .charger)
        #expect(legs.forwardTarget(from: .upstream(1)) == nil)
        #expect(SessionLegs.source(into: .upstream(1)) == nil)
        // A second upstream that goes away affects nobody.
        #expect(
            legs.handle(.closeReceived(.upstream(1), code: 1000, reason: "")) == [
                .recordClose(.upstream(1), byPeer: true, code: 1000, reason: ""),
                .closeAndDisconnect(.upstream(1), code: 1000),
            ]
        )
        #expect(legs.isOpen(.charger) && legs.isOpen(.upstream(0)))
        // The charger's close reaches every upstream still open.
        let actions = legs.handle(.closeReceived(.charger, code: 1000, reason: ""))
        #expect(
            actions.suffix(2) == [
                .afterFlush(.close(.upstream(0), code: 1000, reason: "")),
                .afterFlush(.close(.upstream(1), code: 1000, reason: "")),
            ]
        )
        for case .afterFlush(let event) in actions { _ = legs.handle(event) }
        #expect(legs.upstreams.map(\.state) == [.closeSent, .closed])
        #expect(legs.handle(.inactive(.charger)) == [])
        #expect(legs.handle(.inactive(.upstream(0))) == [])
        #expect(legs.handle(.inactive(.upstream(1))) == [.end], "the session ends with its last leg")
    }
}

@Suite("Message budget")
struct MessageBudgetTests {
    @Test(
        "a burst is allowed; beyond it reads are held until a token is back; the exhaustion is reported once a minute"
    )
    func tokenBucket() {
        let second: UInt64 = 1_000_000_000
        var budget = MessageBudget(rate: MessageRate(perSecond: 2, burst: 3), now: 10 * second)
        for _ in 0..<3 { #expect(budget.spend(at: 10 * second) == .spent) }
        #expect(budget.spend(at: 10 * second) == .exhausted(resumeAfter: 500_000_000, report: true))
        // Half a second later one token is back and spent at once; the next holds again, unreported.
        #expect(budget.spend(at: 10 * second + second / 2) == .exhausted(resumeAfter: 500_000_000, report: false))
        // A long quiet refills to the burst, never beyond.
        for _ in 0..<3 { #expect(budget.spend(at: 100 * second) == .spent) }
        #expect(budget.spend(at: 100 * second) == .exhausted(resumeAfter: 500_000_000, report: true))
    }
}

/// A translated session's charger going: the primary upstream waits for the drain.
@Suite("Session legs with a translation")
struct SessionLegsDrainTests {
    @Test("the charger's close, loss or protocol error reaches the primary upstream after the drain")
    func drains() {
        var legs = SessionLegs(drainsUpstream: true)
        #expect(
            legs.handle(.closeReceived(.charger, code: 1000, reason: "bye")) == [
                .recordClose(.charger, byPeer: true, code: 1000, reason: "bye"),
                .closeAndDisconnect(.charger, code: 1000),
                .drain(then: .close(.upstream(0), code: 1000, reason: "bye")),
            ]
        )
        var lost = SessionLegs(drainsUpstream: true)
        #expect(
            lost.handle(.inactive(.charger)) == [
                .recordClose(.charger, byPeer: true, code: 1006, reason: "connection lost"),
                .drain(then: .lostMirrored(.upstream(0), because: .charger)),
            ]
        )
        var broken = SessionLegs(drainsUpstream: true)
        #expect(
            broken.handle(.failed(.charger, .protocolViolation("masking"))).last
                == .drain(then: .close(.upstream(0), code: 1001, reason: "charger connection closed: protocol error"))
        )
        // The upstream's own close reaches the charger as before: nothing is owed a closed charger.
        var upstream = SessionLegs(drainsUpstream: true)
        #expect(
            upstream.handle(.closeReceived(.upstream(0), code: 1001, reason: "")).last
                == .afterFlush(.close(.charger, code: 1001, reason: ""))
        )
    }

    @Test("a newer connection closes the charger's leg at once and the upstream after the drain")
    func replaced() {
        var legs = SessionLegs(drainsUpstream: true)
        #expect(
            legs.handle(.replaced(code: 1000, reason: "replaced")) == [
                .recordClose(.charger, byPeer: false, code: 1000, reason: "replaced"),
                .sendClose(.charger, code: 1000, reason: "replaced"),
                .startCloseTimer(.charger),
                .drain(then: .close(.upstream(0), code: 1000, reason: "replaced")),
            ]
        )
        // Without a translation nothing is owed: both close as before.
        var plain = SessionLegs()
        #expect(
            plain.handle(.replaced(code: 1000, reason: "r")).last
                == .afterFlush(.close(.upstream(0), code: 1000, reason: "r"))
        )
    }
}
