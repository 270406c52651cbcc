import Foundation
import OCPP
import RelayRecording
import Testing

@testable import Relay
@testable import RelayConsole

@Suite("Console")
struct ConsoleTests {
    static func event(_ number: UInt64, _ text: String = "[2,\"1\",\"Heartbeat\",{}]") -> ConsoleEvent {
        ConsoleEvent(
            kind: .frame,
            time: 0,
            connection: 1,
            number: number,
            leg: "charger",
            direction: "in",
            forwarded: true,
            text: text,
            cause: nil
        )
    }

    @Test("a viewer that does not read keeps only its buffer's newest events, and the count of those it lost")
    func boundedViewer() async throws {
        let hub = ConsoleHub()
        #expect(!hub.isWatched)
        let watcher = try #require(hub.watch("CP-1", capacity: 3))
        let other = try #require(hub.watch("CP-2", capacity: 3))
        #expect(hub.isWatched)
        for number in 1...10 { hub.publish("CP-1", Self.event(UInt64(number))) }
        hub.stop(watcher)
        var seen: [UInt64] = []
        for await event in watcher.events { seen.append(event.number) }
        #expect(seen == [8, 9, 10])
        #expect(watcher.dropped == 7)
        hub.stop(other)
        var others = 0
        for await _ in other.events { others += 1 }
        #expect(others == 0, "another charger's viewer sees nothing of CP-1")
        #expect(!hub.isWatched)
    }

    @Test("viewers are limited: each holds a buffer")
    func limitedViewers() {
        let hub = ConsoleHub()
        let viewers = (0..<ConsoleHub.maximumWatchers).compactMap { hub.watch("CP-\($0)") }
        #expect(viewers.count == ConsoleHub.maximumWatchers)
        #expect(hub.watch("CP-X") == nil)
        hub.stop(viewers[0])
        #expect(hub.watch("CP-X") != nil)
    }

    @Test("the mirrors' tally counts outcomes per mirror and action and keeps the latest divergences")
    func mirrorTally() {
        let hub = ConsoleHub()
        func outcome(_ kind: MirrorOutcome.Kind, _ action: String) -> MirrorOutcome {
            MirrorOutcome(
                connection: 1,
                time: 0,
                mirror: "new",
                action: action,
                kind: kind,
                messageID: "m",
                differences: kind == .diverged
                    ? [.init(path: "idTagInfo.status", primary: "Accepted", mirror: "Blocked")] : []
            )
        }
        for _ in 0..<3 { hub.mirrorOutcome(identity: "CP-1", outcome(.matched, "Heartbeat")) }
        hub.mirrorOutcome(identity: "CP-1", outcome(.diverged, "Authorize"))
        let report = hub.mirrorReport
        #expect(report.counts["new"]?["Heartbeat"]?["matched"] == 3)
        #expect(report.counts["new"]?["Authorize"]?["diverged"] == 1)
        #expect(report.divergences.map(\.outcome.differences.first?.mirror) == ["Blocked"])
    }

    @Test("metrics are summed per family over their labels, histogram buckets left out, the current value appended")
    func sampler() {
        let text = """
            # HELP ocpp_relay_messages_total OCPP messages relayed.
            # TYPE ocpp_relay_messages_total counter
            ocpp_relay_messages_total{direction="charger_to_upstream",type="call",action="Heartbeat"} 3
            ocpp_relay_messages_total{direction="upstream_to_charger",type="result",action="Heartbeat"} 2
            # TYPE ocpp_relay_connected_chargers gauge
            ocpp_relay_connected_chargers 4
            # TYPE ocpp_relay_call_duration_seconds histogram
            ocpp_relay_call_duration_seconds_bucket{le="0.1"} 5
            ocpp_relay_call_duration_seconds_count 5
            """
        let sampler = MetricsSampler()
        sampler.sample(text, time: 100)
        let all = sampler.all(now: text.replacingOccurrences(of: "chargers 4", with: "chargers 6"), time: 105)
        #expect(all["ocpp_relay_messages_total"]?.points == [[100, 5], [105, 5]])
        #expect(all["ocpp_relay_messages_total"]?.type == "counter")
        #expect(all["ocpp_relay_connected_chargers"]?.points.last == [105, 6])
        #expect(all["ocpp_relay_call_duration_seconds_count"]?.type == "counter")
        #expect(all["ocpp_relay_call_duration_seconds_bucket"] == nil)
    }

    @Test("the console never shows a password; tokens only when asked to hide them")
    func redaction() {
        let rotation =
            #"[2,"1","SetVariables",{"setVariableData":[{"attributeValue":"n3w-Secret-2026!","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}}]}]"#
        let key = #"[2,"2","ChangeConfiguration",{"key":"AuthorizationKey","value":"6E3377"}]"#
        let authorize = #"[2,"3","Authorize",{"idTag":"TAG-0042"}]"#
        let plain = ConsoleRedaction(redactTokens: false)
        let hiding = ConsoleRedaction(redactTokens: true)
        for redaction in [plain, hiding] {
            #expect(!redaction.frame(rotation, action: nil).contains("n3w-Secret-2026!"))
            #expect(redaction.frame(rotation, action: nil).contains("BasicAuthPassword"))
            #expect(!redaction.frame(key, action: nil).contains("6E3377"))
        }
        #expect(plain.frame(authorize, action: nil).contains("TAG-0042"))
        #expect(!hiding.frame(authorize, action: nil).contains("TAG-0042"))
        #expect(plain.frame("not json", action: nil) == "not json")
        // A mirror comparison's differing token too.
        #expect(plain.value(#""TAG-0042""#, at: "idTag") == #""TAG-0042""#)
        #expect(!hiding.value(#""TAG-0042""#, at: "idTag").contains("TAG-0042"))
        #expect(hiding.value(#""Accepted""#, at: "idTagInfo.status") == #""Accepted""#)
    }

    @Test("a replaced value is marked, alike on both sides of a translated password rotation and of a token")
    func marks() throws {
        let password = "n3w-Secret-2026!"
        let hex = password.utf8.map { String(format: "%02X", $0) }.joined()
        let rotation =
            #"[2,"1","SetVariables",{"setVariableData":[{"attributeValue":"\#(password)","component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"}}]}]"#
        let key = #"[2,"2","ChangeConfiguration",{"key":"AuthorizationKey","value":"\#(hex)"}]"#
        let redaction = ConsoleRedaction(redactTokens: true)
        func marks(_ text: String) -> [String] {
            text.matches(of: /\[redacted [^\]]+\]/).map { String($0.output) }
        }
        let rotated = marks(redaction.frame(rotation, action: nil))
        #expect(rotated.count == 1 && rotated == marks(redaction.frame(key, action: nil)))
        let tag16 = marks(redaction.frame(#"[2,"3","Authorize",{"idTag":"TAG-0042"}]"#, action: nil))
        let tag201 = marks(
            redaction.frame(#"[2,"4","Authorize",{"idToken":{"idToken":"TAG-0042","type":"ISO14443"}}]"#, action: nil)
        )
        #expect(tag16.count == 1 && tag16 == tag201 && tag16 != rotated)
        // Nothing else is marked.
        #expect(marks(redaction.frame(#"[2,"5","Heartbeat",{}]"#, action: nil)).isEmpty)
    }

    @Test("a frame forwarded unchanged is one entry of a charger's history, not the two lines recordings print")
    func forwardedOnce() throws {
        let came = try JSONParser.parse(
            #"{"time":"t1","connection":"r/1","leg":"charger","dir":"in","text":"[2,\"1\",\"Heartbeat\",{}]"}"#
        )
        var copy = came
        copy.set("leg", .string("upstream"))
        copy.set("dir", .string("out"))
        #expect(ConsoleRoutes.isForwardedCopy(copy, of: came))
        var later = copy
        later.set("time", .string("t2"))
        #expect(!ConsoleRoutes.isForwardedCopy(later, of: came))
        var translated = copy
        translated.set("text", .string(#"[2,"9","Heartbeat",{}]"#))
        #expect(!ConsoleRoutes.isForwardedCopy(translated, of: came))
        #expect(!ConsoleRoutes.isForwardedCopy(came, of: came))
    }
}
