import Logging
import NIOCore
import NIOWebSocket
import OCPP
import OCPPTranslation
import RelayRecording

/// One charger relayed to its upstream: two legs on one event loop, the recorder of that loop between them.
///
/// Every message is recorded when it arrives and forwarded after the loop's flush has written it
/// (``LoopRecorder``). Close handshakes are completed per leg and mirrored to the other leg with the same
/// code; a connection lost on one side is mirrored as a lost connection on the other.
///
/// Confined to its event loop; other threads reach it through ``eventLoop``.
final class RelaySession: @unchecked Sendable {
    let connection: UInt64
    let identity: ChargePointIdentity
    let eventLoop: any EventLoop
    private let recorder: LoopRecorder
    private let registry: SessionRegistry
    /// The relay's logger; ``logger`` adds this session's metadata when something is logged (an idle session
    /// keeps no metadata of its own: memory per connection counts with thousands of chargers).
    private let baseLogger: Logger
    private let closeTimeout: TimeAmount
    /// How often silent legs are checked; `nil` never pings.
    private let pingInterval: TimeAmount?
    private let chargerLeg: LegHandler
    private let upstreamLeg: LegHandler
    /// Per leg (stored fields, not arrays: no allocation per session).
    private var chargerSide = Side()
    private var upstreamSide = Side()
    private var ended = false

    private struct Side {
        var state = LegState.open
        var inactive = false
        /// Whether anything arrived since the last liveness check, and whether a ping waits for its answer.
        var heard = true
        var pingOutstanding = false
    }
    /// Set when the charger speaks 1.6 and upstream 2.0.1.
    private var translator: Translator?
    private let metrics: RelayMetrics
    /// The charger's message budget (a token bucket), when limited.
    private let messageRate: MessageRate?
    private var tokens: Double
    private var refilledAt = NIODeadline.now()
    private var rateResume: Scheduled<Void>?
    private var lastRateLog: NIODeadline?
    /// Calls waiting for their answers (message labels and call durations).
    private var pendingCalls = PendingCalls()

    /// The translation of a 1.6 charger for a 2.0.1 upstream, and where its state is kept.
    struct Translator {
        var session: TranslationSession
        let writer: StateWriter
        /// How long a translated CALL may wait for its answer.
        let callTimeout: TimeAmount
        /// Diagnostics already logged for this charger (each kind and action once).
        var logged: Set<String> = []
        /// States handed to the writer, and how many of them are stored (or failed to be).
        var writesIssued = 0
        var writesDone = 0
        /// Outputs waiting for a state write (theirs or an earlier one's), in order, with the write they wait for.
        var held: [(outputs: ArraySlice<TranslationOutput>, from: Leg, write: Int)] = []
    }

    private enum LegState {
        /// Messages flow.
        case open
        /// The relay sent a close frame and waits for the peer's.
        case closeSent
        /// The close handshake is done, or the connection is gone.
        case closed
    }

    init(
        connection: UInt64,
        identity: ChargePointIdentity,
        charger: LegHandler,
        upstream: LegHandler,
        recorder: LoopRecorder,
        registry: SessionRegistry,
        logger: Logger,
        closeTimeout: TimeAmount,
        pingInterval: TimeAmount? = nil,
        translator: Translator? = nil,
        metrics: RelayMetrics = RelayMetrics(),
        messageRate: MessageRate? = nil
    ) {
        self.metrics = metrics
        self.messageRate = messageRate
        self.tokens = messageRate?.burst ?? 0
        self.pingInterval = pingInterval
        self.translator = translator
        self.connection = connection
        self.identity = identity
        self.eventLoop = recorder.eventLoop
        self.chargerLeg = charger
        self.upstreamLeg = upstream
        self.recorder = recorder
        self.registry = registry
        self.closeTimeout = closeTimeout
        self.baseLogger = logger
    }

    private var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "charger"] = "\(identity.value)"
        logger[metadataKey: "connection"] = "\(connection)"
        return logger
    }

    private func handler(_ leg: Leg) -> LegHandler { leg == .charger ? chargerLeg : upstreamLeg }
    private func side(_ leg: Leg) -> Side { leg == .charger ? chargerSide : upstreamSide }
    private func updateSide(_ leg: Leg, _ change: (inout Side) -> Void) {
        if leg == .charger { change(&chargerSide) } else { change(&upstreamSide) }
    }
    private func state(_ leg: Leg) -> LegState { side(leg).state }
    private func setState(_ leg: Leg, _ state: LegState) { updateSide(leg) { $0.state = state } }

    /// Records the open event and lets messages flow.
    func start(_ open: ConnectionOpen) {
        recorder.writer.open(open)
        recorder.scheduleFlush()
        logger.info(
            "connected",
            metadata: ["subprotocol": "\(open.subprotocol ?? "none")", "remote": "\(open.remoteAddress ?? "?")"]
        )
        handler(.charger).attach(self)
        handler(.upstream).attach(self)
        if let pingInterval {
            recorder.timers.add(ObjectIdentifier(self), every: pingInterval) { [self] in checkLiveness() }
        }
        if let timeout = translator?.callTimeout {
            // Calls nobody answers must not block the translation queues.
            let seconds = Double(timeout.nanoseconds) / 1e9
            recorder.timers.add(ObjectIdentifier(self), every: .seconds(1)) { [self] in
                guard var translator, translator.session.hasCallsInFlight else { return }
                self.translator = nil
                let outputs = translator.session.expireCalls(timeout: seconds)
                self.translator = translator
                handle(outputs, from: .upstream)
            }
        }
    }

    // MARK: Messages

    func received(_ message: LegMessage, on leg: Leg) {
        updateSide(leg) { $0.heard = true }
        switch message.opcode {
        case .text, .binary:
            // A peer may still send after the relay sent it a close: such messages are recorded too,
            // and forwarded only while the other leg is open.
            guard state(leg) != .closed else { return }
            if leg == .charger, messageRate != nil { spendToken() }
            if translator != nil {
                translate(message.unmaskedPayload(allocator: allocator), opcode: message.opcode, from: leg)
                return
            }
            let forwarding = state(leg.opposite) == .open
            record(
                message.payload,
                maskKey: message.maskKey,
                leg: leg,
                direction: .in,
                opcode: message.opcode.rawValueForRecording,
                forwarded: forwarding,
                countedAs: leg == .charger ? 0 : 1
            )
            if forwarding {
                recorder.afterFlush { [self] in forward(message, to: leg.opposite) }
            } else {
                recorder.scheduleFlush()
            }
        case .ping:
            // Answered per leg, never forwarded: each leg keeps its own liveness.
            guard state(leg) == .open else { return }
            handler(leg).send(.pong, message.unmaskedPayload(allocator: allocator), maskKey: maskKey(for: leg))
        case .connectionClose:
            closeReceived(message.unmaskedPayload(allocator: allocator), on: leg)
        default:
            break  // pongs
        }
    }

    private var allocator: ByteBufferAllocator { handler(.charger).channel?.allocator ?? ByteBufferAllocator() }

    /// Records the frame as it came, translates it and sends (and records) what the translation says.
    private func translate(_ data: ByteBuffer, opcode: WebSocketOpcode, from leg: Leg) {
        guard var translator else { return }
        // The only reference while it is mutated: its state is not copied on every message.
        self.translator = nil
        // Counted in the charger's terms (1.6 actions and ids); translated frames upstream are not.
        record(
            data,
            leg: leg,
            direction: .in,
            opcode: opcode.rawValueForRecording,
            forwarded: false,
            countedAs: leg == .charger && opcode == .text ? 0 : nil
        )
        recorder.scheduleFlush()
        guard opcode == .text else {
            recordTranslationNote(leg, "binary message cannot be translated; dropped", &translator)
            self.translator = translator
            return
        }
        let text = String(buffer: data)
        let outputs = leg == .charger ? translator.session.fromCharger(text) : translator.session.fromUpstream(text)
        self.translator = translator
        handle(outputs, from: leg)
    }

    /// Performs what the translation returned. A state to persist goes to the loop's writer, and this output's
    /// frames (and every later one's, to keep their order) wait until it is stored: a relay killed after a
    /// StartTransaction.conf still knows the transaction when the StopTransaction comes.
    private func handle(_ outputs: [TranslationOutput], from leg: Leg) {
        guard var translator else { return }
        var outputs = outputs[...]
        if case .persist(let state) = outputs.first {
            outputs = outputs.dropFirst()
            translator.writesIssued += 1
            let write = translator.writesIssued
            translator.writer.persist(identity.value, state) { [self] result in stored(write, result, leg) }
        }
        if !translator.held.isEmpty || translator.writesDone < translator.writesIssued {
            translator.held.append((outputs, leg, translator.writesIssued))
            self.translator = translator
            return
        }
        self.translator = translator
        perform(outputs, from: leg)
    }

    /// A state write finished: what waited for it goes out, in order.
    private func stored(_ write: Int, _ result: Result<Void, any Error>, _ leg: Leg) {
        if case .failure(let error) = result {
            // The frames still go (the state lives on in memory); loudly.
            logger.error("cannot store the translation state", metadata: ["error": "\(error)"])
            recorder.writer.error(
                ConnectionErrorEvent(
                    connection: connection,
                    time: Timestamp.now(),
                    leg: leg,
                    message: "translation state not stored: \(error)"
                )
            )
            recorder.scheduleFlush()
        }
        guard var translator else { return }
        translator.writesDone = max(translator.writesDone, write)
        var ready: [(outputs: ArraySlice<TranslationOutput>, from: Leg, write: Int)] = []
        while let first = translator.held.first, first.write <= translator.writesDone {
            ready.append(translator.held.removeFirst())
        }
        self.translator = translator
        for (outputs, leg, _) in ready { perform(outputs, from: leg) }
    }

    private func perform(_ outputs: ArraySlice<TranslationOutput>, from leg: Leg) {
        guard var translator else { return }
        self.translator = nil
        for output in outputs {
            switch output {
            case .toUpstream(let frame): sendTranslated(frame, to: .upstream)
            case .toCharger(let frame): sendTranslated(frame, to: .charger)
            case .diagnostic(let diagnostic):
                metrics.translationDiagnostic(diagnostic.kind.rawValue)
                let key = "\(diagnostic.kind.rawValue) \(diagnostic.action)"
                recordTranslationNote(leg, "translation \(diagnostic)", &translator, logKey: key)
            case .persist:
                break  // only ever first; handle(_:from:) took it
            }
        }
        self.translator = translator
    }

    private func recordTranslationNote(
        _ leg: Leg,
        _ message: String,
        _ translator: inout Translator,
        logKey: String? = nil
    ) {
        recorder.writer.error(
            ConnectionErrorEvent(connection: connection, time: Timestamp.now(), leg: leg, message: message)
        )
        if translator.logged.insert(logKey ?? message).inserted {
            logger.notice("\(message)")
        }
    }

    /// Records a payload (unmasked into the loop's scratch buffer when the peer masked it) and, when `countedAs`
    /// names its direction (0 charger → upstream, 1 the other way), counts it for the metrics.
    private func record(
        _ data: ByteBuffer,
        maskKey: WebSocketMaskingKey? = nil,
        leg: Leg,
        direction: Direction,
        opcode: UInt8,
        forwarded: Bool,
        countedAs metricsDirection: Int? = nil
    ) {
        recorder.withUnmasked(data, key: maskKey) { bytes in
            recorder.writer.frame(
                connection: connection,
                leg: leg,
                direction: direction,
                opcode: opcode,
                forwardedUnchanged: forwarded,
                payload: bytes
            )
            if let metricsDirection { pendingCalls.observe(bytes, direction: metricsDirection, metrics: metrics) }
        }
    }

    private func sendTranslated(_ text: String, to leg: Leg) {
        let data = ByteBuffer(string: text)
        record(data, leg: leg, direction: .out, opcode: 1, forwarded: false, countedAs: leg == .charger ? 1 : nil)
        recorder.afterFlush { [self] in deliver(data, opcode: .text, to: leg) }
    }

    /// Frames a message the relay made (or re-frames one) and sends it.
    private func deliver(_ data: ByteBuffer, opcode: WebSocketOpcode, to leg: Leg) {
        send(to: leg) { [self] target in target.send(opcode, data, maskKey: maskKey(for: leg)) }
    }

    /// Forwards a message as the bytes that came when their masking suits the receiving leg (clients mask,
    /// servers do not): no copy, no re-encoding. A peer that got masking wrong has its message re-framed.
    private func forward(_ message: LegMessage, to leg: Leg) {
        if message.wireMasked == (leg == .upstream) {
            send(to: leg) { target in target.sendWire(message.wire) }
        } else {
            deliver(message.unmaskedPayload(allocator: allocator), opcode: message.opcode, to: leg)
        }
    }

    /// Writes to an open leg (a closing one gets nothing: the drop is recorded), and stops reading the other leg
    /// while this one cannot take more (backpressure).
    private func send(to leg: Leg, _ write: (LegHandler) -> Void) {
        guard state(leg) == .open else {
            recorder.writer.error(
                ConnectionErrorEvent(
                    connection: connection,
                    time: Timestamp.now(),
                    leg: leg,
                    message: "a message for the \(leg.rawValue) leg was dropped: that leg is closing"
                )
            )
            return
        }
        let target = handler(leg)
        write(target)
        if !target.isWritable { handler(leg.opposite).pauseReads(.backpressure) }
    }

    func writabilityChanged(_ leg: Leg, writable: Bool) {
        if writable { handler(leg.opposite).resumeReads(.backpressure) }
    }

    private func maskKey(for leg: Leg) -> WebSocketMaskingKey? {
        leg == .upstream ? recorder.maskingKeys.next() : nil
    }

    /// Pings a leg that was silent for a whole interval, and drops one that did not answer by the next check:
    /// a charger whose network vanished must not look connected to the backend (the relay answers the
    /// backend's pings itself).
    private func checkLiveness() {
        for leg in [Leg.charger, .upstream] where state(leg) == .open {
            let side = side(leg)
            if side.heard {
                updateSide(leg) {
                    $0.heard = false
                    $0.pingOutstanding = false
                }
            } else if !side.pingOutstanding {
                updateSide(leg) { $0.pingOutstanding = true }
                handler(leg).send(.ping, ByteBuffer(), maskKey: maskKey(for: leg))
            } else {
                let message =
                    "no answer to a ping within \(Double(pingInterval?.nanoseconds ?? 0) / 1e9) s; connection dropped"
                recorder.writer.error(
                    ConnectionErrorEvent(connection: connection, time: Timestamp.now(), leg: leg, message: message)
                )
                recorder.scheduleFlush()
                logger.warning("\(leg.rawValue) \(message)")
                // Recorded and mirrored like any lost connection (1006 on the other leg).
                handler(leg).closeChannel()
            }
        }
    }

    /// Takes one message from the charger's budget; an empty budget stops reading the charger until it has
    /// refilled. The charger is slowed by its own TCP backpressure, the others are not slowed at all.
    private func spendToken() {
        guard let rate = messageRate else { return }
        let now = NIODeadline.now()
        tokens = min(rate.burst, tokens + Double((now - refilledAt).nanoseconds) / 1e9 * rate.perSecond)
        refilledAt = now
        tokens -= 1
        guard tokens < 0 else { return }
        let charger = handler(.charger)
        charger.pauseReads(.rate)
        if lastRateLog.map({ now - $0 >= .seconds(60) }) ?? true {
            lastRateLog = now
            metrics.rateLimited()
            let message =
                "more than \(rate.perSecond) messages/s (burst \(Int(rate.burst))); reading the charger slowed"
            logger.warning("\(message)")
            recorder.writer.error(
                ConnectionErrorEvent(connection: connection, time: Timestamp.now(), leg: .charger, message: message)
            )
        }
        rateResume?.cancel()
        let wait = TimeAmount.nanoseconds(Int64(-tokens / rate.perSecond * 1e9))
        rateResume = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: wait) {
            charger.resumeReads(.rate)
        }
    }

    // MARK: Closing

    private func closeReceived(_ payload: ByteBuffer, on leg: Leg) {
        var payload = payload
        let code = payload.readInteger(as: UInt16.self).map(Int.init) ?? 1005
        let reason = payload.readString(length: payload.readableBytes) ?? ""
        switch state(leg) {
        case .open:
            // The peer starts the close: echo it, then mirror it on the other leg after pending messages.
            setState(leg, .closed)
            recordClose(leg: leg, initiator: leg.rawValue, code: code, reason: reason)
            logger.info("\(leg.rawValue) closed", metadata: ["code": "\(code)", "reason": "\(reason)"])
            var echo = ByteBufferAllocator().buffer(capacity: 2)
            if code != 1005 { echo.writeInteger(UInt16(code)) }
            sendCloseAndDisconnect(echo, on: leg)
            recorder.afterFlush { [self] in closeLeg(leg.opposite, code: code, reason: reason) }
        case .closeSent:
            // The peer answered our close.
            setState(leg, .closed)
            handler(leg).closeChannel()
        case .closed:
            break
        }
    }

    private func recordClose(leg: Leg, initiator: String, code: Int, reason: String) {
        recorder.writer.close(
            ConnectionClose(
                connection: connection,
                time: Timestamp.now(),
                leg: leg,
                initiator: initiator,
                code: code,
                reason: reason
            ),
            final: false
        )
    }

    private func sendCloseAndDisconnect(_ payload: ByteBuffer, on leg: Leg) {
        let target = handler(leg)
        let promise = eventLoop.makePromise(of: Void.self)
        target.send(.connectionClose, payload, maskKey: maskKey(for: leg), promise: promise)
        promise.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { _ in target.closeChannel() }
    }

    /// Starts the close handshake on one leg (mirroring the other, replacing, shutting down).
    func closeLeg(_ leg: Leg, code: Int, reason: String) {
        guard state(leg) == .open else { return }
        setState(leg, .closeSent)
        // 1005 (none), 1006 (lost) and 1015 (TLS) must not be sent: close without a code then.
        var payload = ByteBufferAllocator().buffer(capacity: 2 + reason.utf8.count)
        let sendable = !(code == 1005 || code == 1006 || code == 1015)
        if sendable {
            payload.writeInteger(UInt16(code))
            payload.writeString(String(decoding: reason.utf8.prefix(123), as: UTF8.self))
        }
        recordClose(leg: leg, initiator: "relay", code: sendable ? code : 1005, reason: reason)
        recorder.scheduleFlush()
        handler(leg).send(.connectionClose, payload, maskKey: maskKey(for: leg))
        let target = handler(leg)
        eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: closeTimeout) { [self] in
            if state(leg) != .closed {
                setState(leg, .closed)
                target.closeChannel()
            }
        }
    }

    /// A newer connection of the same charger takes over: both legs close with 1000, on this session's loop
    /// (callable from any thread).
    func replaceByNewerConnection() {
        eventLoop.execute { self.closeBoth(code: 1000, reason: "replaced by a newer connection") }
    }

    /// Closes both legs with a close handshake (replacement, shutdown).
    func closeBoth(code: Int, reason: String) {
        closeLeg(.charger, code: code, reason: reason)
        closeLeg(.upstream, code: code, reason: reason)
    }

    func inactive(_ leg: Leg) {
        updateSide(leg) { $0.inactive = true }
        if state(leg) == .open {
            // Lost without a close frame: record it, and let the other side see the same (after pending messages).
            setState(leg, .closed)
            recordClose(leg: leg, initiator: leg.rawValue, code: 1006, reason: "connection lost")
            if leg == .upstream { metrics.upstreamFailure("lost") }
            recorder.scheduleFlush()
            logger.info("\(leg.rawValue) connection lost")
            let other = leg.opposite
            recorder.afterFlush { [self] in
                guard state(other) == .open else { return }
                setState(other, .closed)
                recordClose(leg: other, initiator: "relay", code: 1006, reason: "\(leg.rawValue) connection lost")
                handler(other).closeChannel()
            }
        } else {
            setState(leg, .closed)
        }
        if chargerSide.inactive && upstreamSide.inactive { end() }
    }

    func failed(_ leg: Leg, _ error: any Error) {
        let limit = handler(leg).maxFrameBytes
        let message: String
        let closeCode: Int?
        switch error {
        case LegError.tooLarge(let fragmented):
            message =
                "\(fragmented ? "fragmented message" : "message") larger than the \(limit)-byte limit; closed with 1009"
            closeCode = 1009
        case LegError.protocolViolation(let why):
            message = "WebSocket protocol violation (\(why)); closed with 1002"
            closeCode = 1002
        default:
            // I/O errors: the connection is going; channelInactive records how.
            message = "\(error)"
            closeCode = nil
        }
        recorder.writer.error(
            ConnectionErrorEvent(connection: connection, time: Timestamp.now(), leg: leg, message: message)
        )
        recorder.scheduleFlush()
        logger.warning("\(leg.rawValue) error: \(message)")
        guard let closeCode, state(leg) != .closed else { return }
        // What the peer sent broke the protocol: close its leg with the code that says why, and give the
        // other side a clean close (it did nothing wrong).
        setState(leg, .closed)
        recordClose(leg: leg, initiator: "relay", code: closeCode, reason: message)
        var payload = ByteBufferAllocator().buffer(capacity: 2)
        payload.writeInteger(UInt16(closeCode))
        sendCloseAndDisconnect(payload, on: leg)
        recorder.afterFlush { [self] in
            closeLeg(
                leg.opposite,
                code: 1001,
                reason:
                    "\(leg.rawValue) connection closed: \(closeCode == 1009 ? "message too large" : "protocol error")"
            )
        }
    }

    private func end() {
        guard !ended else { return }
        ended = true
        recorder.writer.endConnection(connection, time: Timestamp.now())
        recorder.scheduleFlush()
        registry.remove(self)
        recorder.timers.remove(ObjectIdentifier(self))
        rateResume?.cancel()
        rateResume = nil
        chargerLeg.detach()
        upstreamLeg.detach()
        logger.debug("session ended")
    }
}

/// How many messages a charger may send: `perSecond` on average, `burst` at once.
struct MessageRate: Equatable {
    var perSecond: Double
    var burst: Double
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
