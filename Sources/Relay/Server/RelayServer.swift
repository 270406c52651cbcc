import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import OCPP
import OCPPTranslation
import RelayRecording
import ServiceLifecycle

/// The relay: accepts chargers, dials their upstream, relays and records every message.
///
/// A `Service`: `run()` listens until graceful shutdown, then stops accepting, closes every session with
/// 1001 (going away), waits for the close handshakes (bounded by the shutdown timeout) and finishes every
/// recording segment.
public final class RelayServer: Service, Sendable {
    /// The configuration and translation tables new connections use; ``reload(_:)`` replaces them.
    private let live: NIOLockedValueBox<Live>

    private struct Live {
        var configuration: RelayConfiguration
        /// Tables and state store, when the relay translates 1.6 chargers for a 2.0.1 upstream.
        var translation: Translation?
        /// Made from the configured files; a reload reads them again (certificates renewed in place).
        var tls: TLSContexts
    }

    /// The configuration new connections use.
    public var configuration: RelayConfiguration { live.withLockedValue { $0.configuration } }
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let recorders: LoopRecorders
    private let registry = SessionRegistry()
    /// Charger credentials already checked, so that reconnecting chargers cost a hash, not a PBKDF2.
    private let verifiedCredentials = VerifiedCredentials()
    private let connector: UpstreamConnector
    private let nextConnection = NIOLockedValueBox<UInt64>(0)
    private let children = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    /// Refusals over the connection limit since the last log line about them.
    private let overLimitRefusals = NIOLockedValueBox<(count: Int, lastLog: ContinuousClock.Instant?)>((0, nil))
    private let onListening: @Sendable (_ host: String, _ port: Int) -> Void
    /// Random id of this run; written into every segment so connection numbers stay unique.
    public let runID: String
    /// Ids for translated messages and transactions.
    private let uuids = UUIDSource()
    /// What the relay counts; served on `metrics.listen` when configured.
    public let metrics: RelayMetrics
    /// Whether every loop can write its recordings (`/readyz`, `/metrics`).
    private let recordingHealth = RecordingHealth()

    struct Translation: Sendable {
        let tables: MappingTables
        let states: TranslationStates
        let storePath: String
    }

    /// - Parameters:
    ///   - onListening: called with the bound host and port once the relay accepts connections
    ///     (useful with port 0).
    /// - Throws: ``ConfigurationError`` when translation is configured and the mapping tables have errors
    ///   or the state database cannot be opened.
    public init(
        configuration: RelayConfiguration,
        logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void = { _, _ in }
    ) throws {
        let translation = try Self.makeTranslation(for: configuration, reusing: nil, logger: logger)
        let tls = try TLSContexts(listener: configuration.listenerTLS, upstream: configuration.upstreamTLS)
        self.live = NIOLockedValueBox(Live(configuration: configuration, translation: translation, tls: tls))
        self.metrics = RelayMetrics()
        self.logger = logger
        self.onListening = onListening
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        self.runID = (0..<4).map { _ in String(format: "%04x", UInt16.random(in: .min ... .max)) }.joined()
        var recorders: [ObjectIdentifier: LoopRecorder] = [:]
        for (index, loop) in group.makeIterator().enumerated() {
            let writer = RecordingWriter(
                configuration: configuration.recording,
                loop: index,
                runID: runID,
                relayVersion: RelayVersion.current
            )
            recorders[ObjectIdentifier(loop)] = LoopRecorder(
                eventLoop: loop,
                writer: writer,
                logger: logger,
                metrics: metrics,
                health: recordingHealth
            )
        }
        self.recorders = LoopRecorders(recorders)
        self.connector = UpstreamConnector(
            maxFrameBytes: configuration.maxFrameBytes,
            timeout: .nanoseconds(Int64(configuration.upstreamTimeoutSeconds * 1e9))
        )
    }

    /// The mapping tables and the state store when `configuration` translates; the store is kept when its file
    /// stays the same.
    private static func makeTranslation(
        for configuration: RelayConfiguration,
        reusing current: Translation?,
        logger: Logger
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
        do {
            return Translation(
                tables: tables,
                states: TranslationStates(store: try SQLiteStateStore(path: configuration.stateDatabasePath)),
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
        let translation = try Self.makeTranslation(for: new, reusing: current.translation, logger: logger)
        var applied = new
        var notes: [String] = []
        let old = current.configuration
        func keep<Value: Equatable>(_ path: WritableKeyPath<RelayConfiguration, Value>, _ name: String) {
            if applied[keyPath: path] != old[keyPath: path] {
                notes.append("\(name) changed; it takes effect after a restart")
                applied[keyPath: path] = old[keyPath: path]
            }
        }
        keep(\.listenHost, "listen")
        keep(\.listenPort, "listen")
        if (applied.listenerTLS == nil) != (old.listenerTLS == nil) {
            notes.append("tls was \(old.listenerTLS == nil ? "added" : "removed"); it takes effect after a restart")
            applied.listenerTLS = old.listenerTLS
        }
        // Certificate files are read again, so that renewed ones serve new connections without a restart.
        let tls = try TLSContexts(listener: applied.listenerTLS, upstream: applied.upstreamTLS)
        keep(\.recording, "recordings")
        keep(\.eventLoops, "event_loops")
        if applied.metricsListenText != old.metricsListenText {
            notes.append("metrics.listen changed; it takes effect after a restart")
            applied.metricsListen = old.metricsListen
        }
        keep(\.maxFrameBytes, "limits.max_frame_size")
        keep(\.upstreamTimeoutSeconds, "timeouts.upstream")
        live.withLockedValue { $0 = Live(configuration: applied, translation: translation, tls: tls) }
        return Array(Set(notes)).sorted()
    }

    public func run() async throws {
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
        await withGracefulShutdownHandler {
            try? await serverChannel.closeFuture.get()
        } onGracefulShutdown: {
            // Not ready from now on: a load balancer stops sending chargers while the connected ones drain.
            accepting.withLockedValue { $0 = false }
            serverChannel.close(promise: nil)
        }
        for task in maintenance { task.cancel() }
        await drain()
        await observability?.close()
        try await group.shutdownGracefully()
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` when `metrics.listen` is configured.
    private func startObservability(accepting: NIOLockedValueBox<Bool>) async throws -> ObservabilityServer? {
        guard let (host, port) = configuration.metricsListen else { return nil }
        let reachability = UpstreamReachability { [live] in live.withLockedValue { $0.configuration } }
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
                ready: { [recordingHealth] loop in
                    guard accepting.withLockedValue({ $0 }) else {
                        return loop.makeSucceededFuture((false, "shutting down"))
                    }
                    if let failure = recordingHealth.failure {
                        return loop.makeSucceededFuture((false, "recording failing: \(failure)"))
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

    // MARK: Pipeline

    /// Receive buffers start small: OCPP frames are a few hundred bytes, and every idle charger keeps one
    /// per socket (they grow for bursts).
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 512, maximum: 65536)

    private func makeBootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Reads per readiness event (NIO's default): a held leg is read at most 4 × 64 KiB past its hold.
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(.recvAllocator, value: RelayServer.receiveBuffers)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try configureChargerPipeline(channel)
                }
            }
    }

    private func configureChargerPipeline(_ channel: any Channel) throws {
        // One snapshot per connection: a reload in the middle of a handshake does not mix two configurations.
        let live = self.live.withLockedValue { $0 }
        let configuration = live.configuration
        if let context = live.tls.listener {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            try channel.pipeline.syncOperations.addHandler(TLSFailureLogger(logger: logger, metrics: metrics))
        }
        let handshake = NIOLoopBound(Handshake(), eventLoop: channel.eventLoop)
        let id = ObjectIdentifier(channel)
        let admitted = children.withLockedValue { children in
            guard children.count < configuration.maxConnections else { return false }
            children[id] = channel
            return true
        }
        guard admitted else {
            try refuseOverLimit(channel, configuration)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            children.withLockedValue { $0[id] = nil }
            // A charger that left before its handshake finished must not leave an upstream behind.
            let hs = handshake.value
            if !hs.attached, let upstream = hs.upstream { upstream.channel.close(promise: nil) }
        }
        dropUnlessRequestArrives(channel, handshake, timeout: configuration.handshakeTimeoutSeconds)
        let upgrader = NIOTypedWebSocketServerUpgrader<Void>(
            maxFrameSize: configuration.maxFrameBytes,
            enableAutomaticErrorHandling: false,  // protocol errors are answered by RelaySession.failed
            shouldUpgrade: { [self] channel, head in
                shouldUpgrade(channel: channel, head: head, boundHandshake: handshake, live: live)
            },
            upgradePipelineHandler: { [self] channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try startSession(channel: channel, handshake: handshake.value, configuration: configuration)
                }
            }
        )
        _ = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
            configuration: NIOUpgradableHTTPServerPipelineConfiguration(
                upgradeConfiguration: NIOTypedHTTPServerUpgradeConfiguration(
                    upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(RefusalResponder(handshake: handshake))
                        }
                    }
                )
            )
        )
    }

    /// Answers a charger over `limits.max_connections` with 503 once its request is in, and closes.
    private func refuseOverLimit(_ channel: any Channel, _ configuration: RelayConfiguration) throws {
        let refused = overLimitRefusals.withLockedValue { state in
            state.count += 1
            let now = ContinuousClock.now
            guard state.lastLog.map({ now - $0 >= .seconds(10) }) ?? true else { return 0 }
            state.lastLog = now
            defer { state.count = 0 }
            return state.count
        }
        if refused > 0 {
            logger.warning(
                "connection limit reached; chargers refused with 503",
                metadata: ["max_connections": "\(configuration.maxConnections)", "refused": "\(refused)"]
            )
        }
        metrics.refused(status: 503, by: "relay")
        let overLimit = Handshake()
        overLimit.refusal = Handshake.Refusal(
            status: .serviceUnavailable,
            headers: ["Retry-After": "30"],
            message: "ocpp-relay: too many connections (limits.max_connections \(configuration.maxConnections))"
        )
        let handshake = NIOLoopBound(overLimit, eventLoop: channel.eventLoop)
        let sync = channel.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(withErrorHandling: true)
        try sync.addHandler(RefusalResponder(handshake: handshake, answerEarly: false))
        // A refused client must not hold the socket either.
        dropUnlessRequestArrives(channel, handshake, timeout: configuration.handshakeTimeoutSeconds)
    }

    /// Drops a client that has not sent its whole request within `timeouts.handshake` (slowloris); once the
    /// request is in, the upstream timeout bounds the rest of the handshake.
    private func dropUnlessRequestArrives(
        _ channel: any Channel,
        _ handshake: NIOLoopBound<Handshake>,
        timeout: Double
    ) {
        let expiry = channel.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(
            in: .nanoseconds(Int64(timeout * 1e9))
        ) { [logger] in
            guard !handshake.value.requestReceived, channel.isActive else { return }
            logger.notice(
                "handshake timed out; connection dropped",
                metadata: ["remote": "\(Handshake.describe(channel.remoteAddress) ?? "?")", "timeout_s": "\(timeout)"]
            )
            channel.close(promise: nil)
        }
        handshake.value.expiry = expiry
        channel.closeFuture.whenComplete { _ in expiry.cancel() }
    }

    // MARK: Handshake

    private func shouldUpgrade(
        channel: any Channel,
        head: HTTPRequestHead,
        boundHandshake: NIOLoopBound<Handshake>,
        live: Live
    ) -> EventLoopFuture<HTTPHeaders?> {
        let configuration = live.configuration
        let eventLoop = channel.eventLoop
        let handshake = boundHandshake.value
        handshake.requestReceived = true
        // The request is in: its timer need not wait out its 30 s beside every connected charger.
        handshake.expiry?.cancel()
        handshake.expiry = nil
        handshake.connection = nextConnection.withLockedValue {
            $0 += 1
            return $0
        }
        handshake.path = Handshake.recordablePath(head.uri)
        handshake.offeredSubprotocols = Handshake.subprotocols(in: head.headers)
        let authorization = head.headers.first(name: "Authorization")
        handshake.authorizationPresent = authorization != nil
        handshake.authorizationUser = Handshake.basicUser(authorization)
        let remote = Handshake.describe(channel.remoteAddress)

        let identity: ChargePointIdentity
        do {
            identity = try ChargePointIdentity.parse(requestTarget: head.uri).identity
        } catch {
            refuse(
                handshake,
                status: error.code == .empty ? .notFound : .badRequest,
                message: error.message,
                remote: remote,
                on: eventLoop
            )
            return eventLoop.makeSucceededFuture(nil)
        }
        handshake.identity = identity
        if configuration.listenerTLS?.checkIdentity == true {
            // Security profile 3: the certificate names the charger it was issued to.
            let certificate = try? channel.pipeline.syncOperations.nioSSL_peerCertificate()
            let name = certificate.flatMap { TLSContexts.commonName(of: $0) }
            guard name == identity.value else {
                refuse(
                    handshake,
                    status: .forbidden,
                    message:
                        "the client certificate names \(name.map { "'\($0)'" } ?? "no common name"), not this charger",
                    remote: remote,
                    on: eventLoop
                )
                return eventLoop.makeSucceededFuture(nil)
            }
        }
        guard configuration.access.isAllowed(identity.value) else {
            refuse(
                handshake,
                status: .notFound,
                message: "charger is not on the allow-list",
                remote: remote,
                on: eventLoop
            )
            return eventLoop.makeSucceededFuture(nil)
        }
        guard configuration.access.passwords != nil else {
            return dial(identity, authorization: authorization, remote: remote, boundHandshake, live, on: eventLoop)
        }
        // PBKDF2 takes milliseconds: off the event loop, so that a storm of logins does not stall relaying.
        let access = configuration.access
        let verified = verifiedCredentials
        return NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            access.authenticate(identity.value, authorization: authorization, cache: verified)
        }.flatMap { [self] decision -> EventLoopFuture<HTTPHeaders?> in
            if case .unauthorized(let why) = decision {
                refuse(
                    boundHandshake.value,
                    status: .unauthorized,
                    headers: ["WWW-Authenticate": #"Basic realm="ocpp-relay", charset="UTF-8""#],
                    message: "authentication failed: \(why)",
                    remote: remote,
                    on: eventLoop
                )
                return eventLoop.makeSucceededFuture(nil)
            }
            return dial(identity, authorization: authorization, remote: remote, boundHandshake, live, on: eventLoop)
        }
    }

    /// Chooses the charger's route and dials its upstream; the charger's handshake completes when upstream
    /// accepts.
    private func dial(
        _ identity: ChargePointIdentity,
        authorization: String?,
        remote: String?,
        _ boundHandshake: NIOLoopBound<Handshake>,
        _ live: Live,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<HTTPHeaders?> {
        let configuration = live.configuration
        let handshake = boundHandshake.value
        let route = configuration.route(for: identity.value)
        handshake.upstreamURL = route.upstream.url(for: identity)

        var offered = handshake.offeredSubprotocols
        if let pinned = route.upstreamVersion {
            if offered.contains(pinned.rawValue) {
                offered = [pinned.rawValue]
            } else if pinned == .v201, let translation = live.translation,
                offered.contains(OCPPVersion.v16.rawValue)
            {
                // A 1.6 charger on a 2.0.1 backend: the relay translates (with the tables of this handshake).
                handshake.translated = true
                handshake.translation = translation
                offered = [OCPPVersion.v201.rawValue]
            } else {
                refuse(
                    handshake,
                    status: .badRequest,
                    message:
                        "this relay speaks \(pinned.rawValue) upstream and cannot serve a charger offering \(offered.isEmpty ? "no subprotocol" : offered.joined(separator: ", "))",
                    remote: remote,
                    on: eventLoop
                )
                return eventLoop.makeSucceededFuture(nil)
            }
        }
        // A charger that reconnects replaces its old connection; close the old one first, so that the
        // backend sees it go before the new one arrives.
        if let existing = registry.current(for: identity.value) {
            existing.replaceByNewerConnection()
        }
        if !configuration.routes.isEmpty {
            var logger = self.logger
            logger[metadataKey: "charger"] = "\(identity.value)"
            logger.debug(
                "routed",
                metadata: ["route": "\(route.reason)", "upstream": "\(handshake.upstreamURL ?? "")"]
            )
        }
        let upstreamAuthorization =
            route.upstreamPassword.map { BasicCredentials.header(user: identity.value, password: $0) }
            ?? (configuration.access.forwardAuthorization ? authorization : nil)
        // A translated charger's state is read while upstream is dialled, off the loop.
        let loaded = handshake.translation.map { translation in
            eventLoop.makeFutureWithTask { try await translation.states.load(identity: identity.value) }
        }
        return connector.connect(
            to: route.upstream,
            tls: live.tls.upstream,
            identity: identity,
            offeredSubprotocols: offered,
            authorization: upstreamAuthorization,
            on: eventLoop
        ).flatMap { outcome in
            guard let loaded else { return eventLoop.makeSucceededFuture((outcome, nil)) }
            return loaded.map { (outcome, $0) }.recover { [logger = self.logger] error in
                logger.error(
                    "cannot read the translation state; starting afresh",
                    metadata: ["charger": "\(identity)", "error": "\(error)"]
                )
                return (outcome, ChargerState())
            }
        }.map { [self] (outcome, state: ChargerState?) -> HTTPHeaders? in
            let handshake = boundHandshake.value
            handshake.translationState = state
            switch outcome {
            case .accepted(let channel, let handler, let subprotocol):
                handshake.upstream = Handshake.Upstream(channel: channel, handler: handler, subprotocol: subprotocol)
                var headers = HTTPHeaders()
                if handshake.translated {
                    guard subprotocol == OCPPVersion.v201.rawValue else {
                        channel.close(promise: nil)
                        handshake.upstream = nil
                        refuse(
                            handshake,
                            status: .badGateway,
                            message: "upstream did not accept ocpp2.0.1",
                            remote: remote,
                            on: eventLoop
                        )
                        return nil
                    }
                    headers.add(name: "Sec-WebSocket-Protocol", value: OCPPVersion.v16.rawValue)
                } else if let subprotocol {
                    headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol)
                }
                return headers
            case .refused(let status, let headers):
                refuse(
                    handshake,
                    status: status,
                    headers: headers,
                    message: "upstream refused the connection: \(status.code) \(status.reasonPhrase)",
                    remote: remote,
                    on: eventLoop,
                    by: "upstream"
                )
            case .failed(let message):
                metrics.upstreamFailure("unreachable")
                refuse(handshake, status: .badGateway, message: message, remote: remote, on: eventLoop)
            case .timedOut:
                metrics.upstreamFailure("timeout")
                refuse(
                    handshake,
                    status: .gatewayTimeout,
                    message: "upstream did not answer within \(configuration.upstreamTimeoutSeconds) s",
                    remote: remote,
                    on: eventLoop
                )
            }
            return nil
        }
    }

    /// Keeps the refusal for the responder and records it: an open event and a close with the HTTP status.
    private func refuse(
        _ handshake: Handshake,
        status: HTTPResponseStatus,
        headers: HTTPHeaders = [:],
        message: String,
        remote: String?,
        on eventLoop: any EventLoop,
        by source: String = "relay"
    ) {
        metrics.refused(status: Int(status.code), by: source)
        handshake.refusal = Handshake.Refusal(status: status, headers: headers, message: "ocpp-relay: \(message)")
        let recorder = recorders.recorder(for: eventLoop)
        recorder.writer.open(handshake.openRecord(remoteAddress: remote, subprotocol: nil))
        recorder.writer.close(
            ConnectionClose(
                connection: handshake.connection,
                time: Timestamp.now(),
                leg: .charger,
                initiator: "relay",
                code: Int(status.code),
                reason: message,
                refused: true
            ),
            final: true
        )
        recorder.scheduleFlush()
        var logger = self.logger
        logger[metadataKey: "charger"] = "\(handshake.identity?.value ?? "-")"
        logger.notice(
            "refused",
            metadata: ["status": "\(status.code)", "reason": "\(message)", "remote": "\(remote ?? "?")"]
        )
    }

    private func startSession(channel: any Channel, handshake: Handshake, configuration: RelayConfiguration) throws {
        guard let upstream = handshake.upstream, let identity = handshake.identity else {
            throw ChannelError.inappropriateOperationForState
        }
        let charger = try LegHandler.install(
            in: channel.pipeline.syncOperations,
            leg: .charger,
            maxFrameBytes: configuration.maxFrameBytes
        )
        var translator: Translator?
        if handshake.translated, let translation = handshake.translation, let state = handshake.translationState {
            let session = TranslationSession(
                identity: identity.value,
                tables: translation.tables,
                state: state,
                now: { Timestamp.rfc3339(Timestamp.now()) },
                makeID: { [uuids] in uuids.next() },
                uptime: { Double(NIODeadline.now().uptimeNanoseconds) / 1e9 }
            )
            translator = Translator(
                session: session,
                writer: translation.states.writer(for: channel.eventLoop),
                callTimeout: .nanoseconds(Int64(configuration.callTimeoutSeconds * 1e9))
            )
        }
        let session = RelaySession(
            connection: handshake.connection,
            identity: identity,
            charger: charger,
            upstream: upstream.handler,
            recorder: recorders.recorder(for: channel.eventLoop),
            registry: registry,
            logger: logger,
            closeTimeout: .nanoseconds(Int64(configuration.closeTimeoutSeconds * 1e9)),
            pingInterval: configuration.pingIntervalSeconds > 0
                ? .nanoseconds(Int64(configuration.pingIntervalSeconds * 1e9)) : nil,
            translator: translator,
            metrics: metrics,
            messageRate: configuration.messagesPerSecond > 0
                ? MessageRate(perSecond: configuration.messagesPerSecond, burst: Double(configuration.messageBurst))
                : nil
        )
        metrics.connectionAccepted()
        handshake.attached = true
        if let previous = registry.register(session) {
            previous.replaceByNewerConnection()
        }
        let remote = Handshake.describe(channel.remoteAddress)
        session.start(handshake.openRecord(remoteAddress: remote, subprotocol: upstream.subprotocol))
        handshake.release()
    }

    // MARK: Maintenance and shutdown

    private func startMaintenance() -> [RepeatedTask] {
        var tasks = group.makeIterator().map { loop in
            let recorders = self.recorders
            return loop.scheduleRepeatedTask(initialDelay: .seconds(30), delay: .seconds(30)) { _ in
                recorders.recorder(for: loop).maintenance()
            }
        }
        // After a burst of connections (a reconnect storm), give the memory its handshakes used back to the system
        // once the burst is over: glibc keeps freed memory otherwise, and the relay looks as large as its worst
        // minute for ever.
        let seen = NIOLockedValueBox((connections: UInt64(0), settled: true))
        let connections = nextConnection
        tasks.append(
            group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                let now = connections.withLockedValue { $0 }
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
        return tasks
    }

    private func drain() async {
        let sessions = registry.live
        if !sessions.isEmpty {
            logger.info("shutting down: closing \(sessions.count) connection(s) with 1001")
        }
        for session in sessions {
            session.eventLoop.execute { session.closeAll(code: 1001, reason: "relay shutting down") }
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(configuration.shutdownTimeoutSeconds * 1000))
        await registry.allEnded(before: deadline)
        // Whatever is left (handshakes in flight, peers that never answered the close) is cut.
        let remaining = children.withLockedValue { Array($0.values) }
        for channel in remaining {
            try? await channel.close()
        }
        await registry.allEnded(before: deadline + .seconds(1))
        for loop in group.makeIterator() {
            let recorders = self.recorders
            try? await loop.submit { recorders.recorder(for: loop).writer.finish() }.get()
        }
        logger.info("stopped; recordings finished")
    }
}

/// The recorder of each event loop, looked up by loop. Each recorder is used only on its own loop.
private final class LoopRecorders: @unchecked Sendable {
    private let recorders: [ObjectIdentifier: LoopRecorder]

    init(_ recorders: [ObjectIdentifier: LoopRecorder]) {
        self.recorders = recorders
    }

    func recorder(for loop: any EventLoop) -> LoopRecorder {
        loop.preconditionInEventLoop()
        return recorders[ObjectIdentifier(loop)]!
    }
}
