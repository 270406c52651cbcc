import NIOCore
import NIOWebSocket
import OCPP
import Testing

@testable import Relay

/// The grace of a lost upstream, through the session core: which losses keep the charger, what happens to its
/// messages meanwhile, and how the grace ends (a new connection, its time running out, a refusal, the charger
/// leaving).
@Suite("Upstream grace")
struct UpstreamGraceTests {
    static let limits = UpstreamGrace.Limits(length: .seconds(30))

    static func core(translated: Bool = false) -> SessionCore {
        SessionCore(
            legs: SessionLegs(drainsUpstream: translated, graceful: true),
            translated: translated,
            mirrored: false,
            grace: limits
        )
    }

    static func message(_ text: String) -> (Outgoing, RPCFrameHeader?) {
        let data = ByteBuffer(string: text)
        return (.made(data, .text), data.withUnsafeReadableBytes { RPCFrameHeader.scan($0) })
    }

    /// Sends `text` for the upstream through the core's grace.
    static func send(_ core: inout SessionCore, _ text: String) -> UpstreamGrace.Sending {
        let (message, header) = message(text)
        return core.sending(message, header: header)
    }

    static let closedForRestart = SessionLegs.Event.closeReceived(.upstream(0), code: 1012, reason: "restart")

    @Test("a backend restarting keeps the charger: the close is answered upstream only, and a redial is scheduled")
    func keepsCharger() {
        var core = Self.core()
        let actions = core.handle(.received(.upstream(0), .close(code: 1012, reason: "restart"), now: 0))
        #expect(
            actions == [
                .leg(.recordClose(.upstream(0), byPeer: true, code: 1012, reason: "restart")),
                .leg(.closeAndDisconnect(.upstream(0), code: 1012)),
                .grace(.begin(.seconds(30), why: "closed with 1012 (restart)")),
                .grace(.scheduleRedial(Self.limits.firstRedial)),
            ]
        )
        #expect(core.redialing)
        #expect(core.legs.isOpen(.charger))
        // The charger's messages still go to the upstream (which holds them), and its Heartbeat is the relay's.
        #expect(
            core.handle(.received(.charger, .text, now: 0)) == [
                .deliver(.charger, offerToMirrors: false, route: .forward(to: .upstream(0)))
            ]
        )
        #expect(core.handle(.received(.charger, .heartbeat(id: "h1"), now: 0)) == [.answerHeartbeat(id: "h1")])
    }

    @Test("closes meant for this charger (1000, 1008) and lost upstreams without a grace reach it as before")
    func notForGrace() {
        var core = Self.core()
        let actions = core.handle(.legs(.closeReceived(.upstream(0), code: 1008, reason: "policy")))
        #expect(actions.contains(.afterFlush(.legs(.close(.charger, code: 1008, reason: "policy")))))
        #expect(!core.redialing)
        var plain = SessionCore(legs: SessionLegs(), translated: false, mirrored: false)
        #expect(
            plain.handle(.legs(.inactive(.upstream(0)))).contains(
                .afterFlush(.legs(.lostMirrored(.charger, because: .upstream(0))))
            )
        )
        #expect(
            plain.handle(.received(.charger, .heartbeat(id: "h"), now: 0)) == [
                .deliver(.charger, offerToMirrors: false, route: .forward(to: nil))
            ],
            "no grace: a Heartbeat is a text message like any other"
        )
    }

    @Test("a redial delivers the unanswered calls first, then what was held, in order; answers are not resent")
    func redialDelivers() {
        var core = Self.core()
        #expect(Self.send(&core, #"[2,"a","MeterValues",{}]"#) == .send)
        #expect(Self.send(&core, #"[2,"b","StatusNotification",{}]"#) == .send)
        core.upstreamAnswered(Self.message(#"[3,"a",{}]"#).1!.messageIDHash)
        _ = core.handle(.legs(.inactive(.upstream(0))))
        #expect(core.redialing)
        #expect(Self.send(&core, #"[2,"c","MeterValues",{}]"#) == .held)
        #expect(Self.send(&core, #"[3,"x",{}]"#) != .held, "an answer to a call of the lost connection is dropped")
        #expect(Self.send(&core, #"[2,"d","StopTransaction",{}]"#) == .held)
        #expect(core.handle(.grace(.redialDue)) == [.grace(.dial(attempt: 1))])
        #expect(core.handle(.grace(.redialDue)) == [], "one dial at a time")
        let actions = core.handle(.grace(.dialed(.accepted)))
        #expect(
            actions == [
                .grace(.cancelTimers),
                .grace(
                    .adopt(
                        resend: [Self.message(#"[2,"b","StatusNotification",{}]"#).0],
                        held: [
                            Self.message(#"[2,"c","MeterValues",{}]"#).0,
                            Self.message(#"[2,"d","StopTransaction",{}]"#).0,
                        ],
                        attempts: 1
                    )
                ),
            ]
        )
        #expect(!core.redialing)
        #expect(core.legs.isOpen(.upstream(0)), "the new connection is the primary upstream")
        #expect(Self.send(&core, #"[2,"e","Heartbeat",{}]"#) == .send)
    }

    @Test("failed redials back off, doubling up to the limit, jittered over the upper half")
    func backoff() {
        var core = Self.core()
        _ = core.handle(.legs(Self.closedForRestart))
        var waits: [ClosedRange<Duration>] = []
        for _ in 0..<6 {
            _ = core.handle(.grace(.redialDue))
            for case .grace(.scheduleRedial(let range)) in core.handle(.grace(.dialed(.failed("refused")))) {
                waits.append(range)
            }
        }
        #expect(waits.map(\.upperBound) == [1, 2, 4, 5, 5, 5].map { .seconds($0) })
        #expect(waits.allSatisfy { $0.lowerBound * 2 == $0.upperBound })
        #expect(
            core.handle(.grace(.dialed(.refused(status: 503, reason: "Service Unavailable")))) == [],
            "a result with no dial under way is ignored"
        )
    }

    @Test("the grace running out closes the charger as the upstream was, and releases the upstream")
    func expires() {
        var core = Self.core()
        _ = core.handle(.legs(Self.closedForRestart))
        #expect(!core.handle(.legs(.inactive(.upstream(0)))).contains(.releaseUpstream), "not while redialling")
        #expect(Self.send(&core, #"[2,"c","MeterValues",{}]"#) == .held)
        let actions = core.handle(.grace(.expired))
        #expect(actions.first == .grace(.cancelTimers))
        #expect(
            actions.contains(
                .grace(
                    .giveUp(
                        resume: .close(.charger, code: 1012, reason: "restart"),
                        reason: UpstreamGrace.expiredReason(.seconds(30), 0),
                        dropped: 1
                    )
                )
            )
        )
        #expect(actions.contains(.leg(.sendClose(.charger, code: 1012, reason: "restart"))))
        #expect(actions.last == .releaseUpstream)
        #expect(core.handle(.grace(.dialed(.accepted))) == [.grace(.discard)], "a late connection is closed")
    }

    @Test("a lost connection's grace running out drops the charger's connection the same way")
    func lostExpires() {
        var core = Self.core()
        _ = core.handle(.legs(.inactive(.upstream(0))))
        let actions = core.handle(.grace(.expired))
        #expect(actions.contains(.leg(.disconnect(.charger))))
        #expect(
            actions.contains(
                .leg(.recordClose(.charger, byPeer: false, code: 1006, reason: "upstream connection lost"))
            )
        )
    }

    @Test("a redial refused with 401, 403 or 404 closes the charger with 1008 and the status; others retry")
    func refused() {
        var core = Self.core()
        _ = core.handle(.legs(Self.closedForRestart))
        _ = core.handle(.grace(.redialDue))
        let retry = core.handle(.grace(.dialed(.refused(status: 503, reason: "Service Unavailable"))))
        #expect(retry.count == 1)
        _ = core.handle(.grace(.redialDue))
        let actions = core.handle(.grace(.dialed(.refused(status: 401, reason: "Unauthorized"))))
        let reason = "upstream refused the reconnection: 401 Unauthorized"
        #expect(actions.contains(.grace(.refuse(reason: reason, dropped: 0))))
        #expect(actions.contains(.leg(.sendClose(.charger, code: 1008, reason: reason))))
        #expect(!core.redialing)
    }

    @Test("a charger leaving (or replaced) during the grace stops the redials and releases the upstream")
    func chargerLeaves() {
        var core = Self.core()
        _ = core.handle(.legs(Self.closedForRestart))
        _ = core.handle(.legs(.inactive(.upstream(0))))
        let actions = core.handle(.legs(.replaced(code: 1000, reason: "replaced by a newer connection")))
        #expect(actions.contains(.grace(.abandon(dropped: 0))))
        #expect(actions.last == .releaseUpstream)
        #expect(!core.redialing)
    }

    @Test("what is held is bounded: calls over the limit are dropped, so the charger's retry applies")
    func bounded() {
        var grace = UpstreamGrace(limits: UpstreamGrace.Limits(length: .seconds(1), maxHeld: 2))
        _ = grace.handle(.lost(resume: .inactive(.charger), why: "lost"))
        let (call, header) = Self.message(#"[2,"c","MeterValues",{}]"#)
        #expect(grace.sending(call, header: header) == .held)
        #expect(grace.sending(call, header: header) == .held)
        guard case .dropped = grace.sending(call, header: header) else {
            Issue.record("a third call must not be held")
            return
        }
        #expect(grace.held.count == 2)
    }

    @Test("redials across the relay take slots 1/rate apart; an unpaced relay dials at once")
    func pacing() {
        var schedule = RedialPacer.Schedule(perSecond: 10)
        #expect(schedule.take(earliest: 1_000) == 1_000)
        #expect(schedule.take(earliest: 1_000) == 100_001_000)
        #expect(schedule.take(earliest: 50_000_000) == 200_001_000)
        #expect(schedule.take(earliest: 900_000_000) == 900_000_000, "a free moment is taken as it is")
        var unpaced = RedialPacer.Schedule(perSecond: 0)
        #expect(unpaced.take(earliest: 5) == 5)
        #expect(unpaced.take(earliest: 5) == 5)
    }
}
