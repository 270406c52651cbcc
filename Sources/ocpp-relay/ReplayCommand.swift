import ArgumentParser
import Foundation
import NIOPosix
import OCPPPeers
import OCPPReplay
import Relay
import RelayConfig
import RelayRecording
import RelayTools

/// Reads a fixture file, or cuts one from a recording (folder or segment).
func loadFixture(_ path: String, charger: String?, connection: String? = nil) throws -> Fixture {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw FixtureError("\(path) does not exist")
    }
    if isDirectory.boolValue || path.hasSuffix(RecordingConfiguration.segmentSuffix) {
        return try FixtureBuilder.fixture(from: path, selection: .init(charger: charger, connection: connection))
    }
    guard let data = FileManager.default.contents(atPath: path) else { throw FixtureError("cannot read \(path)") }
    return try Fixture.parse(String(decoding: data, as: UTF8.self))
}

func fail(_ message: String, code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("ocpp-relay: \(message)\n".utf8))
    return ExitCode(code)
}

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract:
            "Replay one side of a recorded conversation against a live peer and compare. Exit 0 matched, 1 differences, 2 could not run."
    )

    @Argument(help: "A fixture file (recordings cut) or a recording (folder or segment, with --charger).")
    var recording: String

    @Option(name: .customLong("as"), help: "The side to play: charger (against --target) or backend (on --listen).")
    var role: String

    @Option(help: "The backend to replay against, ws://HOST:PORT/PREFIX (the charger's identity is appended).")
    var target: String?

    @Option(help: "Where to wait for the charger when replaying the backend, HOST:PORT.")
    var listen: String?

    @Option(help: "The charger (identity to connect as; and which charger of a recording).")
    var charger: String?

    @Option(
        help: "The leg of the recording to replay: charger (default) or upstream (a translated recording's 2.0.1 side)."
    )
    var leg: String = "charger"

    @Option(help: "0: as fast as possible (default); 1: the recorded gaps; N: gaps divided by N.")
    var speed: Double = 0

    @Option(help: "The longest pause between sent CALLs, in seconds.")
    var maxGap: Double?

    @Option(help: "A YAML file of extra ignore and bind rules (see Config/replay-rules.yaml).")
    var rules: String?

    @Option(help: "How long to wait for a CALL the peer sent at this point of the recording, in seconds.")
    var expectTimeout: Double = 5

    @Option(help: "How long to wait for the peer's answer to a CALL, in seconds.")
    var answerTimeout: Double = 30

    @Option(help: "How long to wait for the charger to connect (--as backend), in seconds.")
    var acceptTimeout: Double = 60

    @Option(parsing: .upToNextOption, help: "Write a report for CI: --report junit FILE.")
    var report: [String] = []

    func validate() throws {
        if !report.isEmpty && (report.count != 2 || report[0] != "junit") {
            throw ValidationError("--report takes: junit FILE")
        }
    }

    func run() async throws {
        guard let role = ReplayRole(rawValue: role) else { throw ValidationError("--as must be charger or backend") }
        guard leg == "charger" || leg == "upstream" else { throw ValidationError("--leg must be charger or upstream") }
        let started = Date()
        let fixture: Fixture
        do {
            fixture = try loadFixture(recording, charger: charger)
        } catch {
            throw fail("cannot use \(recording): \(error)", code: 2)
        }
        var comparison = ComparisonRules.defaults
        if let rules {
            do { comparison = try ComparisonRules.load(path: rules) } catch { throw fail(error.message, code: 2) }
        }
        let options = ReplayOptions(
            role: role,
            leg: leg,
            rules: comparison,
            speed: speed,
            maxGap: maxGap,
            answerTimeout: answerTimeout,
            expectTimeout: expectTimeout
        )
        let replayTarget: Replayer.Target
        switch role {
        case .charger:
            guard let target else { throw ValidationError("--as charger needs --target ws://HOST:PORT/PREFIX") }
            replayTarget = .connect(url: target, identity: charger)
        case .backend:
            guard let listen else { throw ValidationError("--as backend needs --listen HOST:PORT") }
            let (host, port): (String, Int)
            do { (host, port) = try RelayConfiguration.parseListen(listen) } catch {
                throw ValidationError(error.message)
            }
            replayTarget = .listen(host: host, port: port, acceptTimeout: acceptTimeout) { port in
                FileHandle.standardOutput.write(Data("listening on ws://\(host):\(port)\n".utf8))
            }
        }
        let result: ReplayReport
        do {
            result = try await Replayer.run(
                fixture,
                options: options,
                target: replayTarget,
                group: MultiThreadedEventLoopGroup.singleton
            )
        } catch {
            throw fail("replay could not run: \(error)", code: 2)
        }
        let color = isatty(1) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        print(
            "replaying \(fixture.header.charger) (\(fixture.header.version), \(fixture.header.vendor ?? "?") \(fixture.header.model ?? "")) as the \(role.rawValue), \(leg) leg"
        )
        print(result.text(color: color))
        if !report.isEmpty {
            guard report.count == 2, report[0] == "junit" else { throw ValidationError("--report takes: junit FILE") }
            let path = report[1]
            let xml = result.junitXML(
                suite: "replay \((recording as NSString).lastPathComponent)",
                seconds: Date().timeIntervalSince(started)
            )
            try xml.write(toFile: path, atomically: true, encoding: .utf8)
        }
        if !result.passed { throw ExitCode(1) }
    }
}
