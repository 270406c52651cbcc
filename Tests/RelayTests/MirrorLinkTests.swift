import OCPPTransport
import RelayRecording
import Testing

@testable import Relay
@testable import RelayConfig

/// A mirror's decisions, message by message, without a channel.
@Suite("Mirror link")
struct MirrorLinkTests {
    typealias Action = MirrorLink.Action

    static func settings(
        mode: MirrorSettings.Mode = .shadow,
        commands: Set<String> = [],
        queue: Int = 2
    )
        -> MirrorSettings
    {
        MirrorSettings(
            name: "new",
            upstream: try! UpstreamURL("ws://127.0.0.1:9/ocpp"),
            upstreamVersion: nil,
            mode: mode,
            commands: commands,
            chargerID: "{id}",
            password: nil,
            queue: queue,
            ignore: [:]
        )
    }

    static func link(_ settings: MirrorSettings = settings()) -> MirrorLink {
        MirrorLink(settings: settings, index: 1, callTimeout: .seconds(30), mapsTransactions: true)
    }

    static func call(_ id: String, _ action: String, _ payload: String = "{}") -> (FrameEnvelope, String) {
        let text = "[2,\"\(id)\",\"\(action)\",\(payload)]"
        return (FrameEnvelope(text)!, text)
    }

    @Test("while down, messages queue up to the bound and the rest are dropped; on connect the boot goes first")
    func queueAndBootFirst() {
        var link = Self.link()
        #expect(link.start() == [.dial(after: .zero)])
        let boot = Self.call("1", "BootNotification", #"{"chargePointVendor":"V","chargePointModel":"M"}"#)
        let status = Self.call("2", "StatusNotification")
        let heartbeat = Self.call("3", "Heartbeat")
        #expect(link.chargerCall(boot.0, text: boot.1, now: .zero).isEmpty)
        #expect(link.chargerCall(status.0, text: status.1, now: .zero).isEmpty)
        #expect(
            link.chargerCall(heartbeat.0, text: heartbeat.1, now: .zero) == [
                .outcome(.dropped, action: "Heartbeat", messageID: "3", [])
            ]
        )
        // The queue starts with the boot: it goes alone, and the rest waits for its answer.
        #expect(link.connected(now: .nanoseconds(10)) == [.send(boot.1)])
        #expect(link.connection == .booting("1"))
        let actions = link.mirrorFrame(
            #"[3,"1",{"currentTime":"x","interval":300,"status":"Accepted"}]"#,
            now: .nanoseconds(11)
        )
        #expect(actions == [.send(status.1)], "the primary has not answered the boot yet: nothing to compare")
        #expect(link.connection == .open)
    }

    @Test("a mirror that reconnects gets the charger's last boot again, under a relay-made id, before anything else")
    func bootReplayedOnReconnect() {
        var link = Self.link()
        _ = link.start()
        _ = link.connected(now: .zero)
        let boot = Self.call("b", "BootNotification", #"{"chargePointVendor":"V","chargePointModel":"M"}"#)
        #expect(link.chargerCall(boot.0, text: boot.1, now: .nanoseconds(1)) == [.send(boot.1)])
        let lost = link.lost("gone")
        #expect(lost.contains(.outcome(.unanswered, action: "BootNotification", messageID: "b", [])))
        #expect(lost.last == .dial(after: .seconds(1)))
        let again = link.connected(now: .nanoseconds(5))
        #expect(
            again.last == .send(#"[2,"m1-boot1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#)
        )
    }

    @Test("answers are compared under the replay's rules: timestamps ignored, differing values reported")
    func comparison() {
        var link = Self.link()
        _ = link.start()
        _ = link.connected(now: .zero)
        let authorize = Self.call("a", "Authorize", #"{"idTag":"T"}"#)
        _ = link.chargerCall(authorize.0, text: authorize.1, now: .zero)
        #expect(link.primaryAnswered(FrameEnvelope(#"[3,"a",{"idTagInfo":{"status":"Accepted"}}]"#)!).isEmpty)
        #expect(
            link.mirrorFrame(#"[3,"a",{"idTagInfo":{"status":"Blocked"}}]"#, now: .nanoseconds(1)) == [
                .outcome(
                    .diverged,
                    action: "Authorize",
                    messageID: "a",
                    [.init(path: "idTagInfo.status", primary: "\"Accepted\"", mirror: "\"Blocked\"")]
                )
            ]
        )
        let heartbeat = Self.call("h", "Heartbeat")
        _ = link.chargerCall(heartbeat.0, text: heartbeat.1, now: .zero)
        _ = link.mirrorFrame(#"[3,"h",{"currentTime":"2026-01-01T00:00:00Z"}]"#, now: .nanoseconds(1))
        #expect(
            link.primaryAnswered(FrameEnvelope(#"[3,"h",{"currentTime":"2026-12-01T10:00:00Z"}]"#)!) == [
                .outcome(.matched, action: "Heartbeat", messageID: "h", [])
            ]
        )
    }

    @Test("1.6 transaction ids: learned from StartTransaction, mapped to the mirror and back from its calls")
    func transactionIDs() {
        var link = Self.link(Self.settings(mode: .secondary, commands: ["RemoteStopTransaction"]))
        _ = link.start()
        _ = link.connected(now: .zero)
        let start = Self.call("s", "StartTransaction", #"{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"t"}"#)
        _ = link.chargerCall(start.0, text: start.1, now: .zero)
        _ = link.primaryAnswered(FrameEnvelope(#"[3,"s",{"transactionId":7,"idTagInfo":{"status":"Accepted"}}]"#)!)
        let learned = link.mirrorFrame(
            #"[3,"s",{"transactionId":99,"idTagInfo":{"status":"Accepted"}}]"#,
            now: .nanoseconds(1)
        )
        #expect(learned == [.outcome(.matched, action: "StartTransaction", messageID: "s", []), .persist(["7": "99"])])
        let meter = Self.call("m", "MeterValues", #"{"connectorId":1,"transactionId":7,"meterValue":[]}"#)
        #expect(
            link.chargerCall(meter.0, text: meter.1, now: .nanoseconds(2)) == [
                .send(#"[2,"m","MeterValues",{"connectorId":1,"transactionId":99,"meterValue":[]}]"#)
            ]
        )
        #expect(
            link.mirrorFrame(#"[2,"x","RemoteStopTransaction",{"transactionId":99}]"#, now: .nanoseconds(3)) == [
                .callCharger(id: "m1-1", text: #"[2,"m1-1","RemoteStopTransaction",{"transactionId":7}]"#)
            ]
        )
        #expect(
            link.chargerAnswered(FrameEnvelope(#"[3,"m1-1",{"status":"Accepted"}]"#)!) == [
                .send(#"[3,"x",{"status":"Accepted"}]"#)
            ]
        )
    }

    @Test("a shadow's calls and a secondary's unlisted ones are refused with a CALLERROR to the mirror")
    func refusals() {
        for (mode, commands) in [(MirrorSettings.Mode.shadow, Set<String>()), (.secondary, ["TriggerMessage"])] {
            var link = Self.link(Self.settings(mode: mode, commands: commands))
            _ = link.start()
            _ = link.connected(now: .zero)
            let actions = link.mirrorFrame(#"[2,"r","Reset",{"type":"Hard"}]"#, now: .nanoseconds(1))
            #expect(actions.first == .refused(action: "Reset"))
            guard case .send(let text)? = actions.last else {
                Issue.record("no answer to the mirror")
                continue
            }
            #expect(text.hasPrefix(#"[4,"r","SecurityError","#))
        }
    }

    @Test("a secondary's call waits while the primary's is outstanding, and goes when the charger answered it")
    func oneOutstandingCall() {
        var set = MirrorSet(links: [Self.link(Self.settings(mode: .secondary, commands: ["TriggerMessage"]))])
        _ = set.start()
        _ = set.connected(0, now: .zero)
        #expect(set.toCharger(#"[2,"p1","GetConfiguration",{}]"#).isEmpty)
        #expect(
            set.fromMirror(0, #"[2,"t","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#, now: .nanoseconds(1))
                .isEmpty
        )
        let answered = set.fromCharger(#"[3,"p1",{}]"#, now: .nanoseconds(2))
        #expect(!answered.consumed)
        #expect(answered.actions == [.toCharger(#"[2,"m1-1","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#)])
        let back = set.fromCharger(#"[3,"m1-1",{"status":"Accepted"}]"#, now: .nanoseconds(3))
        #expect(back.consumed, "the primary never sees the answer to a mirror's call")
        #expect(back.actions == [.mirror(0, .send(#"[3,"t",{"status":"Accepted"}]"#))])
    }
}

@Suite("Mirror link, time")
struct MirrorLinkTimeTests {
    @Test(
        "a mirror silent for a ping interval (four checks) is pinged, reset three checks later; anything it sends keeps it"
    )
    func liveness() {
        var link = MirrorLinkTests.link()
        _ = link.start()
        #expect(link.livenessCheck().isEmpty, "nothing to check while it is being dialled")
        _ = link.connected(now: .zero)
        for _ in 0..<3 { #expect(link.livenessCheck().isEmpty) }
        #expect(link.livenessCheck() == [.ping])
        link.heardFrom()
        for _ in 0..<3 { #expect(link.livenessCheck().isEmpty) }
        #expect(link.livenessCheck() == [.ping])
        for _ in 0..<2 { #expect(link.livenessCheck().isEmpty) }
        #expect(link.livenessCheck().last == .drop)
    }

    @Test("a secondary's call the charger never answers frees the charger and comes back to the mirror as an error")
    func unansweredCall() {
        var set = MirrorSet(
            links: [MirrorLinkTests.link(MirrorLinkTests.settings(mode: .secondary, commands: ["TriggerMessage"]))]
        )
        _ = set.start()
        _ = set.connected(0, now: .zero)
        let first = set.fromMirror(
            0,
            #"[2,"t1","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#,
            now: .nanoseconds(1)
        )
        #expect(first == [.toCharger(#"[2,"m1-1","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#)])
        #expect(
            set.fromMirror(0, #"[2,"t2","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#, now: .nanoseconds(2))
                .isEmpty
        )
        let expired = set.expire(now: .nanoseconds(1) + .seconds(31))
        guard case .mirror(0, .send(let error))? = expired.first else {
            Issue.record("no error for the mirror: \(expired)")
            return
        }
        #expect(error.hasPrefix(#"[4,"t1","GenericError","#))
        #expect(expired.last == .toCharger(#"[2,"m1-2","TriggerMessage",{"requestedMessage":"Heartbeat"}]"#))
    }
}
