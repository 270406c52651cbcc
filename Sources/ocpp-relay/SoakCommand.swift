import ArgumentParser
import Foundation
import OCPPBench
import RelayConfig

struct SoakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Run N chargers with a charger's traffic through the relay for a while, restarting the backend on a "
            + "schedule, and print what a user checks (not part of the tests: it takes as long as you ask)."
    )

    @Option(help: "Chargers (1.6), each running transactions with meter values, status changes and heartbeats.")
    var chargers = 1000

    @Option(help: "How long the soak runs (e.g. 10m, 1h).")
    var duration = "10m"

    @Option(help: "The chargers connect evenly over this time.")
    var ramp = "60s"

    @Option(help: "Restart the backend this often (0: never).")
    var restartEvery = "10m"

    @Option(help: "How long the backend stays down at each restart.")
    var restartPause = "5s"

    @Option(help: "How a restart ends the backend's connections: close (1012, a deploy) or reset (a crash).")
    var restartKind = "close"

    @Option(help: "The relay's timeouts.reconnect_grace (0: off, chargers follow their backend down).")
    var grace = "30s"

    @Option(help: "The relay's limits.redial_rate (default: the relay's default).")
    var redialRate: Double?

    @Flag(help: "Pass the 1.6 chargers through to a 1.6 backend (default: translated to a 2.0.1 backend).")
    var passthrough = false

    @Option(help: "How often a line is printed.")
    var sample = "60s"

    @Option(help: "Interval between a transaction's meter values.")
    var meterInterval = "30s"

    @Option(help: "Meter values per transaction.")
    var meterValues = 10

    @Option(help: "Idle time between a charger's transactions.")
    var pause = "60s"

    @Option(name: .shortAndLong, help: "Also write the samples and the verdict as JSON here.")
    var output: String?

    func run() async throws {
        guard ["close", "reset"].contains(restartKind) else {
            throw ValidationError("--restart-kind must be close or reset")
        }
        RelayConfiguration.raiseDescriptorLimit()
        var options = Soak.Options(
            relayBinary: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
        )
        func time(_ text: String, _ name: String) throws -> Duration {
            do { return try Quantity(text).duration(name: name, minimum: .zero) } catch {
                throw ValidationError(error.message)
            }
        }
        options.chargers = chargers
        options.duration = try time(duration, "--duration")
        options.ramp = try time(ramp, "--ramp")
        options.restartEvery = try time(restartEvery, "--restart-every")
        options.restartPause = try time(restartPause, "--restart-pause")
        options.restartKind = restartKind
        options.grace = try time(grace, "--grace")
        options.translate = !passthrough
        options.redialRate = redialRate
        options.sampleEvery = try time(sample, "--sample")
        options.meterInterval = try time(meterInterval, "--meter-interval")
        options.meterValues = meterValues
        options.pause = try time(pause, "--pause")
        // Each line is written as it comes (a file followed with tail -f sees it at once).
        let say: @Sendable (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let summary = try await Soak(options).run(print: say)
        say(Soak.verdict(summary))
        if let output {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(summary).write(to: URL(fileURLWithPath: output))
        }
        let failed =
            summary.lostStarts + summary.lostStops + summary.doubledStarts + summary.doubledStops
            + (options.grace > .zero ? summary.reconnections : 0)
        if failed > 0 { throw ExitCode(1) }
    }
}
