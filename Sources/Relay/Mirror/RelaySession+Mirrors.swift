import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import OCPP
import OCPPTranslation
import RelayConfig
import RelayObservability
import RelayRecording

/// The session's mirrors: what ``MirrorSet`` decides, carried out (dials, frames, records, counters, state).
/// Nothing here holds up the primary path: a mirror's frames are sent after the recording flush like any other,
/// and its failures only schedule another dial.
extension RelaySession {
    /// Reads each mirror's stored state (transaction id map, translation state), then dials it.
    func startMirrors() {
        guard let mirrors else { return }
        for action in mirrors.set.start() { perform(action) }
    }

    // MARK: Hooks on the primary path

    /// A text frame from the charger; `true` when it answers a mirror's call (the primary must not get it).
    func mirrorsFromCharger(_ data: ByteBuffer) -> Bool {
        guard let mirrors else { return false }
        let (consumed, actions) = mirrors.set.fromCharger(String(buffer: data), now: clock.uptime)
        for action in actions { perform(action) }
        return consumed
    }

    /// A text frame the charger gets from the primary (as the charger gets it: translated when the primary is).
    func mirrorsToCharger(_ data: ByteBuffer) {
        guard let mirrors else { return }
        for action in mirrors.set.toCharger(String(buffer: data)) { perform(action) }
    }

    func expireMirrors() {
        guard let mirrors else { return }
        for action in mirrors.set.expire(now: clock.uptime) { perform(action) }
        for index in mirrors.mirrors.indices where mirrors.mirrors[index].translator?.waitsForTime == true {
            if let outputs = mirrors.mirrors[index].translator?.tick() { translated(outputs, mirror: index) }
        }
    }

    /// Pings silent mirrors and drops those that did not answer the last ping.
    func checkMirrorLiveness() {
        guard let mirrors else { return }
        for action in mirrors.set.livenessCheck() { perform(action) }
    }

    /// The session ended: each connected mirror still gets what queued for it and the chance to answer what it was
    /// sent, within the mirrors' call timeout (a later answer would count as unanswered anyway); then the mirrors
    /// close and `done` runs (also when the relay stops them sooner: ``stopMirrors()``).
    func drainMirrors(then done: @escaping () -> Void) {
        guard let mirrors, !mirrors.stopped, mirrorsOweAnything else {
            stopMirrors()
            return done()
        }
        let timer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(
            in: TimeAmount(mirrors.set.callTimeout)
        ) { [self] in stopMirrors() }
        mirrors.draining = (done, timer)
    }

    private var mirrorsOweAnything: Bool {
        guard let mirrors else { return false }
        return mirrors.set.owesAnything || mirrors.mirrors.contains { $0.translator.map { !$0.drained } ?? false }
    }

    /// Ends the mirrors' drain once nothing is owed.
    private func finishMirrorDrainIfDone() {
        guard mirrors?.draining != nil, !mirrorsOweAnything else { return }
        stopMirrors()
    }

    /// The session ends (or closes): mirrors are closed and not dialled again; a drain in progress ends.
    func stopMirrors() {
        guard let mirrors, !mirrors.stopped else { return }
        for action in mirrors.set.stop() { perform(action) }
        mirrors.stopped = true
        defer {
            if let (done, timer) = mirrors.draining {
                mirrors.draining = nil
                timer.cancel()
                done()
            }
        }
        for index in mirrors.mirrors.indices {
            mirrors.mirrors[index].redial?.cancel()
            guard let handler = mirrors.mirrors[index].handler else { continue }
            let promise = eventLoop.makePromise(of: Void.self)
            handler.send(
                .connectionClose,
                Self.closePayload(1000, ""),
                maskKey: recorder.maskingKeys.next(),
                promise: promise
            )
            promise.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { _ in handler.closeChannel() }
        }
    }

    // MARK: The mirror's leg

    func mirrorReceived(_ message: LegMessage, index: Int) {
        guard let mirrors, let handler = mirrors.mirrors[index].handler else { return }
        mirrors.set.heard(index)
        let data = message.unmaskedPayload(allocator: allocator)
        switch message.opcode {
        case .text:
            recordMirror(index, data, direction: .in)
            let text = String(buffer: data)
            if mirrors.mirrors[index].translator != nil {
                if let outputs = mirrors.mirrors[index].translator?.fromUpstream(text) {
                    translated(outputs, mirror: index)
                }
            } else {
                for action in mirrors.set.fromMirror(index, text, now: clock.uptime) { perform(action) }
            }
            finishMirrorDrainIfDone()
        case .binary:
            recordMirror(index, data, direction: .in, opcode: 2)
            mirrorNote(index, "binary message from the mirror; ignored")
        case .ping:
            handler.send(.pong, data, maskKey: recorder.maskingKeys.next())
        case .connectionClose:
            var payload = data
            let code = payload.readInteger(as: UInt16.self).map(Int.init) ?? 1005
            mirrorNote(index, "the mirror closed its connection (code \(code))")
            let promise = eventLoop.makePromise(of: Void.self)
            handler.send(
                .connectionClose,
                Self.closePayload(code == 1005 ? nil : 1000, ""),
                maskKey: recorder.maskingKeys.next(),
                promise: promise
            )
            promise.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { _ in handler.closeChannel() }
        default:
            break
        }
    }

    func mirrorInactive(_ index: Int) {
        guard let mirrors, mirrors.mirrors[index].handler != nil else { return }
        mirrors.mirrors[index].handler = nil
        metrics.mirrorConnected(mirrors.mirrors[index].settings.name, by: -1)
        guard !mirrors.stopped else { return }
        for action in mirrors.set.lost(index, "mirror connection lost") { perform(action) }
    }

    func mirrorFailed(_ index: Int, _ error: any Error) {
        guard let mirrors, let handler = mirrors.mirrors[index].handler else { return }
        mirrorNote(index, "\(error); connection closed")
        handler.closeChannel()
    }

    // MARK: Carrying out decisions

    private func perform(_ action: MirrorSet.Action) {
        switch action {
        case .toCharger(let text):
            let data = ByteBuffer(string: text)
            record(data, leg: .charger, direction: .out, opcode: 1, forwarded: false)
            recorder.afterFlush { [self] in deliver(data, opcode: .text, to: .charger) }
        case .mirror(let index, let action):
            perform(action, mirror: index)
        }
    }

    private func perform(_ action: MirrorLink.Action, mirror index: Int) {
        guard let mirrors else { return }
        let name = mirrors.mirrors[index].settings.name
        switch action {
        case .send(let text):
            if mirrors.mirrors[index].translator != nil {
                if let outputs = mirrors.mirrors[index].translator?.fromCharger(text) {
                    translated(outputs, mirror: index)
                }
            } else {
                sendToMirror(index, ByteBuffer(string: text))
            }
        case .dial(let delay):
            mirrors.mirrors[index].redial?.cancel()
            guard !mirrors.stopped else { return }
            if delay == .zero {
                loadAndDial(index)
            } else {
                mirrors.mirrors[index].redial = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(
                    in: TimeAmount(delay)
                ) { [self] in dialMirror(index) }
            }
        case .outcome(let kind, let action, let id, let differences):
            let outcome = MirrorOutcome(
                connection: connection,
                time: clock.wall(),
                mirror: name,
                action: action,
                kind: kind,
                messageID: id,
                differences: differences
            )
            recorder.writer.mirrorOutcome(outcome)
            recorder.scheduleFlush()
            console?.mirrorOutcome(identity: identity.value, outcome)
            metrics.mirrorMessage(name, action: action, outcome: kind.rawValue, cache: &mirrors.mirrors[index].counters)
            if kind == .diverged {
                let fields = differences.map { $0.path.isEmpty ? "(message)" : $0.path }.joined(separator: ", ")
                logOnce("\(name) \(action) diverged", "mirror \(name) answered \(action) differently: \(fields)")
            }
        case .refused(let action):
            metrics.mirrorCallRefused(name, action: action)
            mirrorNote(index, "\(action) from the mirror refused (\(mirrors.mirrors[index].settings.mode.rawValue))")
        case .callCharger:
            break  // MirrorSet turns these into toCharger
        case .persist(let map):
            persistMirror(index, map: map)
        case .note(let message):
            mirrorNote(index, message)
        case .ping:
            mirrors.mirrors[index].handler?.send(.ping, ByteBuffer(), maskKey: recorder.maskingKeys.next())
        case .drop:
            mirrors.mirrors[index].handler?.resetChannel()
        }
    }

    /// What a mirror's translation returned: frames for the mirror, frames in the charger's terms for the link.
    private func translated(_ outputs: [TranslationOutput], mirror index: Int) {
        guard let mirrors else { return }
        for output in outputs {
            switch output {
            case .toUpstream(let text):
                sendToMirror(index, ByteBuffer(string: text))
            case .toCharger(let text):
                for action in mirrors.set.fromMirror(index, text, now: clock.uptime) { perform(action) }
            case .diagnostic(let diagnostic):
                mirrorNote(index, "translation \(diagnostic)")
            case .persist(_, let write):
                // A mirror's frames do not wait for its state: nothing of the primary path depends on it.
                persistMirror(index, map: mirrors.set.links[index].transactionIDs)
                for held in mirrors.mirrors[index].translator?.stored(write) ?? [] {
                    translated(held.outputs, mirror: index)
                }
            case .passwordChanged:
                break  // a mirror's commands never reach the charger
            }
        }
    }

    private func sendToMirror(_ index: Int, _ data: ByteBuffer) {
        guard let mirrors, let handler = mirrors.mirrors[index].handler else { return }
        recordMirror(index, data, direction: .out)
        recorder.afterFlushTrailing { [self] in
            guard mirrors.mirrors[index].handler === handler else { return }
            handler.send(.text, data, maskKey: recorder.maskingKeys.next())
        }
    }

    private func recordMirror(_ index: Int, _ data: ByteBuffer, direction: Direction, opcode: UInt8 = 1) {
        guard let mirrors else { return }
        data.withUnsafeReadableBytes { bytes in
            recorder.writer.mirrorFrame(
                connection: connection,
                mirror: mirrors.mirrors[index].settings.name,
                direction: direction,
                opcode: opcode,
                payload: bytes
            )
            consoleFrame(
                bytes,
                leg: "mirror:\(mirrors.mirrors[index].settings.name)",
                direction: direction,
                forwarded: false,
                time: clock.wall()
            )
        }
        recorder.scheduleFlush()
    }

    private func mirrorNote(_ index: Int, _ message: String) {
        guard let mirrors else { return }
        let name = mirrors.mirrors[index].settings.name
        recorder.writer.error(
            ConnectionErrorEvent(
                connection: connection,
                time: clock.wall(),
                leg: .mirror,
                message: message,
                mirror: name
            )
        )
        recorder.scheduleFlush()
        logOnce("\(name) \(message)", "mirror \(name): \(message)")
    }

    private func logOnce(_ key: String, _ message: String) {
        guard let mirrors, mirrors.logged.insert(key).inserted else { return }
        logger.notice("\(message)")
    }

    private func persistMirror(_ index: Int, map: [String: String]) {
        guard let mirrors else { return }
        var state = mirrors.mirrors[index].translator?.state ?? ChargerState()
        state.mirrorTransactionIDs = map
        mirrors.writer.persist(mirrors.stateKey(index, charger: identity), state) { [self] result in
            if case .failure(let error) = result { mirrorNote(index, "mirror state not stored: \(error)") }
        }
    }

    // MARK: Dialling

    /// The first dial: the mirror's stored state first (off the loop), so that a relay restarted
    /// mid-transaction keeps the mirror's transaction ids.
    private func loadAndDial(_ index: Int) {
        guard let mirrors else { return }
        let key = mirrors.stateKey(index, charger: identity)
        let states = mirrors.states
        eventLoop.makeFutureWithTask { try await states.load(identity: key) }
            .assumeIsolatedUnsafeUnchecked().whenComplete { [self] result in
                let state: ChargerState
                switch result {
                case .success(let loaded): state = loaded
                case .failure(let error):
                    mirrorNote(index, "cannot read the mirror's state (\(error)); starting afresh")
                    state = ChargerState()
                }
                mirrors.set.restore(index, transactionIDs: state.mirrorTransactionIDs)
                if let make = mirrors.mirrors[index].makeTranslator { mirrors.mirrors[index].translator = make(state) }
                dialMirror(index)
            }
    }

    private func dialMirror(_ index: Int) {
        guard let mirrors, !mirrors.stopped else { return }
        mirrors.set.dialling(index)
        let mirror = mirrors.mirrors[index]
        mirrors.connector.connect(
            to: mirror.settings.upstream,
            tls: mirrors.tls,
            identity: mirror.identity,
            offeredSubprotocols: [mirror.subprotocol],
            authorization: mirrors.authorization(index),
            leg: .mirror(index),
            on: eventLoop
        ).assumeIsolatedUnsafeUnchecked().whenSuccess { [self] outcome in
            switch outcome {
            case .accepted(let channel, let handler, let subprotocol):
                guard !mirrors.stopped else {
                    channel.close(promise: nil)
                    return
                }
                guard subprotocol == mirror.subprotocol else {
                    channel.close(promise: nil)
                    lostDial(
                        index,
                        "the mirror did not accept \(mirror.subprotocol) (it chose \(subprotocol ?? "none"))"
                    )
                    return
                }
                mirrors.mirrors[index].handler = handler
                metrics.mirrorConnected(mirror.settings.name, by: 1)
                handler.attach(self)
                for action in mirrors.set.connected(index, now: clock.uptime) { perform(action) }
            case .refused(let status, _):
                lostDial(index, "the mirror refused the connection with HTTP \(status.code)")
            case .failed(let message):
                lostDial(index, "cannot reach the mirror (\(message))")
            case .timedOut:
                lostDial(index, "the mirror did not answer the handshake in time")
            }
        }
    }

    private func lostDial(_ index: Int, _ why: String) {
        guard let mirrors, !mirrors.stopped else { return }
        for action in mirrors.set.lost(index, why) { perform(action) }
    }
}
