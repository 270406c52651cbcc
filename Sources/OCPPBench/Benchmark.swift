import Foundation
import NIOCore
import NIOPosix
import RelayRecording

#if canImport(Glibc)
    import Glibc
#endif

/// The benchmark: the relay against a direct connection, nginx and (when installed) mitmproxy, side by
/// side in one run, with a built-in backend and chargers on loopback. Figures, never a verdict.
public enum Benchmark {
    public struct Options: Sendable {
        /// The `ocpp-relay` binary to run as the relay under test.
        public var relayBinary: String
        /// A folder of edited tables for the translating relay; nil: the relay's built-in tables.
        public var mappings: String?
        /// Another `ocpp-relay` binary (an earlier build) whose translating relays are measured in the same
        /// interleaved rounds, as `baseline-translating` and `baseline-reverse`.
        public var baselineBinary: String?
        /// Only these targets (by name), when set: for profiling one of them (`perf record -p` on its process).
        public var only: Set<String>?
        public var rounds = 3
        public var latencyCalls = 2000
        public var cpuSeconds = 3.0
        public var cpuChargers = 100
        /// Round trips per second of the paced CPU run, all chargers together.
        public var pacedRate = 2000
        public var idleCounts = [1000, 9000]
        /// Chargers of the realistic session measuring compression.
        public var realisticChargers = 24
        /// Chargers the replayer plays at once when its own cost is measured (0: not measured).
        public var replayChargers = 1000

        public init(relayBinary: String, mappings: String?) {
            self.relayBinary = relayBinary
            self.mappings = mappings
        }
    }

    enum Target: String, CaseIterable, Sendable {
        case direct, nginx, mitmproxy, relay
        case relayTranslating = "relay-translating"
        /// The pass-through relay with one shadow mirror of the same version (a second backend).
        case relayMirrored = "relay-mirrored"
        /// 2.0.1 chargers on a 1.6 backend through the relay, and the same chargers through nginx (its baseline).
        case relayReverse = "relay-reverse"
        case nginx201 = "nginx-2.0.1"
        /// The translating relay with its state in PostgreSQL (several relays' store) instead of SQLite.
        case relayTranslatingPG = "relay-translating-pg"
        /// The baseline binary's translating relays (`--baseline`): 1.6 chargers on 2.0.1, 2.0.1 chargers on 1.6.
        case baselineTranslating = "baseline-translating"
        case baselineReverse = "baseline-reverse"
        /// The pairs with an OCPP 2.1 peer, and 2.1 chargers through nginx (their baseline).
        case nginx21 = "nginx-2.1"
        case relay21On201 = "relay-2.1-on-2.0.1"
        case relay21On16 = "relay-2.1-on-1.6"
        case relay16On21 = "relay-1.6-on-2.1"
        case relay201On21 = "relay-2.0.1-on-2.1"
        /// The relay and the translating relay without the write-ahead journal: each tick compressed and written on
        /// the event loop (`recordings.journal_size: 0`), what the journal replaced.
        case relayOnLoop = "relay-on-loop"
        case relayTranslatingOnLoop = "relay-translating-on-loop"
        /// The relay and the translating relay judging no frame (`validation.verdicts: 0`): what verdicts cost.
        case relayUnjudged = "relay-unjudged"
        case relayTranslatingUnjudged = "relay-translating-unjudged"

        /// The chargers' OCPP version.
        var chargerSubprotocol: String {
            switch self {
            case .relayReverse, .nginx201, .baselineReverse, .relay201On21: "ocpp2.0.1"
            case .nginx21, .relay21On201, .relay21On16: "ocpp2.1"
            default: "ocpp1.6"
            }
        }

        /// The backend's version a translating relay is pinned to, if any (`--upstream-version`).
        var upstreamVersion: String? {
            switch self {
            case .relayTranslating, .relayTranslatingPG, .baselineTranslating, .relay21On201, .relayTranslatingOnLoop,
                .relayTranslatingUnjudged:
                "2.0.1"
            case .relayReverse, .baselineReverse, .relay21On16: "1.6"
            case .relay16On21, .relay201On21: "2.1"
            default: nil
            }
        }

        /// nginx with the same chargers: what a translating relay is compared with.
        var nginxBaseline: Target {
            switch chargerSubprotocol {
            case "ocpp2.0.1": .nginx201
            case "ocpp2.1": .nginx21
            default: .nginx
            }
        }

        /// Targets measured for CPU and latency only (the idle and storm figures are the pass-through's).
        var measuresIdle: Bool {
            [.nginx, .mitmproxy, .relay, .relayMirrored, .relayTranslating, .relayUnjudged].contains(self)
        }
    }

    /// Runs everything, printing progress and the table to `log`; returns the JSON document.
    /// The caller raises the process's open-file limit first (9,000 chargers need it; `ocpp-relay bench` does).
    public static func run(_ options: Options, log: @escaping @Sendable (String) -> Void) async throws -> String {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await BenchBackend.start(group: group)
        // The mirror is another server: its own thread, so that its work does not delay the primary's answers.
        let mirrorGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let mirror = try await BenchBackend.start(group: mirrorGroup)
        var targets: [Target] = [
            .direct, .nginx, .relay, .relayMirrored, .relayTranslating, .nginx201, .relayReverse, .nginx21,
            .relay21On201, .relay21On16, .relay16On21, .relay201On21, .relayOnLoop, .relayTranslatingOnLoop,
            .relayUnjudged, .relayTranslatingUnjudged,
        ]
        let postgres = try BenchPostgres.start()
        defer { postgres?.stop() }
        if postgres != nil { targets.append(.relayTranslatingPG) }
        if options.baselineBinary != nil { targets += [.baselineTranslating, .baselineReverse] }
        if let only = options.only { targets = targets.filter { only.contains($0.rawValue) } }
        if (try? ProxyProcess.which("mitmdump", extra: [".venv/bin/mitmdump"])) != nil {
            targets.insert(.mitmproxy, at: 2)
        }
        log("benchmark on \(machine()) — targets: \(targets.map(\.rawValue).joined(separator: ", "))")

        var latency: [Target: [Percentiles]] = [:]
        var cpuClosed: [Target: [Double]] = [:]
        var cpuPaced: [Target: [Double]] = [:]
        var transactions = TransactionFigures()
        for round in 0..<options.rounds {
            // Rotate the order each round so drift hits every target alike.
            let shift = targets.isEmpty ? 0 : round % targets.count
            let order: [Target] = Array(targets[shift...]) + Array(targets[..<shift])
            for target in order {
                let proxy = try start(
                    target,
                    backend: backend,
                    mirror: mirror,
                    postgres: postgres,
                    options: options,
                    connections: options.cpuChargers
                )
                defer { proxy?.stop() }
                let port = proxy?.port ?? backend.port
                let p = try await measureLatency(target, port: port, calls: options.latencyCalls, group: group)
                latency[target, default: []].append(p)
                if let proxy {
                    let heartbeats = try await measureCPU(
                        target,
                        proxy: proxy,
                        traffic: .heartbeat,
                        firstCharger: 1000,
                        options: options,
                        group: group
                    )
                    cpuClosed[target, default: []].append(heartbeats.closed)
                    cpuPaced[target, default: []].append(heartbeats.paced)
                    let meterValues = try await measureCPU(
                        target,
                        proxy: proxy,
                        database: target == .relayTranslatingPG ? postgres : nil,
                        traffic: .meterValues,
                        firstCharger: 2000,
                        options: options,
                        group: group
                    )
                    transactions.closed[target, default: []].append(meterValues.closed)
                    transactions.paced[target, default: []].append(meterValues.paced)
                    transactions.perSecond[target, default: []].append(meterValues.perSecond)
                    if let database = meterValues.databaseClosed {
                        transactions.databaseClosed[target, default: []].append(database)
                    }
                }
                log(
                    "round \(round + 1) \(target.rawValue): p50 \(fmt(p.p50)) µs"
                        + (cpuClosed[target]?.last.map { ", CPU \(fmt($0)) µs/heartbeat round trip" } ?? "")
                        + (transactions.closed[target]?.last.map { ", \(fmt($0)) µs/MeterValues round trip" } ?? "")
                )
            }
        }

        var memory: [Target: [Int: Double]] = [:]
        var storms: [Target: Storm] = [:]
        // A mirror is a third socket per charger in the relay and in this process: the mirrored relay is measured
        // at the largest count that fits the open-file limit (and the relay beside it at that count too).
        let mirroredCount = min(options.idleCounts.max() ?? 0, (descriptorLimit() - 1000) / 3 / 1000 * 1000)
        for target in targets where target.measuresIdle {
            var counts = options.idleCounts
            if [.relay, .relayMirrored].contains(target), !counts.contains(mirroredCount) {
                counts = (counts + [mirroredCount]).sorted()
            }
            for count in counts {
                if target == .mitmproxy && count > 1000 { continue }  // minutes per storm; 1,000 says enough
                if target == .relayMirrored && count > mirroredCount { continue }
                guard
                    let proxy = try start(
                        target,
                        backend: backend,
                        mirror: mirror,
                        options: options,
                        connections: count
                    )
                else {
                    continue
                }
                defer { proxy.stop() }
                let (kib, storm) = try await measureIdle(proxy: proxy, count: count, group: group)
                memory[target, default: [:]][count] = kib
                if count == options.idleCounts.max() { storms[target] = storm }
                log(
                    "\(target.rawValue): \(count) idle chargers, \(fmt(kib)) KiB each; storm \(fmt(storm.seconds)) s, \(storm.errors) errors"
                )
            }
        }

        let compression = try await measureCompression(backend: backend, options: options, group: group)
        log(
            "realistic session: \(compression.frames) messages, \(fmt(compression.bytesPerFrame)) bytes on disk each, \(fmt(compression.ratio))× smaller than the frame text"
        )
        var replayer: BenchReplayer.Figures?
        if options.replayChargers > 0 && options.only?.contains("replayer") != false {
            let figures = try BenchReplayer.measure(
                binary: options.relayBinary,
                backendPort: backend.port,
                chargers: options.replayChargers
            )
            replayer = figures
            log(
                "replayer: \(figures.chargers) chargers, \(figures.roundTrips) round trips in \(fmt(figures.seconds)) s, "
                    + "\(fmt(figures.cpuMicrosPerRoundTrip)) µs CPU each, \(figures.differences) differences"
            )
        }
        await backend.stop()
        await mirror.stop()
        try await mirrorGroup.shutdownGracefully()
        try await group.shutdownGracefully()

        let report = Report(
            machine: machine(),
            date: Timestamp.rfc3339(Timestamp.now()),
            targets: targets,
            latency: latency,
            cpuClosed: cpuClosed,
            cpuPaced: cpuPaced,
            transactions: transactions,
            memory: memory,
            storms: storms,
            compression: compression,
            replayer: replayer,
            options: options
        )
        log(report.table)
        return report.json
    }

    // MARK: Targets

    private static func start(
        _ target: Target,
        backend: BenchBackend,
        mirror: BenchBackend,
        postgres: BenchPostgres? = nil,
        options: Options,
        connections: Int
    ) throws -> ProxyProcess? {
        switch target {
        case .direct: return nil
        case .nginx, .nginx201, .nginx21:
            return try ProxyProcess.nginx(backendPort: backend.port, connections: connections)
        case .mitmproxy: return try ProxyProcess.mitmproxy(backendPort: backend.port)
        case .relay:
            return try ProxyProcess.relay(
                binary: options.relayBinary,
                backendPort: backend.port,
                translate: false,
                mappings: options.mappings
            )
        case .relayTranslating, .relayTranslatingOnLoop, .relayTranslatingUnjudged:
            return try ProxyProcess.relay(
                binary: options.relayBinary,
                backendPort: backend.port,
                translate: true,
                mappings: options.mappings,
                journal: target != .relayTranslatingOnLoop,
                verdicts: target != .relayTranslatingUnjudged
            )
        case .relayOnLoop, .relayUnjudged:
            return try ProxyProcess.relay(
                binary: options.relayBinary,
                backendPort: backend.port,
                translate: false,
                mappings: options.mappings,
                journal: target == .relayUnjudged,
                verdicts: target == .relayOnLoop
            )
        case .relayMirrored:
            return try ProxyProcess.relay(
                binary: options.relayBinary,
                backendPort: backend.port,
                translate: false,
                mappings: options.mappings,
                mirrorPort: mirror.port
            )
        case .relayTranslatingPG:
            return try ProxyProcess.relay(
                binary: options.relayBinary,
                backendPort: backend.port,
                translate: true,
                mappings: options.mappings,
                sharedState: postgres
            )
        case .relayReverse, .baselineReverse:
            return try ProxyProcess.relay(
                binary: target == .baselineReverse ? options.baselineBinary ?? "" : options.relayBinary,
                backendPort: backend.port,
                translate: false,
                mappings: options.mappings,
                upstreamVersion: "1.6"
            )
        case .baselineTranslating:
            return try ProxyProcess.relay(
                binary: options.baselineBinary ?? "",
                backendPort: backend.port,
                translate: true,
                mappings: options.mappings
            )
        case .relay21On201, .relay21On16, .relay16On21, .relay201On21:
            return try ProxyProcess.relay(
                binary: options.relayBinary,
                backendPort: backend.port,
                translate: false,
                mappings: options.mappings,
                upstreamVersion: target.upstreamVersion
            )
        }
    }

    private static func charger(
        _ port: Int,
        _ n: Int,
        subprotocol: String = "ocpp1.6",
        group: any EventLoopGroup
    ) async throws -> BenchCharger {
        try await BenchCharger.connect(
            host: "127.0.0.1",
            port: port,
            path: "/ocpp/BENCH-\(n)",
            subprotocol: subprotocol,
            group: group
        )
    }

    // MARK: Measurements

    struct Percentiles: Codable {
        var p50: Double
        var p90: Double
        var p99: Double
    }

    private static func percentiles(_ samples: [UInt64]) -> Percentiles {
        let sorted = samples.sorted()
        func at(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]) / 1000
        }
        return Percentiles(p50: at(0.5), p90: at(0.9), p99: at(0.99))
    }

    /// Sequential calls from one charger: round-trip percentiles in µs.
    private static func measureLatency(
        _ target: Target,
        port: Int,
        calls: Int,
        group: any EventLoopGroup
    ) async throws -> Percentiles {
        let c = try await charger(port, 0, subprotocol: target.chargerSubprotocol, group: group)
        defer { Task { await c.close() } }
        _ = c.start(.closedLoop(.heartbeat))
        try await waitForSamples([c], calls / 10)
        try await c.clearSamples()
        try await waitForSamples([c], calls)
        c.stop()
        return percentiles(Array(try await c.roundTrips().prefix(calls)))
    }

    private static func waitForSamples(_ chargers: [BenchCharger], _ count: Int) async throws {
        while true {
            var total = 0
            for c in chargers { total += try await c.roundTrips().count }
            if total >= count { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The CPU of a proxy per round trip (µs) in closed loops and at a paced rate, and the round trips per second
    /// of the closed loops.
    struct CPUFigures {
        var closed: Double
        var paced: Double
        var perSecond: Double
        /// The database's CPU per round trip of the closed loops, when it was measured.
        var databaseClosed: Double?
    }

    /// The MeterValues-in-a-transaction figures, per target and round.
    struct TransactionFigures {
        var closed: [Target: [Double]] = [:]
        var paced: [Target: [Double]] = [:]
        var perSecond: [Target: [Double]] = [:]
        var databaseClosed: [Target: [Double]] = [:]
    }

    /// CPU of the proxy per round trip of `traffic` (µs), in closed loops and at a paced rate. Meter values
    /// start their transactions before the measurement (one per charger, not measured).
    private static func measureCPU(
        _ target: Target,
        proxy: ProxyProcess,
        database: BenchPostgres? = nil,
        traffic: BenchCharger.Traffic,
        firstCharger: Int,
        options: Options,
        group: any EventLoopGroup
    ) async throws -> CPUFigures {
        var chargers: [BenchCharger] = []
        for n in 0..<options.cpuChargers {
            chargers.append(
                try await charger(proxy.port, firstCharger + n, subprotocol: target.chargerSubprotocol, group: group)
            )
        }
        defer { for c in chargers { Task { await c.close() } } }
        if traffic == .meterValues {
            // One MeterValues each: the transaction starts, the first value flows; then measure.
            for c in chargers { _ = c.start(.closedLoop(traffic)) }
            try await waitForSamples(chargers, chargers.count)
            for c in chargers { c.stop() }
            try await Task.sleep(for: .milliseconds(200))
        }
        func run(_ mode: BenchCharger.Mode) async throws -> (cpu: Double, perSecond: Double, database: Double?) {
            for c in chargers { try await c.clearSamples() }
            let before = proxy.cpuSeconds
            let databaseBefore = database?.cpuSeconds
            for c in chargers { _ = c.start(mode) }
            try await Task.sleep(for: .milliseconds(Int(options.cpuSeconds * 1000)))
            for c in chargers { c.stop() }
            try await Task.sleep(for: .milliseconds(200))
            let cpu = proxy.cpuSeconds - before
            let databaseCPU = database.map { $0.cpuSeconds - (databaseBefore ?? 0) }
            var trips = 0
            for c in chargers { trips += try await c.roundTrips().count }
            let perTrip = { (seconds: Double) in trips > 0 ? seconds * 1e6 / Double(trips) : 0 }
            return (perTrip(cpu), Double(trips) / options.cpuSeconds, databaseCPU.map(perTrip))
        }
        let closed = try await run(.closedLoop(traffic))
        let interval = TimeAmount.nanoseconds(Int64(1e9 * Double(options.cpuChargers) / Double(options.pacedRate)))
        let paced = try await run(.paced(interval, traffic))
        return CPUFigures(
            closed: closed.cpu,
            paced: paced.cpu,
            perSecond: closed.perSecond,
            databaseClosed: closed.database
        )
    }

    struct Storm: Codable {
        var seconds: Double
        var errors: Int
    }

    /// `count` chargers connecting and booting at once; then the proxy's memory per idle connection.
    private static func measureIdle(
        proxy: ProxyProcess,
        count: Int,
        group: any EventLoopGroup
    ) async throws -> (Double, Storm) {
        try await Task.sleep(for: .milliseconds(300))
        let baseline = proxy.residentKiB
        let started = Date()
        let port = proxy.port
        let results = await withTaskGroup(of: BenchCharger?.self) { tasks in
            for n in 0..<count {
                tasks.addTask { try? await charger(port, 100_000 + n, group: group) }
            }
            var connected: [BenchCharger] = []
            for await c in tasks { if let c { connected.append(c) } }
            return connected
        }
        let storm = Storm(seconds: Date().timeIntervalSince(started), errors: count - results.count)
        try await Task.sleep(for: .seconds(1))
        let resident = proxy.residentKiB
        for c in results { await c.close() }
        return (Double(resident - baseline) / Double(max(1, results.count)), storm)
    }

    struct Compression: Codable {
        var frames: Int
        var textBytes: Int
        var diskBytes: Int
        var ratio: Double
        var bytesPerFrame: Double
    }

    /// A realistic mixed session through the recording relay: boots, heartbeats, status changes and
    /// transactions with meter values every 60 s (of simulated time).
    private static func measureCompression(
        backend: BenchBackend,
        options: Options,
        group: any EventLoopGroup
    ) async throws -> Compression {
        let proxy = try ProxyProcess.relay(
            binary: options.relayBinary,
            backendPort: backend.port,
            translate: false,
            mappings: options.mappings
        )
        let recordings = proxy.directory + "/recordings"
        var chargers: [BenchCharger] = []
        for n in 0..<options.realisticChargers {
            chargers.append(try await charger(proxy.port, 500_000 + n, group: group))
        }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for (n, c) in chargers.enumerated() {
                tasks.addTask { try await c.start(.script(RealisticSession.frames(charger: n))).get() }
            }
            try await tasks.waitForAll()
        }
        for c in chargers { await c.close() }
        try await Task.sleep(for: .milliseconds(300))
        let directory = proxy.directory
        proxy.process.terminate()
        proxy.process.waitUntilExit()
        let catalog = try RecordingCatalog(path: recordings)
        let connections = try catalog.connections()
        let text = connections.map(\.textBytes).reduce(0, +)
        let messages = connections.map(\.messages).reduce(0, +)
        let disk = catalog.segments.compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }
            .reduce(0, +)
        try? FileManager.default.removeItem(atPath: directory)
        return Compression(
            frames: messages,
            textBytes: text,
            diskBytes: disk,
            ratio: disk > 0 ? Double(text) / Double(disk) : 0,
            bytesPerFrame: messages > 0 ? Double(disk) / Double(messages) : 0
        )
    }

    // MARK: Environment

    /// The process's open-file limit.
    static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return 1 << 20
        }
        return Int(clamping: limit.rlim_cur)
    }

    static func machine() -> String {
        let cpu =
            (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu)"
    }

    static func fmt(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }
}
