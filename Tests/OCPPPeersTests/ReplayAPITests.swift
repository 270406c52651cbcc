import Foundation
import NIOPosix
import OCPP
import OCPPPeers
import OCPPReplay
import Testing

/// A backend written in Swift can use fixtures in its own tests: replay the shipped demo fixture as the
/// charger against the built-in demo backend, through the library API.
@Suite("Replay API")
struct ReplayAPITests {
    static let fixturePath: String = {
        var url = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent("Recordings/fixtures/demo-1.6.jsonl").path
    }()

    @Test("the demo fixture replays against the demo backend, and a changed answer is caught")
    func replay() async throws {
        let fixture = try Fixture.parse(String(contentsOfFile: Self.fixturePath, encoding: .utf8))
        let group = MultiThreadedEventLoopGroup.singleton
        let backend = try await DemoBackend.start(group: group)
        let serving = Task { try await backend.run() }
        defer {
            backend.stop()
            serving.cancel()
        }
        let report = try await Replayer.run(
            fixture,
            options: ReplayOptions(role: .charger),
            target: .connect(url: "ws://127.0.0.1:\(backend.port)/ocpp", identity: nil),
            group: group
        )
        #expect(report.passed, "\(report.text())")
        #expect(report.exchanges.count >= 10)

        // The same fixture with one recorded answer changed: the report names the field.
        var changed = fixture
        for (index, entry) in changed.entries.enumerated() {
            if let text = entry.text, text.contains("\"interval\":300") {
                var value = entry.value
                value.set("text", .string(text.replacingOccurrences(of: "\"interval\":300", with: "\"interval\":60")))
                changed.entries[index] = try FixtureEntry(value)
            }
        }
        let failing = try await Replayer.run(
            changed,
            options: ReplayOptions(role: .charger),
            target: .connect(url: "ws://127.0.0.1:\(backend.port)/ocpp", identity: nil),
            group: group
        )
        #expect(
            failing.mismatches.map(\.description).contains("BootNotification.result interval: expected 60, got 300")
        )
    }
}
