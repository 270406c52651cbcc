import ArgumentParser
import Foundation
import OCPPBench
import Relay
import RelayConfig

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the relay against a direct connection, nginx and mitmproxy (when installed), side by side."
    )

    @Option(help: "Interleaved rounds of the latency and CPU measurements.")
    var rounds = 3

    @Option(help: "Idle connection counts for memory and the reconnect storm (comma-separated).")
    var idle = "1000,9000"

    @Option(help: "A folder of edited mapping tables for the translating relay (default: the built-in tables).")
    var mappings: String?

    @Option(name: .shortAndLong, help: "Where to write the JSON (default bench-results/bench-<time>.json).")
    var output: String?

    @Flag(help: "A short run (one round, small counts) to check the benchmark works.")
    var quick = false

    @Option(
        help: "Another ocpp-relay binary (an earlier build): its translating relays are measured in the same rounds."
    )
    var baseline: String?

    @Option(help: "Chargers the replayer plays at once when its own CPU is measured (0: not measured).")
    var replayChargers = 1000

    @Option(help: "Only these targets (comma-separated names), e.g. to profile one with perf record -p.")
    var only: String?

    func run() async throws {
        // The translating relay runs as a child process: give it an absolute path, and fail now, not rounds later.
        let mappingsPath = mappings.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var isDirectory: ObjCBool = false
        if let mappingsPath,
            !FileManager.default.fileExists(atPath: mappingsPath, isDirectory: &isDirectory) || !isDirectory.boolValue
        {
            throw fail("no mapping tables at \(mappingsPath)", code: 2)
        }
        try Self.ensureNginx()
        RelayConfiguration.raiseDescriptorLimit()
        var options = Benchmark.Options(
            relayBinary: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0],
            mappings: mappingsPath
        )
        if let baseline {
            guard FileManager.default.isExecutableFile(atPath: baseline) else {
                throw fail("no ocpp-relay binary at \(baseline)", code: 2)
            }
            options.baselineBinary = URL(fileURLWithPath: baseline).standardizedFileURL.path
        }
        options.only = only.map { Set($0.split(separator: ",").map(String.init)) }
        options.rounds = rounds
        options.idleCounts = idle.split(separator: ",").compactMap { Int($0) }
        options.replayChargers = replayChargers
        if quick {
            options.rounds = 1
            options.latencyCalls = 300
            options.cpuSeconds = 0.5
            options.cpuChargers = 10
            options.idleCounts = [100]
            options.realisticChargers = 2
            options.replayChargers = min(replayChargers, 20)
        }
        let json = try await Benchmark.run(options) { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        let path = output ?? "bench-results/bench-\(Int(Date().timeIntervalSince1970)).json"
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        print("figures written to \(path)")
    }

    /// nginx is the baseline: the benchmark runs its own instance of the system's nginx, and installs nothing.
    static func ensureNginx() throws {
        let paths = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        guard paths.contains(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ValidationError(
                "nginx, the baseline, is not installed: apt-get install nginx-light (Tests/run-all.sh does)"
            )
        }
    }
}
