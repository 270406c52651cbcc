import Testing

@testable import Relay

/// The session's decisions, event by event, without a channel: where messages go, the budget, the drain of a
/// translated session and the primary upstream's release.
@Suite("Session core")
struct SessionCoreTests {
    @Test("messages: forwarded to the open other leg, recorded only when it is closing, not taken once closed")
    func routing() {
        var core = SessionCore(legs: SessionLegs(), translated: false, mirrored: false)
        #expect(
            core.handle(.received(.charger, .text, now: 0)) == [
                .deliver(.charger, offerToMirrors: false, route: .forward(to: .upstream(0)))
            ]
        )
        #expect(core.handle(.received(.upstream(0), .ping, now: 0)) == [.pong(.upstream(0))])
        #expect(core.handle(.received(.upstream(0), .pong, now: 0)) == [])
        // The relay closes the upstream: the charger's messages are still taken, and recorded only.
        _ = core.handle(.legs(.close(.upstream(0), code: 1001, reason: "going")))
        #expect(
            core.handle(.received(.charger, .binary, now: 0)) == [
                .deliver(.charger, offerToMirrors: false, route: .forward(to: nil))
            ]
        )
        #expect(core.handle(.received(.upstream(0), .ping, now: 0)) == [], "a closing leg gets no pong")
    }

    @Test("mirrors see text from the charger, and the primary's only when it is not translated")
    func mirrors() {
        var plain = SessionCore(legs: SessionLegs(), translated: false, mirrored: true)
        #expect(
            plain.handle(.received(.upstream(0), .text, now: 0)) == [
                .deliver(.upstream(0), offerToMirrors: true, route: .forward(to: .charger))
            ]
        )
        #expect(
            plain.handle(.received(.charger, .binary, now: 0)) == [
                .deliver(.charger, offerToMirrors: false, route: .forward(to: .upstream(0)))
            ]
        )
        var translated = SessionCore(legs: SessionLegs(drainsUpstream: true), translated: true, mirrored: true)
        #expect(
            translated.handle(.received(.upstream(0), .text, now: 0)) == [
                .deliver(.upstream(0), offerToMirrors: false, route: .translate)
            ]
        )
        #expect(
            translated.handle(.received(.charger, .text, now: 0)) == [
                .deliver(.charger, offerToMirrors: true, route: .translate)
            ]
        )
    }

    @Test("an empty budget holds the charger's reads until it refills, reported once a minute")
    func budget() {
        let rate = MessageRate(perSecond: 1, burst: 1)
        var core = SessionCore(
            legs: SessionLegs(),
            budget: MessageBudget(rate: rate, now: 0),
            translated: false,
            mirrored: false
        )
        let deliver = SessionCore.Action.deliver(.charger, offerToMirrors: false, route: .forward(to: .upstream(0)))
        #expect(core.handle(.received(.charger, .text, now: 0)) == [deliver])
        #expect(
            core.handle(.received(.charger, .text, now: 0))
                == [.holdChargerReads(resumeAfter: 1_000_000_000, report: true), deliver]
        )
        #expect(
            core.handle(.received(.charger, .text, now: 1_000_000_000))
                == [.holdChargerReads(resumeAfter: 1_000_000_000, report: false), deliver]
        )
        #expect(
            core.handle(.received(.upstream(0), .text, now: 0)) == [
                .deliver(.upstream(0), offerToMirrors: false, route: .forward(to: .charger))
            ],
            "the backend has no budget"
        )
    }

    @Test("a translated session's charger goes: the drain starts after the flush, ends once nothing is owed")
    func drain() {
        var core = SessionCore(legs: SessionLegs(drainsUpstream: true), translated: true, mirrored: false)
        let actions = core.handle(.received(.charger, .close(code: 1000, reason: "bye"), now: 0))
        let upstreamClose = SessionLegs.Event.close(.upstream(0), code: 1000, reason: "bye")
        #expect(actions.last == .afterFlush(.drainCanBegin(then: upstreamClose)))
        #expect(core.handle(.drainCanBegin(then: upstreamClose)) == [.startDrainTimer, .tellTranslationChargerLeft])
        #expect(core.draining == upstreamClose)
        #expect(
            core.handle(.drainCanBegin(then: upstreamClose)) == [
                .leg(.recordClose(.upstream(0), byPeer: false, code: 1000, reason: "bye")),
                .leg(.sendClose(.upstream(0), code: 1000, reason: "bye")), .leg(.startCloseTimer(.upstream(0))),
            ],
            "a second drain does not start twice"
        )
    }

    @Test("the drain's bound: calls left undelivered are reported, then the upstream closes; a late end is ignored")
    func drainTimesOut() {
        var core = SessionCore(legs: SessionLegs(drainsUpstream: true), translated: true, mirrored: false)
        let upstreamClose = SessionLegs.Event.close(.upstream(0), code: 1000, reason: "bye")
        _ = core.handle(.received(.charger, .close(code: 1000, reason: "bye"), now: 0))
        _ = core.handle(.drainCanBegin(then: upstreamClose))
        #expect(
            core.handle(.drainEnded(undelivered: 2)) == [
                .cancelDrainTimer, .reportUndelivered(2), .afterFlush(.legs(upstreamClose)),
            ]
        )
        #expect(core.handle(.drainEnded(undelivered: 0)) == [], "the timer after the translation's own end")
        #expect(!core.upstreamReleased)
        let closing = core.handle(.legs(upstreamClose))
        #expect(!closing.contains(.releaseUpstream), "not while the primary closes: the backend would see two")
        #expect(core.handle(.legs(.inactive(.upstream(0)))).last == .releaseUpstream, "once its connection is gone")
        #expect(core.upstreamReleased)
        #expect(core.handle(.legs(.inactive(.upstream(0)))).contains(.releaseUpstream) == false, "released once")
    }

    @Test("a session without translation passes the charger's close to the upstream after the flush, no drain")
    func noDrain() {
        var core = SessionCore(legs: SessionLegs(), translated: false, mirrored: false)
        let actions = core.handle(.received(.charger, .close(code: 4000, reason: "x"), now: 0))
        #expect(actions.last == .afterFlush(.legs(.close(.upstream(0), code: 4000, reason: "x"))))
        #expect(!actions.contains(.startDrainTimer))
    }
}
