import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OCPP
import OCPPTranslation
import RelayConfig
import RelayObservability
import RelayRecording
import RelayStateStores
import ServiceLifecycle

/// The relay: accepts chargers, dials their upstream, relays and records every message.
///
/// A `Service`: `run()` listens until graceful shutdown, then stops accepting, closes every session with
/// 1001 (going away), waits for the close handshakes (bounded by the shutdown timeout) and finishes every
/// recording segment.
public final class RelayServer: Service, Sendable {
    /// The configuration and translation tables new connections use; ``reload(_:)`` replaces them.
    let live: NIOLockedValueBox<Live>

    struct Live {
        var configuration: RelayConfiguration
        /// Tables and state store, when the relay translates 1.6 chargers for a 2.0.1 upstream.
        var translation: Translation?
        /// Made from the configured files; a reload reads them again (certificates renewed in place).
        var tls: TLSContexts
    }

    /// The configuration new connections use.
    public var configuration: RelayConfiguration { live.withLockedValue { $0.configuration } }
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let recorders: LoopRecorders
    let registry = SessionRegistry()
    let connector: UpstreamConnector
    let nextConnection = NIOLockedValueBox<UInt64>(0)
    let children = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    /// Where the relay reads the time.
    public let clock: RelayClock
    private let onListening: @Sendable (_ host: String, _ port: Int) -> Void
    /// Random id of this run; written into every segment so connection numbers stay unique.
    public let runID: String
    /// What happens to each accepted connection until its session runs.
    let upgrades: ChargerUpgrades
    /// What the relay counts; served on `metrics.listen` when configured.
    public let metrics: RelayMetrics
    /// Whether every loop can write its recordings (`/readyz`, `/metrics`).
    private let recordingHealth = RecordingHealth()
    /// Why the shared state database cannot be reached (checked every few seconds), or `nil`.
    private let stateHealth = NIOLockedValueBox<String?>(nil)
    /// The state stores to run for as long as the relay runs: the one at start, and one a reload opens (a new
    /// `translation.state`). ``run()`` runs each in its task group.
    private let stores = AsyncStream<any TranslationStateStore>.makeStream()
    /// What the console's viewers watch live.
    public let console = ConsoleHub()
    /// Wall-clock microseconds of the start.
    public let startedAt: UInt64

    struct Translation: Sendable {
        let tables: MappingTables
        let states: TranslationStates
        let storePath: String
    }

    /// - Parameters:
    ///   - clock: where the relay reads the time (records, payload timestamps, intervals).
    ///   - onListening: called with the bound host and port once the relay accepts connections
    ///     (useful with port 0).
    /// - Throws: ``ConfigurationError`` when translation is configured and the mapping tables have errors
    ///   or the state database cannot be opened.
    public init(
        configuration: RelayConfiguration,
        logger: Logger,
        clock: RelayClock = .system,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }
    ) throws {
        self.clock = clock
        self.startedAt = clock.wall()
        let runID = (0..<4).map { _ in String(format: "%04x", UInt16.random(in: .min ... .max)) }.joined()
        self.runID = runID
        let translation = try Self.makeTranslation(
            for: configuration,
            reusing: nil,
            logger: logger,
            clock: clock,
            runID: runID,
            registry: registry
        )
        let tls = try TLSContexts(listener: configuration.listenerTLS, upstream: configuration.upstreamTLS)
        self.live = NIOLockedValueBox(Live(configuration: configuration, translation: translation, tls: tls))
        if let store = translation?.states.store { stores.continuation.yield(store) }
        self.metrics = RelayMetrics()
        self.logger = logger
        self.onListening = onListening
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        // What a killed relay journaled and had not compressed becomes segment data before anything new is written.
        for line in JournalLeftover.recover(configuration.recording, relayVersion: RelayVersion.current, clock: clock) {
            logger.notice("recovered a write-ahead journal", metadata: ["journal": "\(line)"])
        }
        self.recorders = LoopRecorders(
            group: group,
            recording: configuration.recording,
            runID: runID,
            clock: clock,
            logger: logger,
            metrics: metrics,
            health: recordingHealth,
            console: console
        )
        self.connector = UpstreamConnector(
            maxFrameBytes: configuration.maxFrameBytes,
            timeout: TimeAmount(configuration.upstreamTimeout)
        )
        self.upgrades = ChargerUpgrades(
            live: live,
            logger: logger,
            recorders: self.recorders,
            registry: registry,
            connector: connector,
            nextConnection: nextConnection,
            children: children,
            clock: clock,
            metrics: metrics,
            console: console,
            verifiedCredentials: VerifiedCredentials(),
            redialPacer: RedialPacer(perSecond: configuration.redialRate),
            gates: HandshakeGates(group: group, metrics: metrics)
        )
    }

    /// The mapping tables and the state store when `configuration` translates; the store is kept when its file
    /// stays the same.
    private static func makeTranslation(
        for configuration: RelayConfiguration,
        reusing current: Translation?,
        logger: Logger,
        clock: RelayClock,
        runID: String,
        registry: SessionRegistry
    ) throws(ConfigurationError) -> Translation? {
        guard configuration.translates else { return nil }
        let tables = MappingTables.load(
            directory: configuration.mappingsDirectory,
            overrides: configuration.mappingOverrides
        )
        guard tables.isUsable else {
            throw ConfigurationError(
                "the mapping tables in \(configuration.mappingsDirectory ?? "the binary") have errors:\n"
                    + tables.diagnostics.map(\.description).joined(separator: "\n")
            )
        }
        for warning in tables.diagnostics { logger.warning("\(warning)") }
        if let current, current.storePath == configuration.stateDatabasePath {
            return Translation(tables: tables, states: current.states, storePath: current.storePath)
        }
        if configuration.stateIsShared {
            let store = try PostgresStateStore(
                url: configuration.stateDatabasePath,
                password: configuration.statePassword,
                relayID: runID,
                logger: logger,
                ownershipLost: { [registry] charger in
                    registry.current(for: charger)?.replaceByNewerConnection(reason: "connected through another relay")
                }
            )
            return Translation(
                tables: tables,
                states: TranslationStates(store: store, passwords: store, writeBound: configuration.upstreamTimeout),
                storePath: configuration.stateDatabasePath
            )
        }
        do {
            return Translation(
                tables: tables,
                states: try {
                    let store = try SQLiteStateStore(path: configuration.stateDatabasePath, clock: clock)
                    return TranslationStates(store: store, passwords: store)
                }(),
                storePath: configuration.stateDatabasePath
            )
        } catch {
            throw ConfigurationError("cannot open the translation state \(configuration.stateDatabasePath): \(error)")
        }
    }

    /// Applies a new configuration to connections from now on (SIGHUP): routes, upstreams and their versions and
    /// credentials, the allow-list and charger passwords, the mapping tables and their overrides, limits and
    /// timeouts of new sessions, and the TLS certificates and keys (read again from their files, renewed or moved).
    /// Connected chargers keep what they had. Settings bound at start (listen address, whether the listener speaks
    /// TLS, recordings, event loops, metrics address) are not changed; the notes returned name those that differ.
    /// On an error nothing changes.
    public func reload(_ new: RelayConfiguration) throws(ConfigurationError) -> [String] {
        let current = live.withLockedValue { $0 }
        let translation = try Self.makeTranslation(
            for: new,
            reusing: current.translation,
            logger: logger,
            clock: clock,
            runID: runID,
            registry: registry
        )
        var applied = new
        // What is bound at start keeps its running value; the settings say which.
        let notes = RelaySettings.boundAtStart.compactMap { setting in
            setting.keep(&applied, current.configuration)
                ? "\(setting.key) changed; it takes effect after a restart" : nil
        }
        // Certificate files are read again, so that renewed ones serve new connections without a restart.
        let tls = try TLSContexts(listener: applied.listenerTLS, upstream: applied.upstreamTLS)
        live.withLockedValue { $0 = Live(configuration: applied, translation: translation, tls: tls) }
        if let translation, translation.storePath != current.translation?.storePath {
            stores.continuation.yield(translation.states.store)
        }
        return notes.sorted()
    }

    /// Runs the relay: its state stores in its task group (``TranslationStateStore/run()``) for as long as it serves,
    /// and the server until a graceful shutdown has drained the sessions.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { [stores] in
                await withDiscardingTaskGroup { running in
                    for await store in stores.stream { running.addTask { await store.run() } }
                }
            }
            try await serve()
            // The sessions drained and their states are stored: the stores may go.
            group.cancelAll()
        }
    }

    private func serve() async throws {
        if let store = live.withLockedValue({ $0.translation?.states.store }) {
            do {
                try await store.prepare()
            } catch {
                // A relay that cannot reach its shared state would fork it: it does not start.
                throw ConfigurationError(
                    "cannot reach the translation state database \(configuration.stateDatabasePath): \(String(reflecting: error))"
                )
            }
        }
        try FileManager.default.createDirectory(
            atPath: configuration.recording.directory,
            withIntermediateDirectories: true
        )
        let serverChannel = try await makeBootstrap()
            .bind(host: configuration.listenHost, port: configuration.listenPort).get()
        let maintenance = startMaintenance()
        // Health and metrics answer before the relay says it listens (scripts wait for that line).
        let accepting = NIOLockedValueBox(true)
        let observability = try await startObservability(accepting: accepting)
        if let address = serverChannel.localAddress {
            logger.info(
                "listening",
                metadata: [
                    "address": "\(address)", "upstream": "\(configuration.upstream)",
                    "upstream_version": "\(configuration.upstreamVersion?.shortName ?? "passthrough")",
                    "recordings": "\(configuration.recording.directory)",
                ]
            )
            onListening(address.ipAddress ?? configuration.listenHost, address.port ?? configuration.listenPort)
        }
        // Not ready from now on: a load balancer stops sending chargers while the connected ones drain.
        let stopAccepting: @Sendable () -> Void = {
            accepting.withLockedValue { $0 = false }
            serverChannel.close(promise: nil)
        }
        // A graceful shutdown drains; so does a cancelled group (a service beside the relay failed), rather than
        // waiting for ever on a listener nobody closes.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await serverChannel.closeFuture.get()
            } onGracefulShutdown: {
                stopAccepting()
            }
        } onCancel: {
            stopAccepting()
        }
        for task in maintenance { task.cancel() }
        await drain()
        await observability?.close()
        try await group.shutdownGracefully()
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` when `metrics.listen` is configured.
    private func startObservability(accepting: NIOLockedValueBox<Bool>) async throws -> ObservabilityServer? {
        guard let (host, port) = configuration.metricsListen else { return nil }
        let reachability = UpstreamReachability(clock: clock) { [live] in live.withLockedValue { $0.configuration } }
        let server = try await ObservabilityServer.start(
            host: host,
            port: port,
            group: group,
            endpoints: ObservabilityServer.Endpoints(
                metrics: { [metrics, registry, recordingHealth] in
                    metrics.exposition(
                        connectedChargers: registry.liveCount,
                        recordingFailing: recordingHealth.failure != nil
                    )
                },
                ready: { [recordingHealth, stateHealth] loop in
                    guard accepting.withLockedValue({ $0 }) else {
                        return loop.makeSucceededFuture((false, "shutting down"))
                    }
                    if let failure = recordingHealth.failure {
                        return loop.makeSucceededFuture((false, "recording failing: \(failure)"))
                    }
                    if let failure = stateHealth.withLockedValue({ $0 }) {
                        return loop.makeSucceededFuture((false, "state database unreachable: \(failure)"))
                    }
                    return reachability.unreachable(on: loop).map { unreachable in
                        unreachable.isEmpty
                            ? (true, "ready")
                            : (false, "upstream unreachable: \(unreachable.joined(separator: ", "))")
                    }
                }
            )
        )
        logger.info("metrics and health", metadata: ["address": "\(server.localAddress.map { "\($0)" } ?? "?")"])
        return server
    }

    // MARK: Maintenance and shutdown

    private func startMaintenance() -> [RepeatedTask] {
        var tasks = [
            recorders.scheduleMaintenance(on: group.next(), recording: configuration.recording, clock: clock)
        ]
        // After a burst of connections (a reconnect storm), give the memory its handshakes used back to the system
        // once the burst is over: glibc keeps freed memory otherwise, and the relay looks as large as its worst
        // minute for ever. A backend restart's redials are such a burst too.
        let seen = NIOLockedValueBox((connections: UInt64(0), settled: true))
        let connections = nextConnection
        let pacer = upgrades.redialPacer
        tasks.append(
            group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                let now = connections.withLockedValue { $0 } &+ pacer.redials
                let trim = seen.withLockedValue { state -> Bool in
                    defer { state.connections = now }
                    if now != state.connections {
                        state.settled = false
                        return false
                    }
                    guard !state.settled else { return false }
                    state.settled = true
                    return true
                }
                if trim { Memory.returnFreed() }
            }
        )
        if configuration.stateIsShared { tasks.append(checkStateDatabase()) }
        return tasks
    }

    /// Reaches the shared state database every 5 s (bounded like every wait on it, by `timeouts.upstream`, at most
    /// 5 s): `/readyz` is 503 and the log says so while it cannot be reached, and says when it is back.
    private func checkStateDatabase() -> RepeatedTask {
        let loop = group.next()
        let bound = min(TimeAmount(configuration.upstreamTimeout), .seconds(5))
        return loop.scheduleRepeatedAsyncTask(initialDelay: .seconds(5), delay: .seconds(5)) {
            [live, stateHealth, logger] _ in
            guard let store = live.withLockedValue({ $0.translation?.states.store }) else {
                return loop.makeSucceededVoidFuture()
            }
            return ChargerUpgrades.bounded(within: bound, on: loop) { try await store.check() }
                .map { nil as String? }
                .recover { error in "\(error)" }
                .map { failure in
                    let before = stateHealth.withLockedValue { health in
                        defer { health = failure }
                        return health
                    }
                    if let failure, before == nil {
                        logger.error(
                            "the state database is unreachable: chargers that connect are refused with 502, state writes wait",
                            metadata: ["error": "\(failure)"]
                        )
                    } else if failure == nil, before != nil {
                        logger.notice("the state database is reachable again")
                    }
                }
        }
    }

    private func drain() async {
        let sessions = registry.live
        if !sessions.isEmpty {
            logger.info("shutting down: closing \(sessions.count) connection(s) with 1001")
        }
        for session in sessions {
            session.eventLoop.execute { session.closeAll(code: 1001, reason: "relay shutting down") }
        }
        await registry.allEnded(within: configuration.shutdownTimeout)
        // Whatever is left (handshakes in flight, peers that never answered the close) is cut.
        let remaining = children.withLockedValue { Array($0.values) }
        for channel in remaining {
            try? await channel.close()
        }
        await registry.allEnded(within: .seconds(1))
        await recorders.finish()
        logger.info("stopped; recordings finished")
    }
}
