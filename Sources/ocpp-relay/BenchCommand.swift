import ArgumentParser
import Foundation
import OCPPBench
import Relay

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the relay against a direct connection, nginx and mitmproxy (when installed), side by side."
    )

    @Option(help: "Interleaved rounds of the latency and CPU measurements.")
    var rounds = 3

    @Option(help: "Idle connection counts for memory and the reconnect storm (comma-separated).")
    var idle = "1000,9000"

    @Option(help: "The folder of mapping tables, for the translating relay.")
    var mappings = "Mappings"

    @Option(name: .shortAndLong, help: "Where to write the JSON (default bench-results/bench-<time>.json).")
    var output: String?

    @Flag(help: "A short run (one round, small counts) to check the benchmark works.")
    var quick = false

    func run() async throws {
        // The translating relay runs as a child process: give it an absolute path, and fail now, not rounds later.
        let mappingsPath = URL(fileURLWithPath: mappings).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: mappingsPath, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw fail("no mapping tables at \(mappingsPath): run from the repository root or pass --mappings", code: 2)
        }
        try Self.ensureNginx()
        RelayConfiguration.raiseDescriptorLimit()
        var options = Benchmark.Options(
            relayBinary: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0],
            mappings: mappingsPath
        )
        options.rounds = rounds
        options.idleCounts = idle.split(separator: ",").compactMap { Int($0) }
        if quick {
            options.rounds = 1
            options.latencyCalls = 300
            options.cpuSeconds = 0.5
            options.cpuChargers = 10
            options.idleCounts = [100]
            options.realisticChargers = 2
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

    /// nginx from Debian's packages, installed when missing (the benchmark runs its own instance).
    static func ensureNginx() throws {
        let paths = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        if paths.contains(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return }
        print("installing nginx (Debian's nginx-light) for the comparison…")
        let install = Process()
        install.executableURL = URL(fileURLWithPath: "/bin/sh")
        install.arguments = [
            "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null",
        ]
        try install.run()
        install.waitUntilExit()
        guard install.terminationStatus == 0 else {
            throw ValidationError("nginx is not installed and could not be installed (apt-get install nginx-light)")
        }
    }
}
