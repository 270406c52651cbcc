import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import OCPP
import RelayObservability
import RelayRecording

/// How a session dials its primary upstream again when it is lost within the grace (`timeouts.reconnect_grace`):
/// the same URL, credentials, TLS and subprotocol as the first dial, paced across the relay; and the grace's timers
/// and the connection a redial made, while there is one. An object of its own, made only for a session with a grace
/// (an idle session without one keeps a nil reference, not its fields).
///
/// Its mutable state is confined to the session's event loop.
final class UpstreamRedialer: @unchecked Sendable {
    let grace: Duration
    /// The subprotocol the session speaks upstream: a backend that comes back with another one is not taken.
    let subprotocol: String?
    let pacer: RedialPacer
    let dial: @Sendable (any EventLoop) -> EventLoopFuture<UpstreamOutcome>
    var timers: [Scheduled<Void>] = []
    /// When the grace began (monotonic nanoseconds).
    var started: UInt64 = 0
    var redialed: (channel: any Channel, handler: LegHandler)?

    init(
        grace: Duration,
        subprotocol: String?,
        pacer: RedialPacer,
        dial: @escaping @Sendable (any EventLoop) -> EventLoopFuture<UpstreamOutcome>
    ) {
        self.grace = grace
        self.subprotocol = subprotocol
        self.pacer = pacer
        self.dial = dial
    }

    func cancelTimers() {
        for timer in timers { timer.cancel() }
        timers = []
    }
}

extension RelaySession {
    private static let heartbeat = OCPPAction.all.firstIndex(of: "Heartbeat")

    /// How the core sees a text message when the session has a grace: a charger's Heartbeat while the upstream
    /// is redialled is told apart (the relay answers it); the upstream's answers settle the calls kept to resend
    /// (whether the session forwards or translates them).
    func graceKind(_ message: LegMessage, on leg: LegID) -> SessionCore.Message {
        if leg == .upstream(0) { upstreamAnswered(message) }
        guard leg == .charger, core.redialing else { return .text }
        let id = recorder.withUnmasked(message.payload, key: message.maskKey) { bytes -> String? in
            guard let header = RPCFrameHeader.scan(bytes), header.messageType == 2, header.action == Self.heartbeat,
                case .call(let call)? = try? RPCFrame.parse(bytes)
            else { return nil }
            return call.messageID
        }
        return id.map { .heartbeat(id: $0) } ?? .text
    }

    /// The primary upstream sent `message`: an answer settles the call it answers (not resent after a loss).
    func upstreamAnswered(_ message: LegMessage) {
        let header = recorder.withUnmasked(message.payload, key: message.maskKey) { RPCFrameHeader.scan($0) }
        if let header, header.messageType == 3 || header.messageType == 4 {
            core.upstreamAnswered(header.messageIDHash)
        }
    }

    /// A message for the primary upstream, through the grace: sent, held while the upstream is redialled, or
    /// dropped (recorded and counted).
    func toPrimary(_ message: Outgoing) {
        let header: RPCFrameHeader? =
            switch message {
            case .forwarded(let m): recorder.withUnmasked(m.payload, key: m.maskKey) { RPCFrameHeader.scan($0) }
            case .made(let data, _): data.withUnsafeReadableBytes { RPCFrameHeader.scan($0) }
            }
        switch core.sending(message, header: header) {
        case .send:
            sendNow(message)
        case .held:
            metrics.graceMessage("held")
        case .dropped(let why):
            metrics.graceMessage("dropped")
            recordError(.upstream(0), "a message for the upstream was dropped: \(why)")
        }
    }

    /// Answers a charger's Heartbeat with the relay's clock while the upstream is redialled: the call is recorded
    /// as not forwarded, the answer as the relay's.
    func answerHeartbeat(_ id: String, _ message: LegMessage?) {
        guard let message else { return }
        record(message.payload, maskKey: message.maskKey, leg: .charger, direction: .in, opcode: 1, forwarded: false)
        let now = RFC3339.format(Int64(clock.wall()), fractionDigits: 3)
        let answer = ByteBuffer(string: #"[3,"# + JSONValue.string(id).jsonText + #",{"currentTime":"\#(now)"}]"#)
        record(answer, leg: .charger, direction: .out, opcode: 1, forwarded: false)
        metrics.graceMessage("answered_locally")
        recorder.afterFlush { [self] in deliver(answer, opcode: .text, to: .charger) }
    }

    /// Performs what the grace decided.
    func runGrace(_ action: UpstreamGrace.Action) {
        guard let redialer else { return }
        let loop = eventLoop.assumeIsolatedUnsafeUnchecked()
        switch action {
        case .begin(let length, let why):
            redialer.started = clock.monotonic()
            consoleInfo.redialingSince = clock.wall()
            metrics.grace(entered: true)
            let text =
                "upstream \(why): the charger is kept for \(length.secondsText) (timeouts.reconnect_grace) "
                + "while the upstream is dialled again"
            logger.notice("\(text)")
            recordError(.upstream(0), text)
            redialer.timers.append(
                loop.scheduleTask(in: TimeAmount(length)) { [self] in run(core.handle(.grace(.expired))) }
            )
        case .scheduleRedial(let range):
            let lower = UInt64(max(0, TimeAmount(range.lowerBound).nanoseconds))
            let upper = UInt64(max(0, TimeAmount(range.upperBound).nanoseconds))
            let wait = redialer.pacer.delay(now: clock.monotonic(), wait: UInt64.random(in: lower...max(lower, upper)))
            redialer.timers.append(
                loop.scheduleTask(in: .nanoseconds(Int64(clamping: wait))) { [self] in
                    run(core.handle(.grace(.redialDue)))
                }
            )
        case .dial:
            redialer.dial(eventLoop).assumeIsolatedUnsafeUnchecked().whenComplete { [self] result in
                redialEnded(result, subprotocol: redialer.subprotocol)
            }
        case .adopt(let resend, let held, let attempts):
            adopt(resend: resend, held: held, attempts: attempts)
        case .discard:
            redialer.redialed?.channel.close(promise: nil)
            redialer.redialed = nil
        case .cancelTimers:
            redialer.cancelTimers()
        case .giveUp(_, let reason, let dropped):
            graceEnded("expired", "\(reason); the charger is closed as the upstream was", dropped: dropped)
        case .refuse(let reason, let dropped):
            graceEnded("refused", reason, dropped: dropped)
        case .abandon(let dropped):
            metrics.grace(entered: false)
            consoleInfo.redialingSince = nil
            if dropped > 0 {
                recordError(
                    .upstream(0),
                    "the charger left while the upstream was redialled; \(dropped) held call(s) not delivered"
                )
            }
        }
    }

    /// A redial ended: the core hears how (a connection it does not take is closed).
    private func redialEnded(_ result: Result<UpstreamOutcome, any Error>, subprotocol: String?) {
        let outcome: UpstreamGrace.DialResult
        switch result {
        case .success(.accepted(let channel, let handler, let answered)):
            if answered == subprotocol {
                redialer?.redialed = (channel, handler)
                outcome = .accepted
            } else {
                channel.close(promise: nil)
                outcome = .failed(
                    "the upstream answered with subprotocol \(answered ?? "none"), not \(subprotocol ?? "none")"
                )
            }
        case .success(.refused(let status, _)):
            outcome = .refused(status: Int(status.code), reason: status.reasonPhrase)
        case .success(.failed(let message)): outcome = .failed(message)
        case .success(.timedOut): outcome = .failed("no answer within timeouts.upstream")
        case .failure(let error): outcome = .failed("\(error)")
        }
        switch outcome {
        case .accepted: metrics.redial("accepted")
        case .refused: metrics.redial("refused")
        case .failed(let why):
            metrics.redial("failed")
            logger.debug("redial failed", metadata: ["error": "\(why)"])
        }
        run(core.handle(.grace(.dialed(outcome))))
        // A connection the core did not take (the grace ended meanwhile) was closed by `.discard`.
    }

    /// The redial succeeded: the new connection is the primary upstream; the calls the lost one never answered go
    /// out again with their message ids, then what was held, in order.
    private func adopt(resend: [Outgoing], held: [Outgoing], attempts: Int) {
        guard let redialer, let (_, handler) = redialer.redialed else { return }
        redialer.redialed = nil
        primaryLeg.detach()
        primaryLeg = handler
        handler.attach(self)
        metrics.grace(entered: false)
        consoleInfo.redialingSince = nil
        let seconds = Double(clock.monotonic() - redialer.started) / 1e9
        let text =
            "upstream connected again after \((seconds * 1000).rounded() / 1000) s (\(attempts) redial(s)); "
            + "\(resend.count) unanswered call(s) sent again, \(held.count) held message(s) delivered"
        logger.notice("\(text)")
        recordError(.upstream(0), text)
        if !resend.isEmpty { metrics.graceMessage("resent", count: resend.count) }
        for message in resend + held { toPrimary(message) }
    }

    private func graceEnded(_ reason: String, _ text: String, dropped: Int) {
        metrics.grace(entered: false)
        metrics.graceGivenUp(reason)
        consoleInfo.redialingSince = nil
        let message = dropped > 0 ? "\(text); \(dropped) held call(s) not delivered" : text
        logger.warning("\(message)")
        recordError(.upstream(0), message)
    }
}
