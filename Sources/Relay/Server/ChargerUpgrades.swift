import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import OCPP
import OCPPSchema
import OCPPTranslation
import OCPPTransport
import RelayConfig
import RelayObservability
import RelayRecording
import RelayStateStores

/// The charger's side of a connection, up to its session: the pipeline, the slowloris and connection limits,
/// and the upgrade, whose decisions ``ChargerAdmission`` makes and this code carries out.
/// Carries out what ``ChargerAdmission`` decides for each accepted connection: the HTTP pipeline and its limits,
/// the upgrade's checks (credentials, routes, the upstream's dial and answer), refusals recorded and counted, and the
/// session that starts once both legs are up. The server owns the listening socket and the lifecycle; this type owns
/// what happens to one connection until its session runs.
final class ChargerUpgrades: Sendable {
    let live: NIOLockedValueBox<RelayServer.Live>
    let logger: Logger
    let recorders: LoopRecorders
    let registry: SessionRegistry
    /// Charger credentials already checked, so that reconnecting chargers cost a hash, not a PBKDF2.
    let verifiedCredentials: VerifiedCredentials
    let connector: UpstreamConnector
    let nextConnection: NIOLockedValueBox<UInt64>
    let children: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    /// Refusals over the connection limit since the last log line about them.
    let overLimitRefusals = NIOLockedValueBox<(count: Int, lastLog: UInt64?)>((0, nil))
    let clock: RelayClock
    /// Ids for translated messages and transactions.
    let uuids = UUIDSource()
    let metrics: RelayMetrics
    let console: ConsoleHub
    /// Spreads the redials of lost upstreams (`limits.redial_rate`).
    let redialPacer: RedialPacer
    /// Handshakes at once per loop (`limits.handshakes`).
    let gates: HandshakeGates

    init(
        live: NIOLockedValueBox<RelayServer.Live>,
        logger: Logger,
        recorders: LoopRecorders,
        registry: SessionRegistry,
        connector: UpstreamConnector,
        nextConnection: NIOLockedValueBox<UInt64>,
        children: NIOLockedValueBox<[ObjectIdentifier: any Channel]>,
        clock: RelayClock,
        metrics: RelayMetrics,
        console: ConsoleHub,
        verifiedCredentials: VerifiedCredentials,
        redialPacer: RedialPacer = RedialPacer(perSecond: 0),
        gates: HandshakeGates
    ) {
        self.redialPacer = redialPacer
        self.gates = gates
        self.live = live
        self.logger = logger
        self.recorders = recorders
        self.registry = registry
        self.connector = connector
        self.nextConnection = nextConnection
        self.children = children
        self.clock = clock
        self.metrics = metrics
        self.console = console
        self.verifiedCredentials = verifiedCredentials
    }

    func configureChargerPipeline(_ channel: any Channel) throws {
        // One snapshot per connection: a reload in the middle of a handshake does not mix two configurations.
        let live = self.live.withLockedValue { $0 }
        let configuration = live.configuration
        if let context = live.tls.listener {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            try channel.pipeline.syncOperations.addHandler(TLSFailureLogger(logger: logger, metrics: metrics))
        }
        let policy = ChargerAdmission.Policy(configuration: configuration, canTranslate: live.translation != nil)
        let id = ObjectIdentifier(channel)
        let admitted = children.withLockedValue { children in
            guard children.count < configuration.maxConnections else { return false }
            children[id] = channel
            return true
        }
        guard admitted else {
            try refuseOverLimit(channel, policy)
            return
        }
        let handshake = NIOLoopBound(
            Handshake(admission: ChargerAdmission(policy: policy)),
            eventLoop: channel.eventLoop
        )
        channel.closeFuture.whenComplete { [self] _ in
            children.withLockedValue { $0[id] = nil }
            // A charger that left before its handshake finished must not leave an upstream behind.
            if case .accepted(let upstream) = handshake.value.upstream { upstream.channel.close(promise: nil) }
            gates.release(channel, handshake.value, closed: true, limit: configuration.handshakes)
        }
        dropUnlessRequestArrives(channel, handshake, timeout: configuration.handshakeTimeout)
        let upgrader = NIOTypedWebSocketServerUpgrader<Void>(
            maxFrameSize: configuration.maxFrameBytes,
            enableAutomaticErrorHandling: false,  // protocol errors are answered by RelaySession.failed
            shouldUpgrade: { [self] channel, head in
                requestReceived(channel: channel, head: head, handshake, live)
            },
            upgradePipelineHandler: { [self] channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try startSession(channel: channel, handshake: handshake.value, live: live)
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
    private func refuseOverLimit(_ channel: any Channel, _ policy: ChargerAdmission.Policy) throws {
        let refused = overLimitRefusals.withLockedValue { state in
            state.count += 1
            let now = clock.monotonic()
            guard state.lastLog.map({ now &- $0 >= 10_000_000_000 }) ?? true else { return 0 }
            state.lastLog = now
            defer { state.count = 0 }
            return state.count
        }
        let limit = policy.configuration.maxConnections
        if refused > 0 {
            logger.warning(
                "connection limit reached; chargers refused with 503",
                metadata: ["max_connections": "\(limit)", "refused": "\(refused)"]
            )
        }
        metrics.refused(status: 503, by: "relay")
        let refusal = ChargerAdmission.Refusal(
            status: .serviceUnavailable,
            headers: ["Retry-After": "30"],
            message: "too many connections (limits.max_connections \(limit))"
        )
        let handshake = NIOLoopBound(
            Handshake(admission: ChargerAdmission(refused: refusal)),
            eventLoop: channel.eventLoop
        )
        let sync = channel.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(withErrorHandling: true)
        try sync.addHandler(RefusalResponder(handshake: handshake, answerEarly: false))
        // A refused client must not hold the socket either.
        dropUnlessRequestArrives(channel, handshake, timeout: policy.configuration.handshakeTimeout)
    }

    /// Drops a client that has not sent its whole request within `timeouts.handshake` (slowloris); once the
    /// request is in (the timer is cancelled then), the upstream timeout bounds the rest of the handshake.
    private func dropUnlessRequestArrives(
        _ channel: any Channel,
        _ handshake: NIOLoopBound<Handshake>,
        timeout: Duration
    ) {
        let expiry = channel.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(timeout)) {
            [logger] in
            guard channel.isActive else { return }
            logger.notice(
                "handshake timed out; connection dropped",
                metadata: [
                    "remote": "\(Handshake.describe(channel.remoteAddress) ?? "?")",
                    "timeout_s": "\(timeout.secondsText)",
                ]
            )
            channel.close(promise: nil)
        }
        handshake.value.expiry = expiry
        channel.closeFuture.whenComplete { _ in expiry.cancel() }
    }

    // MARK: Carrying out the admission

    /// The charger's upgrade request is in: the admission decides.
    private func requestReceived(
        channel: any Channel,
        head: HTTPRequestHead,
        _ bound: NIOLoopBound<Handshake>,
        _ live: RelayServer.Live
    ) -> EventLoopFuture<HTTPHeaders?> {
        let handshake = bound.value
        // The request is in: its timer need not wait out its 30 s beside every connected charger.
        handshake.expiry?.cancel()
        handshake.expiry = nil
        let offered = Handshake.subprotocols(in: head.headers)
        let authorization = head.headers.first(name: "Authorization")
        if let policy = live.configuration.chargerDeflate {
            let offers = head.headers["Sec-WebSocket-Extensions"].map { $0[...] }
            handshake.deflate = PerMessageDeflate.accept(offers, policy: policy)
        }
        handshake.request = Handshake.RecordedRequest(
            connection: nextConnection.withLockedValue {
                $0 += 1
                return $0
            },
            path: Handshake.recordablePath(head.uri),
            offeredSubprotocols: offered,
            authorizationUser: Handshake.basicUser(authorization),
            authorizationPresent: authorization != nil,
            remote: Handshake.describe(channel.remoteAddress)
        )
        var certificate = ChargerAdmission.CertificateIdentity.notChecked
        if live.configuration.listenerTLS?.checkIdentity == true {
            let peer = try? channel.pipeline.syncOperations.nioSSL_peerCertificate()
            certificate = .commonName(peer.flatMap { TLSContexts.commonName(of: $0) })
        }
        let action = handshake.admission.requestReceived(
            ChargerAdmission.Request(
                uri: head.uri,
                offeredSubprotocols: offered,
                authorization: authorization,
                certificate: certificate
            )
        )
        return perform(action, channel, bound, live)
    }

    private func perform(
        _ action: ChargerAdmission.Action,
        _ channel: any Channel,
        _ bound: NIOLoopBound<Handshake>,
        _ live: RelayServer.Live
    ) -> EventLoopFuture<HTTPHeaders?> {
        let eventLoop = channel.eventLoop
        switch action {
        case .refuse(let refusal, let closeUpstream):
            if closeUpstream, case .accepted(let upstream) = bound.value.upstream {
                upstream.channel.close(promise: nil)
                bound.value.upstream = .none
            }
            recordRefusal(bound.value, refusal, on: eventLoop)
            return eventLoop.makeSucceededFuture(nil)
        case .authenticate(let identity, let authorization):
            // PBKDF2 takes milliseconds: off the event loop, so that a storm of logins does not stall relaying.
            // A password a backend changed through the relay supersedes the configured one.
            let access = live.configuration.access
            let verified = verifiedCredentials
            let changedPasswords = live.translation?.states.passwords
            let logger = self.logger
            return eventLoop.makeFutureWithTask { () -> PasswordHash? in
                guard let changedPasswords else { return nil }
                do {
                    return try await changedPasswords.changedPassword(of: identity)
                } catch {
                    logger.error(
                        "cannot read changed charger passwords; checking the configured one",
                        metadata: ["charger": "\(identity)", "error": "\(error)"]
                    )
                    return nil
                }
            }.flatMap { changed in
                NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
                    access.authenticate(identity, authorization: authorization, cache: verified, changed: changed)
                }
            }.flatMap { [self] decision in
                perform(bound.value.admission.authenticated(decision), channel, bound, live)
            }
        case .dial(let plan):
            // In a storm, the dial waits for one of the loop's handshake slots (`limits.handshakes`).
            return gates.acquire(channel, bound.value, limit: live.configuration.handshakes).flatMap { [self] in
                dial(plan, channel, bound, live)
            }
        case .complete(var headers):
            if let agreement = bound.value.deflate {
                headers.add(name: "Sec-WebSocket-Extensions", value: agreement.headerValue)
            }
            return eventLoop.makeSucceededFuture(headers)
        }
    }

    /// The state read did not answer within `timeouts.upstream`.
    struct StateReadTimedOut: Error, CustomStringConvertible {
        let timeout: TimeAmount
        var description: String { "no answer from the state database within \(timeout.nanoseconds / 1_000_000) ms" }
    }

    /// `work`'s result, or a ``StateReadTimedOut`` failure when it takes longer than `timeout` (the work itself goes on
    /// and its late result is dropped).
    static func bounded<T: Sendable>(
        within timeout: TimeAmount,
        on eventLoop: any EventLoop,
        _ work: @escaping @Sendable () async throws -> T
    ) -> EventLoopFuture<T> {
        let promise = eventLoop.makePromise(of: T.self)
        let done = NIOLoopBoundBox(false, eventLoop: eventLoop)
        let timer = eventLoop.scheduleTask(in: timeout) {
            guard !done.value else { return }
            done.value = true
            promise.fail(StateReadTimedOut(timeout: timeout))
        }
        eventLoop.makeFutureWithTask(work).whenComplete { result in
            guard !done.value else { return }
            done.value = true
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }

    /// Dials upstream for an admitted charger (and reads a translated charger's state meanwhile, off the loop);
    /// the charger's handshake completes when upstream accepts. A charger that reconnects replaces its old
    /// connection; a translated one is dialled (and its state read) once the old connection released the backend's
    /// leg, after delivering what it owed it (bounded by `timeouts.drain`), so that the new one starts from the
    /// latest state and the backend sees one connection of the charger at a time.
    private func dial(
        _ plan: ChargerAdmission.Plan,
        _ channel: any Channel,
        _ bound: NIOLoopBound<Handshake>,
        _ live: RelayServer.Live
    ) -> EventLoopFuture<HTTPHeaders?> {
        let eventLoop = channel.eventLoop
        let released = registry.current(for: plan.identity.value)?.replaceByNewerConnection()
        if !live.configuration.routes.isEmpty {
            var logger = self.logger
            logger[metadataKey: "charger"] = "\(plan.identity.value)"
            logger.debug(
                "routed",
                metadata: ["route": "\(plan.routeReason)", "upstream": "\(plan.upstream.url(for: plan.identity))"]
            )
        }
        let translation = plan.translation != nil ? live.translation : nil
        let ready =
            translation != nil
            ? released?.hop(to: eventLoop) ?? eventLoop.makeSucceededVoidFuture()
            : eventLoop.makeSucceededVoidFuture()
        // The read is bounded like the dial (`timeouts.upstream`): a database behind a partition answers nothing, and
        // the charger must get its 502 rather than wait for ever.
        let readTimeout = TimeAmount(live.configuration.upstreamTimeout)
        let loaded = translation.map { translation in
            ready.flatMap {
                Self.bounded(within: readTimeout, on: eventLoop) {
                    try await translation.states.load(identity: plan.identity.value)
                }
            }
        }
        return ready.flatMap { [connector] in
            connector.connect(
                to: plan.upstream,
                tls: live.tls.upstream,
                identity: plan.identity,
                offeredSubprotocols: plan.offeredSubprotocols,
                authorization: plan.authorization,
                deflate: live.configuration.upstreamDeflate,
                on: eventLoop
            )
        }.flatMap { outcome in
            guard let loaded else { return eventLoop.makeSucceededFuture((outcome, nil)) }
            let shared = live.configuration.stateIsShared
            return loaded.map { (outcome, $0) }.recover { [logger = self.logger] error in
                // A shared state another relay may be writing is not guessed: the charger comes back later.
                logger.error(
                    shared
                        ? "cannot read the translation state; charger refused"
                        : "cannot read the translation state; starting afresh",
                    metadata: ["charger": "\(plan.identity)", "error": "\(error)"]
                )
                return (outcome, shared ? nil : ChargerState())
            }
        }.flatMap { [self] (outcome, state: ChargerState?) in
            let answer: ChargerAdmission.UpstreamAnswer
            switch outcome {
            case .accepted(let upstreamChannel, _, _) where translation != nil && state == nil:
                upstreamChannel.close(promise: nil)
                answer = .failed("the translation state database is unreachable; connect again later")
            case .accepted(let upstreamChannel, let handler, let subprotocol):
                guard channel.isActive else {
                    // The charger went while upstream was dialled.
                    upstreamChannel.close(promise: nil)
                    return eventLoop.makeSucceededFuture(nil)
                }
                bound.value.upstream = .accepted(
                    .init(
                        channel: upstreamChannel,
                        handler: handler,
                        subprotocol: subprotocol,
                        translation: translation,
                        state: state
                    )
                )
                answer = .accepted(subprotocol: subprotocol)
            case .refused(let status, let headers):
                answer = .refused(status: status, headers: headers)
            case .failed(let message):
                answer = .failed(message)
            case .timedOut:
                answer = .timedOut
            }
            return perform(bound.value.admission.upstreamAnswered(answer), channel, bound, live)
        }
    }

    /// Counts and records a refusal (an open event and a close with the HTTP status) and logs it; the
    /// ``RefusalResponder`` answers it.
    private func recordRefusal(_ handshake: Handshake, _ refusal: ChargerAdmission.Refusal, on eventLoop: any EventLoop)
    {
        if let failure = refusal.upstreamFailure { metrics.upstreamFailure(failure) }
        metrics.refused(status: Int(refusal.status.code), by: refusal.byUpstream ? "upstream" : "relay")
        let recorder = recorders.recorder(for: eventLoop)
        recorder.writer.open(handshake.openRecord(subprotocol: nil, time: clock.wall()))
        recorder.writer.close(
            ConnectionClose(
                connection: handshake.request?.connection ?? 0,
                time: clock.wall(),
                leg: .charger,
                initiator: "relay",
                code: Int(refusal.status.code),
                reason: refusal.message,
                refused: true
            ),
            final: true
        )
        recorder.scheduleFlush()
        var logger = self.logger
        logger[metadataKey: "charger"] = "\(handshake.admission.identity?.value ?? "-")"
        logger.notice(
            "refused",
            metadata: [
                "status": "\(refusal.status.code)", "reason": "\(refusal.message)",
                "remote": "\(handshake.request?.remote ?? "?")",
            ]
        )
    }

    /// How the session dials its upstream again within the grace of a loss, when its route has one: as the first
    /// dial, offering only the subprotocol the session speaks.
    private func redialer(
        _ plan: ChargerAdmission.Plan,
        subprotocol: String?,
        live: RelayServer.Live
    )
        -> UpstreamRedialer?
    {
        guard plan.reconnectGrace > .zero else { return nil }
        let connector = self.connector
        let tls = live.tls.upstream
        let deflate = live.configuration.upstreamDeflate
        return UpstreamRedialer(
            grace: plan.reconnectGrace,
            subprotocol: subprotocol,
            pacer: redialPacer
        ) { eventLoop in
            connector.connect(
                to: plan.upstream,
                tls: tls,
                identity: plan.identity,
                offeredSubprotocols: subprotocol.map { [$0] } ?? [],
                authorization: plan.authorization,
                deflate: deflate,
                on: eventLoop
            )
        }
    }

    /// The upgrade completed: the session takes both legs.
    private func startSession(channel: any Channel, handshake: Handshake, live: RelayServer.Live) throws {
        let configuration = live.configuration
        // The handshake is over: the next connection of a storm may start its own.
        gates.release(channel, handshake, closed: false, limit: configuration.handshakes)
        guard case .admitted(let plan, let subprotocol) = handshake.admission.state,
            case .accepted(let upstream) = handshake.upstream, let request = handshake.request
        else {
            throw ChannelError.inappropriateOperationForState
        }
        let charger = try LegHandler.install(
            in: channel.pipeline.syncOperations,
            leg: .charger,
            maxFrameBytes: configuration.maxFrameBytes,
            deflate: handshake.deflate
        )
        var translator: Translator?
        if let direction = plan.translation, let translation = upstream.translation, let state = upstream.state {
            let session = RelayServer.translation(
                direction,
                identity: plan.identity.value,
                tables: translation.tables,
                state: state,
                uuids: uuids,
                clock: clock,
                options: plan.translationOptions,
                callTimeout: configuration.callTimeout
            )
            translator = Translator(
                session: session,
                writer: translation.states.writer(for: channel.eventLoop),
                passwords: configuration.access.passwords.flatMap { passwords in
                    translation.states.passwords.map { (store: $0, rounds: passwords[plan.identity.value]?.rounds) }
                }
            )
        }
        let chargerVersion = plan.translation?.charger ?? subprotocol.flatMap(OCPPVersion.init(rawValue:))
        var sessionMirrors: SessionMirrors?
        var mirrorProblems: [String] = []
        // Mirrors keep their state in the translation store, which a configuration with mirrors always opens.
        if !plan.mirrors.isEmpty, let translation = live.translation {
            let (planned, problems) = SessionMirrors.plan(
                plan.mirrors,
                identity: plan.identity,
                chargerVersion: chargerVersion,
                primaryVersion: subprotocol.flatMap(OCPPVersion.init(rawValue:)),
                tables: translation.tables,
                uuids: uuids,
                clock: clock,
                callTimeout: configuration.callTimeout
            )
            mirrorProblems = problems
            if !planned.isEmpty {
                sessionMirrors = SessionMirrors(
                    mirrors: planned,
                    callTimeout: configuration.callTimeout,
                    chargerSpeaks16: chargerVersion == .v16,
                    connector: connector,
                    tls: live.tls.upstream,
                    states: translation.states,
                    writer: translation.states.writer(for: channel.eventLoop)
                )
            }
        }
        let session = RelaySession(
            connection: request.connection,
            identity: plan.identity,
            charger: charger,
            upstream: upstream.handler,
            recorder: recorders.recorder(for: channel.eventLoop),
            registry: registry,
            logger: logger,
            closeTimeout: configuration.closeTimeout,
            drainTimeout: configuration.drainTimeout,
            pingInterval: configuration.pingInterval > .zero ? configuration.pingInterval : nil,
            translator: translator,
            metrics: metrics,
            messageRate: configuration.messagesPerSecond > 0
                ? MessageRate(perSecond: configuration.messagesPerSecond, burst: Double(configuration.messageBurst))
                : nil,
            mirrors: sessionMirrors,
            console: console,
            consoleInfo: SessionConsoleInfo(
                route: plan.routeReason,
                upstream: "\(plan.upstream.url(for: plan.identity))",
                chargerVersion: chargerVersion?.shortName,
                upstreamVersion: (plan.translation?.upstream ?? chargerVersion)?.shortName
            ),
            redialer: redialer(plan, subprotocol: subprotocol, live: live),
            validation: plan.rejectInvalidCalls && translator == nil
                ? chargerVersion.map(CallValidation.init) : nil
        )
        metrics.connectionAccepted()
        handshake.upstream = .attached
        registry.register(session)?.replaceByNewerConnection()
        var open = handshake.openRecord(subprotocol: subprotocol, time: clock.wall())
        if configuration.judgesFrames(ofConnection: open.connection) { open.judged = true }
        if let sessionMirrors {
            open.mirrorSubprotocols = Dictionary(
                sessionMirrors.mirrors.map { ($0.settings.name, $0.subprotocol) },
                uniquingKeysWith: { a, _ in a }
            )
        }
        session.start(open)
        for problem in mirrorProblems { session.recordError(.charger, problem) }
        // An idle charger's handshake lives as long as its connection: it keeps nothing of the request.
        handshake.request = nil
        handshake.admission.sessionStarted()
    }
}
