import Foundation
import Logging
import NIOCore
import NIOPosix
import OCPP
import OCPPPeers
import OCPPReplay
import Relay
import RelayConfig
import RelayRecording
import RelayTools
import ServiceLifecycle

/// `ocpp-relay demo`: the relay between a built-in backend and three scripted chargers (1.6 and 2.0.1 passed
/// through, and a 1.6 charger translated to 2.0.1), all on loopback, then the recording printed. Needs nothing but
/// the binary.
public enum Demo {
    public struct Options: Sendable {
        public var recordings: String
        public var color: Bool
        public var logLevel: Logger.Level

        public init(recordings: String, color: Bool, logLevel: Logger.Level = .warning) {
            self.recordings = recordings
            self.color = color
            self.logLevel = logLevel
        }
    }

    /// The demo charger whose 1.6 is translated to 2.0.1 on its way to the backend.
    static let translated = "DEMO-CP-16-ON-201"
    /// The demo station whose OCPP 2.1 crosses the 2.1 step to the backend's 2.0.1.
    static let translated21 = "DEMO-CS-21-ON-201"

    public static func run(_ options: Options, output: @escaping @Sendable (String) -> Void) async throws {
        var logger = Logger(label: "ocpp-relay.demo")
        logger.logLevel = options.logLevel
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await DemoBackend.start(group: group)
        let backendTask = Task { try await backend.run() }
        output("demo backend listening on ws://127.0.0.1:\(backend.port)/ocpp")

        // Pass-through for the 1.6 and the 2.0.1 charger; a third, 1.6 charger is translated for the backend's
        // 2.0.1 side (the built-in tables), so the recording shows a 1.6 frame next to its 2.0.1 translation, and a
        // fourth, a 2.1 station, crosses the 2.1 step to the same 2.0.1 side.
        var configuration = try RelaySettings.parse(
            yaml: """
                listen: "127.0.0.1:0"
                upstream: ws://127.0.0.1:\(backend.port)/ocpp
                routes:
                  - name: translated
                    chargers: [\(translated), \(translated21)]
                    upstream_version: "2.0.1"
                """
        ).resolve()
        configuration.recording = RecordingConfiguration(directory: options.recordings)
        let (listening, continuation) = AsyncStream<Int>.makeStream()
        let relay = try RelayServer(configuration: configuration, logger: logger) { _, port in
            continuation.yield(port)
            continuation.finish()
        }
        let services = ServiceGroup(services: [relay], gracefulShutdownSignals: [], logger: logger)
        let relayTask = Task { try await services.run() }
        var listeningPort = 0
        for await p in listening { listeningPort = p }
        let port = listeningPort
        output("relay listening on ws://127.0.0.1:\(port), recording into \(options.recordings)")

        let chargers = [
            ("DEMO-CP-16", OCPPVersion.v16), ("DEMO-CP-201", OCPPVersion.v201), (translated, .v16),
            (translated21, .v21),
        ]
        try await withThrowingTaskGroup(of: (String, ScriptedCharger.Report).self) { tasks in
            for (id, version) in chargers {
                tasks.addTask {
                    let charger = ScriptedCharger(host: "127.0.0.1", port: port, path: "/ocpp/\(id)", version: version)
                    return (id, try await charger.run(group: group))
                }
            }
            for try await (id, report) in tasks {
                output(
                    "charger \(id) (\(report.subprotocol ?? "no subprotocol")): \(report.accepted) calls answered, "
                        + "\(report.rejected) rejected, \(report.answered) backend requests answered"
                )
            }
        }

        // Replay the shipped fixture of this demo's 1.6 session through the relay, as a CI job would.
        let fixturePath = "Recordings/fixtures/demo-1.6.jsonl"
        if let text = try? String(contentsOfFile: fixturePath, encoding: .utf8) {
            let fixture = try Fixture.parse(text)
            let report = try await Replayer.run(
                fixture,
                options: ReplayOptions(role: .charger),
                target: .connect(url: "ws://127.0.0.1:\(port)/ocpp", identity: nil),
                group: group
            )
            output(
                "replay of \(fixturePath) as the charger: "
                    + (report.passed
                        ? "passed (\(report.exchanges.count) exchanges matched)"
                        : "\(report.mismatches.count) difference(s)\n\(report.text())")
            )
        } else {
            output("(run from the repository to also replay \(fixturePath))")
        }

        await services.triggerGracefulShutdown()
        try await relayTask.value
        backend.stop()
        backendTask.cancel()
        _ = try? await backendTask.value
        try await group.shutdownGracefully()

        output("")
        output("the recording (ocpp-relay recordings show \(options.recordings)):")
        var printer = RecordingPrinter(format: .text, color: options.color)
        let problems = try printer.print(path: options.recordings, to: output)
        for problem in problems { output("warning: \(problem)") }
        output("")
        let catalog = try RecordingCatalog(path: options.recordings)
        let connections = try catalog.connections()
        let frames = connections.map(\.frames).reduce(0, +)
        let disk = catalog.segments.compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }
            .reduce(0, +)
        output(
            "\(connections.count) connections, \(frames) frames, \(disk) bytes on disk in \(catalog.segments.count) segment(s)"
        )
        output("next: ocpp-relay recordings list \(options.recordings)")
    }
}
