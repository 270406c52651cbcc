import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOWebSocket
import OCPP
import OCPPTransport
import RelayRecording

/// What the soak's chargers did, summed over all of them.
struct SoakChargerTotals: Sendable {
    var roundTrips = 0
    /// Round-trip times since the last sample, in microseconds.
    var latencies: [UInt32] = []
    /// CALLERRORs, and calls without an answer within the call timeout.
    var errors = 0
    var connected = 0
    /// Connections lost after the charger's first (each followed by a reconnection).
    var reconnections = 0
    /// Transactions whose StartTransaction (and StopTransaction) the charger saw answered, by `identity/idTag`.
    var started: Set<String> = []
    var stopped: Set<String> = []
}

/// How the soak's chargers behave: a transaction cycle with meter values, status changes and heartbeats.
struct SoakTraffic: Sendable {
    var meterInterval: TimeAmount = .seconds(30)
    var meterValues = 10
    var heartbeat: TimeAmount = .seconds(120)
    /// Idle between transactions.
    var pause: TimeAmount = .seconds(60)
    var callTimeout: TimeAmount = .seconds(60)
}

/// One 1.6 charger of the soak, confined to its event loop: it boots, then runs transactions (Preparing, Start,
/// Charging, MeterValues every interval, Stop, Available) with a Heartbeat between calls when one is due, one call
/// at a time as OCPP-J requires. A lost connection is counted and dialled again; the call in flight is sent again
/// with its id, as a charger retries.
final class SoakCharger: @unchecked Sendable {
    let identity: String
    let eventLoop: any EventLoop
    private let dial: WebSocketDial
    private let traffic: SoakTraffic
    private let totals: NIOLockedValueBox<SoakChargerTotals>
    private var channel: (any Channel)?
    private var connections = 0
    /// Calls to send, one at a time: the action, the payload (made when it goes when it needs the transaction id),
    /// the id when it is sent again, and the idTag of the transaction it belongs to.
    private var queue: [(action: String, payload: String, id: String?, tag: String)] = []
    private var inFlight: (id: String, action: String, payload: String, tag: String, sentAt: NIODeadline)?
    private var nextID = 0
    private var transactions = 0
    private var transactionId: Int?
    private var idTag = ""
    private var meter = 0
    private var lastHeartbeat = NIODeadline.now()
    private var stopping = false
    private var finished: EventLoopPromise<Void>?
    private var cycle: Scheduled<Void>?
    private var timeout: Scheduled<Void>?

    init(
        identity: String,
        dial: WebSocketDial,
        traffic: SoakTraffic,
        totals: NIOLockedValueBox<SoakChargerTotals>,
        eventLoop: any EventLoop
    ) {
        self.identity = identity
        self.dial = dial
        self.traffic = traffic
        self.totals = totals
        self.eventLoop = eventLoop
    }

    /// Connects and starts; the future completes once the first connection is up.
    func start() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in connect() }
    }

    private func connect() -> EventLoopFuture<Void> {
        WebSocketDialler.dial(dial, on: eventLoop) { [self] channel, _ in
            let handler = SoakChargerHandler(charger: self)
            try channel.pipeline.syncOperations.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: channel.eventLoop)
        }.flatMapThrowing { [self] outcome in
            guard case .accepted(let channel, _, _) = outcome else { throw BenchError("\(identity): \(outcome)") }
            opened(channel)
        }
    }

    private func opened(_ channel: any Channel) {
        self.channel = channel
        connections += 1
        totals.withLockedValue { $0.connected += 1 }
        channel.closeFuture.assumeIsolatedUnsafeUnchecked().whenComplete { [self] _ in closed() }
        // A new connection boots; a call the last one never got answered goes again first, with its id.
        if let call = inFlight {
            inFlight = nil
            queue.insert((call.action, call.payload, call.id, call.tag), at: 0)
        }
        queue.insert(
            ("BootNotification", #"{"chargePointVendor":"ocpp-relay","chargePointModel":"soak"}"#, nil, ""),
            at: 0
        )
        if connections == 1 { scheduleCycle(in: .milliseconds(Int64.random(in: 0...1000))) }
        sendNext()
    }

    private func closed() {
        channel = nil
        totals.withLockedValue { $0.connected -= 1 }
        guard !stopping else {
            // Finishing: what was not answered stays unanswered (the verdict counts only answered calls).
            inFlight = nil
            return closeIfDone()
        }
        totals.withLockedValue { $0.reconnections += 1 }
        redial()
    }

    /// As a charger does: back off a little, then connect again (and again, while it fails).
    private func redial() {
        eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .milliseconds(Int64.random(in: 1000...5000))) {
            [self] in
            guard !stopping else { return closeIfDone() }
            connect().whenFailure { [self] _ in redial() }
        }
    }

    /// Finishes the transaction under way (its StopTransaction is sent), then closes.
    func finish() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            stopping = true
            cycle?.cancel()
            if transactionId != nil || queue.contains(where: { $0.action == "StartTransaction" }) {
                queue.removeAll { $0.action == "MeterValues" || $0.action == "Heartbeat" }
                if !queue.contains(where: { $0.action == "StopTransaction" }) { enqueueStop() }
            }
            let promise = eventLoop.makePromise(of: Void.self)
            finished = promise
            sendNext()
            return promise.futureResult
        }
    }

    private func closeIfDone() {
        guard stopping, inFlight == nil, queue.isEmpty || channel == nil, let finished else { return }
        self.finished = nil
        if let channel {
            channel.close(promise: nil)
            channel.closeFuture.whenComplete { _ in finished.succeed() }
        } else {
            finished.succeed()
        }
    }

    // MARK: The cycle

    private func scheduleCycle(in delay: TimeAmount) {
        cycle = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: delay) { [self] in step() }
    }

    /// The next step of the transaction cycle.
    private var phase = 0

    private func step() {
        guard !stopping else { return }
        if phase == 0 {
            transactions += 1
            idTag = "S\(transactions)-\(identity.suffix(8))"
            queue.append(("StatusNotification", status("Preparing"), nil, idTag))
            let start = #"{"connectorId":1,"idTag":"\#(idTag)","meterStart":\#(meter),"timestamp":"\#(Self.now())"}"#
            queue.append(("StartTransaction", start, nil, idTag))
            queue.append(("StatusNotification", status("Charging"), nil, idTag))
            phase = 1
            scheduleCycle(in: traffic.meterInterval)
        } else if phase <= traffic.meterValues {
            meter += 250
            queue.append(("MeterValues", "METER", nil, idTag))
            phase += 1
            scheduleCycle(in: traffic.meterInterval)
        } else {
            enqueueStop()
            queue.append(("StatusNotification", status("Available"), nil, idTag))
            phase = 0
            scheduleCycle(in: traffic.pause)
        }
        sendNext()
    }

    private func enqueueStop() {
        queue.append(("StopTransaction", "STOP", nil, idTag))
    }

    private func status(_ status: String) -> String {
        #"{"connectorId":1,"errorCode":"NoError","status":"\#(status)","timestamp":"\#(Self.now())"}"#
    }

    static func now() -> String {
        RFC3339.format(Int64(Timestamp.now()), fractionDigits: 3)
    }

    // MARK: Calls

    private func sendNext() {
        guard inFlight == nil, let channel else { return closeIfDone() }
        if queue.isEmpty, !stopping, NIODeadline.now() - lastHeartbeat >= traffic.heartbeat {
            queue.append(("Heartbeat", "{}", nil, ""))
        }
        guard !queue.isEmpty else { return closeIfDone() }
        var (action, payload, resent, tag) = queue.removeFirst()
        // Payloads that need the transaction id are made when they go.
        if payload == "METER" || payload == "STOP" {
            guard let transactionId else { return sendNext() }
            payload =
                payload == "METER"
                ? #"{"connectorId":1,"transactionId":\#(transactionId),"meterValue":[{"timestamp":"\#(Self.now())","sampledValue":[{"value":"\#(meter)","measurand":"Energy.Active.Import.Register","unit":"Wh"}]}]}"#
                : #"{"transactionId":\#(transactionId),"meterStop":\#(meter),"timestamp":"\#(Self.now())","idTag":"\#(tag)"}"#
        }
        nextID += 1
        let id = resent ?? "\(nextID)"
        inFlight = (id, action, payload, tag, .now())
        write(#"[2,"\#(id)","\#(action)",\#(payload)]"#, on: channel)
        timeout?.cancel()
        timeout = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: traffic.callTimeout) { [self] in
            guard inFlight?.id == id else { return }
            inFlight = nil
            totals.withLockedValue { $0.errors += 1 }
            sendNext()
        }
    }

    private func write(_ text: String, on channel: any Channel) {
        let frame = WebSocketFrame(
            fin: true,
            opcode: .text,
            maskKey: .random(),
            data: channel.allocator.buffer(string: text)
        )
        channel.writeAndFlush(frame, promise: nil)
    }

    fileprivate func received(_ frame: WebSocketFrame) {
        switch frame.opcode {
        case .ping:
            if let channel {
                channel.writeAndFlush(
                    WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData),
                    promise: nil
                )
            }
        case .text:
            answered(frame.unmaskedData)
        default:
            break
        }
    }

    private func answered(_ data: ByteBuffer) {
        guard let parsed = try? RPCFrame.parse(data.readableBytesView) else { return }
        switch parsed {
        case .call(let call):
            // The backend's own calls (none from the soak's backend): accepted.
            if let channel {
                write(#"[3,\#(JSONValue.string(call.messageID).jsonText),{"status":"Accepted"}]"#, on: channel)
            }
        case .callResult(let result) where result.messageID == inFlight?.id:
            let call = inFlight!
            inFlight = nil
            timeout?.cancel()
            let micros = UInt32(clamping: (NIODeadline.now() - call.sentAt).nanoseconds / 1000)
            let key = "\(identity)/\(call.tag)"
            switch call.action {
            case "StartTransaction": transactionId = result.payload["transactionId"]?.intValue
            case "StopTransaction": transactionId = nil
            case "Heartbeat": lastHeartbeat = .now()
            default: break
            }
            totals.withLockedValue { totals in
                totals.roundTrips += 1
                if totals.latencies.count < 200_000 { totals.latencies.append(micros) }
                if call.action == "StartTransaction" { totals.started.insert(key) }
                if call.action == "StopTransaction" { totals.stopped.insert(key) }
            }
            sendNext()
        case .callError(let error) where error.messageID == inFlight?.id:
            inFlight = nil
            timeout?.cancel()
            totals.withLockedValue { $0.errors += 1 }
            sendNext()
        default:
            break
        }
    }
}

private final class SoakChargerHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    let charger: SoakCharger

    init(charger: SoakCharger) {
        self.charger = charger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        charger.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
