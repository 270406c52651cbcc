import ArgumentParser
import Foundation
import NIOPosix
import OCPP
import OCPPPeers
import OCPPReplay
import Relay
import RelayConfig
import RelayTools

func fail(_ message: String, code: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("ocpp-relay: \(message)\n".utf8))
    return ExitCode(code)
}

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract:
            "Replay recorded conversations against a live peer and compare: one fixture, a suite, one fixture as many chargers, or a recorded fleet. Exit 0 matched, 1 differences, 2 could not run."
    )

    @Argument(
        help: "Fixture files, folders of fixtures, or recordings (folders or segments: with --charger or --fleet)."
    )
    var recordings: [String]

    @Option(name: .customLong("as"), help: "The side to play: charger (against --target) or backend (on --listen).")
    var role: String

    @Option(help: "The backend to replay against, ws://HOST:PORT/PREFIX (the charger's identity is appended).")
    var target: String?

    @Option(help: "Where to wait for the chargers when replaying the backend, HOST:PORT.")
    var listen: String?

    @Option(help: "The charger (identity to connect as; and which charger of a recording).")
    var charger: String?

    @Option(
        help: "The leg of the recording to replay: charger (default) or upstream (a translated recording's 2.0.1 side)."
    )
    var leg: String = "charger"

    @Option(help: "0: as fast as possible (default); 1: the recorded timing; N: N times faster.")
    var speed: Double = 0

    @Option(help: "The longest pause between sent CALLs, in seconds.")
    var maxGap: Double?

    @Option(
        help: "A YAML file of rules: ignore, bind, severity, unexpected_calls, match (see Config/replay-rules.yaml)."
    )
    var rules: String?

    @Option(help: "How long to wait for a CALL the peer sent at this point of the recording, in seconds.")
    var expectTimeout: Double = 5

    @Option(help: "How long to wait for the peer's answer to a CALL, in seconds.")
    var answerTimeout: Double = 30

    @Option(help: "How long to wait for the chargers to connect (--as backend), in seconds.")
    var acceptTimeout: Double = 60

    @Option(help: "How many runs at once (default: 1 for a suite; all for --chargers and --fleet).")
    var parallel: Int?

    @Option(help: "Replay the fixture as this many chargers at once (a load test), named by --id-template.")
    var chargers: Int?

    @Option(help: "The identities of --chargers, {n} counting from 1.")
    var idTemplate: String = "LOAD-{n}"

    @Option(help: "Spread the chargers' connections over this long (10s, 2m).")
    var ramp: String = "0s"

    @Flag(help: "Replay every connection of the recordings at once, keeping their relative timing (scaled by --speed).")
    var fleet = false

    @Option(
        parsing: .upToNextOption,
        help: "Write a report: --report junit FILE, --report json FILE (repeat for both)."
    )
    var report: [String] = []

    func validate() throws {
        if report.count % 2 != 0
            || stride(from: 0, to: report.count, by: 2).contains(where: { !["junit", "json"].contains(report[$0]) })
        {
            throw ValidationError("--report takes: junit FILE or json FILE")
        }
        if let chargers, chargers < 1 { throw ValidationError("--chargers must be at least 1") }
        if let parallel, parallel < 1 { throw ValidationError("--parallel must be at least 1") }
        if chargers != nil && fleet { throw ValidationError("--chargers and --fleet do not go together") }
    }

    func run() async throws {
        guard let role = ReplayRole(rawValue: role) else { throw ValidationError("--as must be charger or backend") }
        guard leg == "charger" || leg == "upstream" else { throw ValidationError("--leg must be charger or upstream") }
        let began = ContinuousClock.now
        let plan: ReplayPlan
        do { plan = try makePlan(role) } catch {
            throw fail("cannot use \(recordings.joined(separator: ", ")): \(error)", code: 2)
        }
        // A fixture holding frames its schema forbids says so as it loads (once, however many chargers replay it).
        var noted = Set<String>()
        for run in plan.runs where noted.insert(run.name).inserted {
            if let note = run.fixture.verdictNote(name: run.name) { print(note) }
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
        // One socket per charger at once: the soft open-file limit goes up to the hard one, and a load beyond it is
        // refused now rather than failing charger by charger.
        RelayConfiguration.raiseDescriptorLimit()
        let atOnce =
            role == .backend
            ? plan.runs.count : min(plan.runs.count, parallel ?? (chargers != nil || fleet ? plan.runs.count : 1))
        let fits = RelayConfiguration.descriptorBoundConnections(socketsPerCharger: 1)
        guard atOnce <= fits else {
            throw fail(
                "\(atOnce) chargers at once need as many open files; this process may open \(fits) (ulimit -n)",
                code: 2
            )
        }
        let progress = ReplayProgress()
        let ticker = isatty(2) != 0 && plan.runs.count > 1 ? ProgressLine.start(progress) : nil
        let results: [ReplayRunResult]
        switch role {
        case .charger:
            guard let target else { throw ValidationError("--as charger needs --target ws://HOST:PORT/PREFIX") }
            results = await Replayer.run(
                plan,
                options: options,
                url: target,
                parallel: atOnce,
                group: MultiThreadedEventLoopGroup.singleton,
                progress: progress
            )
        case .backend:
            guard let listen else { throw ValidationError("--as backend needs --listen HOST:PORT") }
            let (host, port): (String, Int)
            do { (host, port) = try RelayConfiguration.parseListen(listen) } catch {
                throw ValidationError(error.message)
            }
            do {
                results = try await Replayer.serve(
                    plan,
                    options: options,
                    host: host,
                    port: port,
                    acceptTimeout: acceptTimeout,
                    group: MultiThreadedEventLoopGroup.singleton,
                    progress: progress
                ) { port in
                    FileHandle.standardOutput.write(Data("listening on ws://\(host):\(port)\n".utf8))
                }
            } catch {
                throw fail("replay could not run: \(error)", code: 2)
            }
        }
        ticker?.stop()
        let elapsed = ContinuousClock.now - began
        let suite = ReplaySuiteReport(
            results: results,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        )
        let color = isatty(1) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        if plan.runs.count == 1, let run = plan.runs.first {
            let header = run.fixture.header
            print(
                "replaying \(header.charger) (\(header.version), \(header.vendor ?? "?") \(header.model ?? "")) as the \(role.rawValue), \(leg) leg"
            )
        } else {
            print("replayed \(plan.runs.count) runs as the \(role.rawValue), \(leg) leg")
        }
        print(suite.text(color: color))
        for index in stride(from: 0, to: report.count, by: 2) {
            let name = "replay " + recordings.map { ($0 as NSString).lastPathComponent }.joined(separator: " ")
            let text = report[index] == "junit" ? suite.junitXML(suite: name) : suite.json.jsonText + "\n"
            try text.write(toFile: report[index + 1], atomically: true, encoding: .utf8)
        }
        if suite.exitCode != 0 {
            if results.count == 1, let why = results[0].couldNotRun {
                throw fail("replay could not run: \(why)", code: 2)
            }
            throw ExitCode(suite.exitCode)
        }
    }

    /// The runs the arguments ask for: a suite of fixtures, one fixture as many chargers, or a fleet. A replayed
    /// backend serves every connection of a recording, unless `--charger` names one.
    private func makePlan(_ role: ReplayRole) throws -> ReplayPlan {
        let fixtures = try ReplayFixtures.collect(
            recordings,
            charger: charger,
            everyConnection: fleet || (role == .backend && charger == nil)
        )
        if fleet { return try ReplayPlan.fleet(fixtures, speed: speed) }
        if let chargers {
            guard fixtures.count == 1, let (name, fixture) = fixtures.first else {
                throw FixtureError("--chargers replays one fixture; \(fixtures.count) were given")
            }
            let ramp = try Quantity(ramp).duration(name: "--ramp", minimum: .zero)
            return ReplayPlan.load(
                fixture,
                name: name,
                chargers: chargers,
                template: try IdentityTemplate(idTemplate),
                ramp: ramp.components.seconds * 1_000_000 + ramp.components.attoseconds / 1_000_000_000_000
            )
        }
        var plan = ReplayPlan.suite(fixtures)
        if let charger, plan.runs.count == 1 { plan.runs[0].identity = charger }
        return plan
    }
}
