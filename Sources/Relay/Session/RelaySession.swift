import Logging
import NIOCore
import NIOWebSocket
import OCPP
import OCPPSchema
import OCPPTranslation
import RelayObservability
import RelayRecording

/// One charger relayed to its upstream: the legs on one event loop, the recorder of that loop between them.
///
/// Every message is recorded when it arrives and forwarded after the loop's flush has written it
/// (``LoopRecorder``). What happens is decided by ``SessionCore`` (where a message goes, how legs open, close and
/// stay alive, the charger's budget, the drain); the session performs its actions (``run(_:)``): records, close
/// frames, pings, disconnects, timers, and moving messages.
///
/// Confined to its event loop; other threads reach it through ``eventLoop``.
final class RelaySession: @unchecked Sendable {
    let connection: UInt64
    let identity: ChargePointIdentity
    let eventLoop: any EventLoop
    let recorder: LoopRecorder
    private let registry: SessionRegistry
    /// The relay's logger; ``logger`` adds this session's metadata when something is logged (an idle session
    /// keeps no metadata of its own: memory per connection counts with thousands of chargers).
    private let baseLogger: Logger
    private let closeTimeout: Duration
    /// How long the primary upstream stays after the charger left, for what the translation owes it.
    private let drainTimeout: Duration
    /// The drain's bound, while the charger is gone and the translation still owes the backend.
    private var drainTimer: Scheduled<Void>?
    /// Who waits for the primary upstream's release (a newer connection of the charger, which dials then); made
    /// only when someone waits (an idle session keeps no promise).
    private var upstreamReleased: EventLoopPromise<Void>?
    /// How often silent legs are checked; `nil` never pings.
    private let pingInterval: Duration?
    private let chargerLeg: LegHandler
    /// The primary upstream leg (a new one after a redial within the grace), and the others (none: mirrors are
    /// not session legs but ``mirrors``).
    var primaryLeg: LegHandler
    private let otherLegs: [LegHandler] = []
    /// The backends beside the primary, when the charger's route has any.
    let mirrors: SessionMirrors?
    var core: SessionCore
    /// How the primary upstream is dialled again within the grace of its loss (`timeouts.reconnect_grace`), and
    /// the grace's timers and the connection a redial made, while there is one.
    let redialer: UpstreamRedialer?
    /// Judges the charger's calls when its invalid ones are refused (`validation.reject_invalid_calls`).
    let validation: CallValidation?
    /// Set when the charger speaks 1.6 and upstream 2.0.1.
    let translator: Translator?
    let metrics: RelayMetrics
    private var rateResume: Scheduled<Void>?
    /// Calls waiting for their answers (message labels and call durations).
    private var pendingCalls = PendingCalls()
    /// Where the console's watchers of this charger get its frames, and what it lists of the connection.
    let console: ConsoleHub?
    var consoleInfo: SessionConsoleInfo
    /// The number of the last event handed to the console, and of the last message received (what a frame the
    /// relay sends was caused by).
    var consoleNumber: UInt64 = 0
    var consoleCause: UInt64?
    /// The console number of the message being received, taken before its mirrors get their copies (which the
    /// console shows with it, whatever order they reach the stream).
    var consoleReserved: UInt64?

    init(
        connection: UInt64,
        identity: ChargePointIdentity,
        charger: LegHandler,
        upstream: LegHandler,
        recorder: LoopRecorder,
        registry: SessionRegistry,
        logger: Logger,
        closeTimeout: Duration,
        drainTimeout: Duration = .seconds(30),
        pingInterval: Duration? = nil,
        translator: Translator? = nil,
        metrics: RelayMetrics = RelayMetrics(),
        messageRate: MessageRate? = nil,
        mirrors: SessionMirrors? = nil,
        console: ConsoleHub? = nil,
        consoleInfo: SessionConsoleInfo = SessionConsoleInfo(route: "", upstream: ""),
        redialer: UpstreamRedialer? = nil,
        validation: CallValidation? = nil
    ) {
        self.redialer = redialer
        self.validation = validation
        self.console = console
        self.consoleInfo = consoleInfo
        self.mirrors = mirrors
        self.metrics = metrics
        self.pingInterval = pingInterval
        self.translator = translator
        self.connection = connection
        self.identity = identity
        self.eventLoop = recorder.eventLoop
        self.chargerLeg = charger
        self.primaryLeg = upstream
        self.core = SessionCore(
            legs: SessionLegs(
                upstreams: 1,
                pingInterval: pingInterval,
                drainsUpstream: translator != nil,
                graceful: redialer != nil
            ),
            budget: messageRate.map { MessageBudget(rate: $0, now: recorder.clock.monotonic()) },
            translated: translator != nil,
            mirrored: mirrors != nil,
            grace: redialer.map { UpstreamGrace.Limits(length: $0.grace) }
        )
        self.recorder = recorder
        self.registry = registry
        self.closeTimeout = closeTimeout
        self.drainTimeout = drainTimeout
        self.baseLogger = logger
    }

    var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "charger"] = "\(identity.value)"
        logger[metadataKey: "connection"] = "\(connection)"
        return logger
    }

    private func handler(_ leg: LegID) -> LegHandler {
        switch leg {
        case .charger: chargerLeg
        case .upstream(0): primaryLeg
        case .upstream(let index): otherLegs[index - 1]
        case .mirror: preconditionFailure("a mirror's leg is reached through its SessionMirrors")
        }
    }

    /// Records the open event and lets messages flow.
    func start(_ open: ConnectionOpen) {
        recorder.writer.open(open)
        recorder.scheduleFlush()
        consoleInfo.connectedAt = clock.wall()
        consoleEvent(.open, leg: "charger", "connected (\(open.subprotocol ?? "no subprotocol"))")
        logger.info(
            "connected",
            metadata: ["subprotocol": "\(open.subprotocol ?? "none")", "remote": "\(open.remoteAddress ?? "?")"]
        )
        chargerLeg.attach(self)
        primaryLeg.attach(self)
        for leg in otherLegs { leg.attach(self) }
        if let pingInterval {
            recorder.timers.add(ObjectIdentifier(self), every: pingInterval / Liveness.checksPerInterval) { [self] in
                handle(.livenessCheck)
                checkMirrorLiveness()
            }
        }
        if let translator {
            // What an earlier connection left unsent (a 2.0.1 charger's transaction messages) goes first.
            handle(translator.session.started())
            // Calls nobody answers must not block the translation's lanes.
            recorder.timers.add(ObjectIdentifier(self), every: .seconds(1)) { [self] in
                guard translator.session.waitsForTime else { return }
                handle(translator.session.tick())
            }
        }
        if mirrors != nil {
            recorder.timers.add(ObjectIdentifier(self), every: .seconds(1)) { [self] in expireMirrors() }
            startMirrors()
        }
    }

    // MARK: Messages

    func received(_ message: LegMessage, on leg: LegID) {
        if case .mirror(let index) = leg {
            mirrorReceived(message, index: index)
            return
        }
        let kind: SessionCore.Message
        switch message.opcode {
        case .text where redialer != nil:
            kind = graceKind(message, on: leg)
        case .text: kind = .text
        case .binary: kind = .binary
        case .ping: kind = .ping
        case .connectionClose:
            var payload = message.unmaskedPayload(allocator: allocator)
            let code = payload.readInteger(as: UInt16.self).map(Int.init) ?? 1005
            kind = .close(code: code, reason: payload.readString(length: payload.readableBytes) ?? "")
        default: kind = .pong
        }
        defer { consoleReserved = nil }
        let now = leg == .charger && core.budgeted ? clock.monotonic() : 0
        run(core.handle(.received(leg, kind, now: now)), message)
    }

    /// Carries a data message where the core routed it: past the mirrors, into the translation, or recorded and
    /// forwarded as the bytes that came.
    private func deliver(_ message: LegMessage, from leg: LegID, offerToMirrors: Bool, route: SessionCore.Route) {
        if offerToMirrors {
            consoleReserve()
            if mirrored(message, from: leg) { return }
        }
        switch route {
        case .translate:
            translate(message.unmaskedPayload(allocator: allocator), opcode: message.opcode, from: leg)
        case .forward(let target):
            if validation != nil, leg == .charger, message.opcode == .text, refusedAsInvalid(message) { return }
            record(
                message.payload,
                maskKey: message.maskKey,
                leg: leg,
                direction: .in,
                opcode: message.opcode.rawValueForRecording,
                forwarded: target != nil,
                countedAs: Self.metricsDirection(leg)
            )
            if let target {
                recorder.afterFlush { [self] in forward(message, to: target) }
            } else {
                recorder.scheduleFlush()
            }
        }
    }

    /// Shows a text message to the mirrors: the charger's, and the primary's when the charger gets it as it
    /// came (a translated primary's are shown as translated). `true`: the charger answered a mirror's call, and
    /// the message was recorded and goes no further.
    private func mirrored(_ message: LegMessage, from leg: LegID) -> Bool {
        let data = message.unmaskedPayload(allocator: allocator)
        guard leg == .charger else {
            mirrorsToCharger(data)
            return false
        }
        guard mirrorsFromCharger(data) else { return false }
        record(data, leg: .charger, direction: .in, opcode: 1, forwarded: false)
        recorder.scheduleFlush()
        return true
    }

    /// How the metrics count a message of `leg`: 0 charger → upstream, 1 the other way; other upstreams' not.
    static func metricsDirection(_ leg: LegID) -> Int? {
        switch leg {
        case .charger: 0
        case .upstream(0): 1
        case .upstream, .mirror: nil
        }
    }

    /// Where the session reads the time.
    var clock: RelayClock { recorder.clock }

    var allocator: ByteBufferAllocator { chargerLeg.channel?.allocator ?? ByteBufferAllocator() }

    /// Records a payload (unmasked into the loop's scratch buffer when the peer masked it) and, when `countedAs`
    /// names its direction, counts it for the metrics.
    func record(
        _ data: ByteBuffer,
        maskKey: WebSocketMaskingKey? = nil,
        leg: LegID,
        direction: Direction,
        opcode: UInt8,
        forwarded: Bool,
        countedAs metricsDirection: Int? = nil
    ) {
        recorder.withUnmasked(data, key: maskKey) { bytes in
            let time = clock.wall()
            recorder.writer.frame(
                connection: connection,
                leg: leg.recorded,
                direction: direction,
                opcode: opcode,
                forwardedUnchanged: forwarded,
                payload: bytes,
                time: time
            )
            consoleFrame(bytes, leg: leg.description, direction: direction, forwarded: forwarded, time: time)
            if let metricsDirection {
                let action = pendingCalls.observe(
                    bytes,
                    direction: metricsDirection,
                    metrics: metrics,
                    now: clock.uptime
                )
                consoleCount(direction: metricsDirection, action: action)
            }
        }
    }

    /// Records an event of the connection (a translation note, a problem).
    func recordError(_ leg: LegID, _ message: String) {
        recorder.writer.error(
            ConnectionErrorEvent(connection: connection, time: clock.wall(), leg: leg.recorded, message: message)
        )
        recorder.scheduleFlush()
        consoleEvent(.note, leg: leg.description, message)
    }

    /// Frames a message the relay made (or re-frames one) and sends it.
    func deliver(_ data: ByteBuffer, opcode: WebSocketOpcode, to leg: LegID) {
        if redialer != nil, leg == .upstream(0) { return toPrimary(.made(data, opcode)) }
        send(to: leg) { [self] target in target.send(opcode, data, maskKey: maskKey(for: leg)) }
    }

    /// Sends a message for the primary upstream as it is (the grace decided it goes).
    func sendNow(_ message: Outgoing) {
        switch message {
        case .forwarded(let message):
            // The upstream dialled again may have agreed other compression than the message came with.
            guard message.compressed || handler(.upstream(0)).compression != nil else {
                return send(to: .upstream(0)) { target in target.sendWire(message.wire) }
            }
            let payload = message.unmaskedPayload(allocator: allocator)
            send(to: .upstream(0)) { [self] target in
                target.send(message.opcode, payload, maskKey: maskKey(for: .upstream(0)))
            }
        case .made(let data, let opcode):
            send(to: .upstream(0)) { [self] target in target.send(opcode, data, maskKey: maskKey(for: .upstream(0))) }
        }
    }

    /// Forwards a message as the bytes that came when their masking suits the receiving leg (clients mask,
    /// servers do not): no copy, no re-encoding. A peer that got masking wrong has its message re-framed.
    private func forward(_ message: LegMessage, to leg: LegID) {
        if redialer != nil, leg == .upstream(0), message.wireMasked == true { return toPrimary(.forwarded(message)) }
        // Compressed on either leg: each leg has its own deflate context, so the text is compressed again for the
        // receiving leg (or sent plain).
        if message.compressed || handler(leg).compression != nil {
            deliver(message.unmaskedPayload(allocator: allocator), opcode: message.opcode, to: leg)
        } else if message.wireMasked == (leg != .charger) {
            send(to: leg) { target in target.sendWire(message.wire) }
        } else {
            deliver(message.unmaskedPayload(allocator: allocator), opcode: message.opcode, to: leg)
        }
    }

    /// Writes to an open leg (a closing one gets nothing: the drop is recorded), and stops reading the leg that
    /// feeds it while it cannot take more (backpressure).
    func send(to leg: LegID, _ write: (LegHandler) -> Void) {
        guard core.legs.isOpen(leg) else {
            recordError(leg, "a message for the \(leg) leg was dropped: that leg is closing")
            return
        }
        let target = handler(leg)
        write(target)
        if !target.isWritable, let source = SessionLegs.source(into: leg) { handler(source).pauseReads(.backpressure) }
    }

    func writabilityChanged(_ leg: LegID, writable: Bool) {
        if writable, let source = SessionLegs.source(into: leg) { handler(source).resumeReads(.backpressure) }
    }

    private func maskKey(for leg: LegID) -> WebSocketMaskingKey? {
        leg == .charger ? nil : recorder.maskingKeys.next()
    }

    // MARK: Legs

    /// Feeds an event of the legs to the core and performs what it decides.
    private func handle(_ event: SessionLegs.Event) {
        run(core.handle(.legs(event)))
    }

    /// Performs the core's actions in order; `message` is the data message a `.deliver` carries.
    func run(_ actions: [SessionCore.Action], _ message: LegMessage? = nil) {
        for action in actions { run(action, message) }
    }

    private func run(_ action: SessionCore.Action, _ message: LegMessage?) {
        switch action {
        case .leg(let action): perform(action)
        case .afterFlush(let event): recorder.afterFlush { [self] in run(core.handle(event)) }
        case .holdChargerReads(let wait, let report): holdChargerReads(for: wait, report: report)
        case .pong(let leg):
            guard let message else { return }
            handler(leg).send(.pong, message.unmaskedPayload(allocator: allocator), maskKey: maskKey(for: leg))
        case .deliver(let leg, let offer, let route):
            guard let message else { return }
            deliver(message, from: leg, offerToMirrors: offer, route: route)
        case .startDrainTimer:
            drainTimer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(drainTimeout)) {
                [self] in
                run(core.handle(.drainEnded(undelivered: translator?.session.undelivered ?? 0)))
            }
        case .tellTranslationChargerLeft:
            if let translator { handle(translator.session.chargerLeft()) }
        case .cancelDrainTimer:
            drainTimer?.cancel()
            drainTimer = nil
        case .reportUndelivered(let left):
            metrics.drainUndelivered(left)
            let message =
                "\(left) call(s) for the backend undelivered when timeouts.drain passed; "
                + "what the relay answered itself stays stored for the charger's next connection"
            logger.warning("\(message)")
            recordError(.upstream(0), message)
        case .releaseUpstream:
            upstreamReleased?.succeed()
            upstreamReleased = nil
        case .answerHeartbeat(let id):
            answerHeartbeat(id, message)
        case .grace(let action):
            runGrace(action)
        }
    }

    /// The charger spent its budget: its reads stop until the budget has refilled.
    private func holdChargerReads(for nanoseconds: Int64, report: Bool) {
        let charger = chargerLeg
        charger.pauseReads(.rate)
        if report {
            metrics.rateLimited()
            let message = "\(core.budgetDescription ?? "the message budget"); reading the charger slowed"
            logger.warning("\(message)")
            recordError(.charger, message)
        }
        rateResume?.cancel()
        rateResume = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .nanoseconds(nanoseconds)) {
            charger.resumeReads(.rate)
        }
    }

    private func perform(_ action: SessionLegs.Action) {
        switch action {
        case .recordClose(let leg, let byPeer, let code, let reason):
            recorder.writer.close(
                ConnectionClose(
                    connection: connection,
                    time: clock.wall(),
                    leg: leg.recorded,
                    initiator: byPeer ? leg.recorded.rawValue : "relay",
                    code: code,
                    reason: reason
                ),
                final: false
            )
            recorder.scheduleFlush()
            consoleEvent(
                .close,
                leg: leg.description,
                "\(byPeer ? "closed by the peer" : "closed by the relay"): \(code) \(reason)"
            )
            if byPeer {
                if code == 1006 {
                    logger.info("\(leg) connection lost")
                } else {
                    logger.info("\(leg) closed", metadata: ["code": "\(code)", "reason": "\(reason)"])
                }
            }
        case .recordError(let leg, let message):
            recordError(leg, message)
            logger.warning("\(leg) \(message)")
        case .closeAndDisconnect(let leg, let code):
            let target = handler(leg)
            let promise = eventLoop.makePromise(of: Void.self)
            target.send(.connectionClose, Self.closePayload(code, ""), maskKey: maskKey(for: leg), promise: promise)
            promise.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { _ in target.closeChannel() }
        case .sendClose(let leg, let code, let reason):
            handler(leg).send(.connectionClose, Self.closePayload(code, reason), maskKey: maskKey(for: leg))
        case .startCloseTimer(let leg):
            eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(closeTimeout)) { [self] in
                handle(.closeTimedOut(leg))
            }
        case .disconnect(let leg):
            handler(leg).closeChannel()
        case .reset(let leg):
            handler(leg).resetChannel()
        case .ping(let leg):
            handler(leg).send(.ping, ByteBuffer(), maskKey: maskKey(for: leg))
        case .upstreamLost:
            metrics.upstreamFailure("lost")
        case .afterFlush, .drain, .upstreamInGrace:
            preconditionFailure("the core turns the legs' waits into its own")
        case .end:
            end()
        }
    }

    /// A close frame's payload: the code (when there is one) and the reason, cut to fit a control frame.
    static func closePayload(_ code: Int?, _ reason: String) -> ByteBuffer {
        guard let code else { return ByteBuffer() }
        var payload = ByteBufferAllocator().buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(UInt16(code))
        payload.writeString(String(decoding: reason.utf8.prefix(123), as: UTF8.self))
        return payload
    }

    /// Starts the close handshake on one leg (shutting down, replacing).
    func close(_ leg: LegID, code: Int, reason: String) {
        handle(.close(leg, code: code, reason: reason))
    }

    /// A newer connection of the same charger takes over: every leg closes with 1000, on this session's loop
    /// (callable from any thread); a translated session first delivers what it owes the backend. The future
    /// completes when the primary upstream is released: the newer connection reads the charger's state and dials
    /// then, so that the backend sees one connection of the charger at a time and the state is the latest.
    @discardableResult
    func replaceByNewerConnection(reason: String = "replaced by a newer connection") -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            handle(.replaced(code: 1000, reason: reason))
            if core.upstreamReleased { return eventLoop.makeSucceededVoidFuture() }
            let promise = upstreamReleased ?? eventLoop.makePromise(of: Void.self)
            upstreamReleased = promise
            return promise.futureResult
        }
    }

    /// Tells the core when the translation owes the backend nothing more (it may be draining).
    func finishDrainIfDone() {
        guard core.draining != nil, let translator, translator.session.drained else { return }
        run(core.handle(.drainEnded(undelivered: translator.session.undelivered)))
    }

    /// Closes every leg with a close handshake (replacement, shutdown).
    func closeAll(code: Int, reason: String) {
        for leg in core.legs.legs { close(leg, code: code, reason: reason) }
        stopMirrors()
    }

    func inactive(_ leg: LegID) {
        if case .mirror(let index) = leg { return mirrorInactive(index) }
        handle(.inactive(leg))
    }

    func failed(_ leg: LegID, _ error: any Error) {
        if case .mirror(let index) = leg { return mirrorFailed(index, error) }
        let failure: LegFailure
        switch error {
        case LegError.tooLarge(let fragmented):
            failure = .tooLarge(fragmented: fragmented, limit: handler(leg).maxFrameBytes)
        case LegError.protocolViolation(let why):
            failure = .protocolViolation(why)
        case LegError.invalidData(let why):
            failure = .invalidData(why)
        default:
            failure = .io("\(error)")
        }
        handle(.failed(leg, failure))
    }

    private func end() {
        drainTimer?.cancel()
        drainTimer = nil
        redialer?.cancelTimers()
        registry.left(self)
        recorder.timers.remove(ObjectIdentifier(self))
        rateResume?.cancel()
        rateResume = nil
        // The connection's record ends once its mirrors have what they are owed (their frames belong to it); until
        // then the session stays live, so that a shutdown stops the mirrors and records their outcomes.
        drainMirrors { [self] in
            recorder.writer.endConnection(connection, time: clock.wall())
            recorder.scheduleFlush()
            registry.remove(self)
        }
        chargerLeg.detach()
        primaryLeg.detach()
        for leg in otherLegs { leg.detach() }
        logger.debug("session ended")
    }
}

extension WebSocketOpcode {
    /// The opcode number stored in recordings.
    var rawValueForRecording: UInt8 {
        switch self {
        case .text: 1
        case .binary: 2
        default: 0
        }
    }
}
