import Foundation
import NIOCore
import NIOWebSocket
import OCPPTransport

/// A charger of the benchmark: boots, then sends heartbeats or meter values in a closed loop, at a pace, or
/// nothing, recording each round trip. A ChannelHandler on the event loop, so the load generator costs little.
final class BenchCharger: Sendable {
    enum Mode: Sendable {
        case idle
        case closedLoop(Traffic)
        case paced(TimeAmount, Traffic)
        /// Frames to send one after the other (each waits for its answer).
        case script([String])
    }

    /// What a charger sends in a loop.
    enum Traffic: String, Sendable {
        /// Heartbeats: nothing changes anywhere.
        case heartbeat
        /// MeterValues inside a transaction (started first, once per charger): energy, power, and current and
        /// voltage per phase, every message a state change for a translating relay.
        case meterValues = "meter-values"
    }

    let channel: any Channel
    /// Reached only on the channel's event loop.
    fileprivate let handler: NIOLoopBound<ChargerHandler>

    /// Made on the channel's event loop, once the charger booted.
    fileprivate init(channel: any Channel, handler: ChargerHandler) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    /// Connects to `ws://host:port/path`, upgrades with `subprotocol` and boots; fails on any refusal.
    static func connect(
        host: String,
        port: Int,
        path: String,
        subprotocol: String,
        group: any EventLoopGroup
    ) async throws -> BenchCharger {
        let v201 = subprotocol != "ocpp1.6"  // 2.0.1 and 2.1 chargers send the same messages
        let eventLoop = group.next()
        let booted = eventLoop.makePromise(of: BenchCharger.self)
        let dial = WebSocketDial(host: host, port: port, path: path, subprotocols: [subprotocol])
        let outcome = try await WebSocketDialler.dial(dial, on: eventLoop) { channel, _ in
            let handler = ChargerHandler(v201: v201, booted: booted)
            try channel.pipeline.syncOperations.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: channel.eventLoop)
        }.get()
        guard case .accepted(let channel, let handler, _) = outcome else {
            booted.fail(BenchError("the WebSocket upgrade failed: \(outcome)"))
            return try await booted.futureResult.get()
        }
        // Writes are possible once the upgrade handlers are gone: boot now.
        try await eventLoop.submit {
            channel.closeFuture.whenComplete { _ in booted.fail(ChannelError.ioOnClosedChannel) }
            handler.value.boot()
        }.get()
        return try await booted.futureResult.get()
    }

    /// Starts a mode; `done` completes when a script finishes.
    func start(_ mode: Mode) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let handler = self.handler
        channel.eventLoop.execute { handler.value.start(mode, done: promise) }
        return promise.futureResult
    }

    /// Stops sending (the call in flight still completes).
    func stop() {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.stopRunning() }
    }

    /// Round trips measured so far, in nanoseconds (read on the loop).
    func roundTrips() async throws -> [UInt64] {
        let handler = self.handler
        return try await channel.eventLoop.submit { handler.value.samples }.get()
    }

    func clearSamples() async throws {
        let handler = self.handler
        try await channel.eventLoop.submit { handler.value.samples.removeAll(keepingCapacity: true) }.get()
    }

    func close() async {
        try? await channel.close()
    }
}

private final class ChargerHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let v201: Bool
    private var booted: EventLoopPromise<BenchCharger>?
    private var context: ChannelHandlerContext?
    private var nextID = 0
    private var sentAt: NIODeadline?
    private var mode: BenchCharger.Mode = .idle
    private var script: [String] = []
    private var done: EventLoopPromise<Void>?
    /// The transaction the meter values belong to, once started; whether its StartTransaction is in flight.
    private var transactionId: Int?
    private var starting = false
    private var meterReading = 0
    /// A 2.0.1 charger's transaction: started or not, and the seqNo of its next event.
    private var started201 = false
    private var seqNo = 0
    var running = false
    var samples: [UInt64] = []

    init(v201: Bool, booted: EventLoopPromise<BenchCharger>) {
        self.v201 = v201
        self.booted = booted
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func boot() {
        let boot =
            v201
            ? #"{"chargingStation":{"model":"bench","vendorName":"ocpp-relay"},"reason":"PowerUp"}"#
            : #"{"chargePointVendor":"ocpp-relay","chargePointModel":"bench"}"#
        send(action: "BootNotification", payload: boot)
    }

    private func send(action: String, payload: String) {
        nextID += 1
        send(text: "[2,\"\(nextID)\",\"\(action)\",\(payload)]")
    }

    private func send(text: String) {
        guard let context else { return }
        sentAt = .now()
        let frame = WebSocketFrame(
            fin: true,
            opcode: .text,
            maskKey: .random(),
            data: context.channel.allocator.buffer(string: text)
        )
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func stopRunning() {
        running = false
        done?.succeed(())
        done = nil
    }

    func start(_ mode: BenchCharger.Mode, done: EventLoopPromise<Void>) {
        self.done?.succeed(())
        self.mode = mode
        self.done = done
        running = true
        switch mode {
        case .idle:
            done.succeed(())
            self.done = nil
        case .closedLoop(let traffic), .paced(_, let traffic):
            sendNext(traffic)
        case .script(let frames):
            script = frames
            next()
        }
    }

    private func next() {
        guard running, !script.isEmpty else {
            done?.succeed(())
            done = nil
            return
        }
        let frame = script.removeFirst()
        nextID += 1
        // Script frames carry a placeholder id.
        send(text: frame.replacingFirst("\"ID\"", with: "\"\(nextID)\""))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.opcode == .text else {
            if frame.opcode == .ping {
                context.writeAndFlush(
                    wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.data)),
                    promise: nil
                )
            }
            return
        }
        let now = NIODeadline.now()
        // A CALL from the other side (the relay's own) is not an answer.
        if frame.data.getInteger(at: frame.data.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "2") { return }
        let roundTrip = sentAt.map { UInt64(max(0, (now - $0).nanoseconds)) }
        sentAt = nil
        if let promise = booted {
            booted = nil
            promise.succeed(BenchCharger(channel: context.channel, handler: self))
            return
        }
        if starting {
            // The StartTransaction's answer is not a measured round trip.
            starting = false
            if v201 { started201 = true } else { transactionId = Self.transactionId(in: frame.data) }
        } else if let roundTrip {
            samples.append(roundTrip)
        }
        switch mode {
        case .closedLoop(let traffic):
            if running { sendNext(traffic) }
        case .paced(let interval, let traffic):
            if running {
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: interval) {
                    if handler.value.running { handler.value.sendNext(traffic) }
                }
            }
        case .script:
            next()
        case .idle:
            break
        }
    }

    /// The next message of a loop: the transaction's start first, when meter values need one.
    private func sendNext(_ traffic: BenchCharger.Traffic) {
        switch traffic {
        case .heartbeat:
            send(action: "Heartbeat", payload: "{}")
        case .meterValues where v201:
            guard started201 else {
                starting = true
                send(action: "TransactionEvent", payload: Self.transactionEvent(seqNo: 0, started: true, reading: 0))
                seqNo = 1
                return
            }
            meterReading += 37
            send(
                action: "TransactionEvent",
                payload: Self.transactionEvent(seqNo: seqNo, started: false, reading: meterReading)
            )
            seqNo += 1
        case .meterValues:
            guard let transactionId else {
                starting = true
                send(
                    action: "StartTransaction",
                    payload:
                        #"{"connectorId":1,"idTag":"BENCH-TAG","meterStart":0,"timestamp":"2026-12-01T06:00:00Z"}"#
                )
                return
            }
            meterReading += 37
            send(action: "MeterValues", payload: Self.meterValues(transactionId: transactionId, reading: meterReading))
        }
    }

    /// A periodic sample as real chargers send it: energy, power, and current and voltage on three phases.
    static func meterValues(transactionId: Int, reading: Int) -> String {
        var sampled = [
            #"{"value":"\#(reading)","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"}"#,
            #"{"value":"11040","context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unit":"W"}"#,
        ]
        for phase in 1...3 {
            sampled.append(
                #"{"value":"16.\#(phase)","context":"Sample.Periodic","measurand":"Current.Import","phase":"L\#(phase)","location":"Outlet","unit":"A"}"#
            )
            sampled.append(
                #"{"value":"230.\#(phase)","context":"Sample.Periodic","measurand":"Voltage","phase":"L\#(phase)-N","location":"Outlet","unit":"V"}"#
            )
        }
        return
            #"{"connectorId":1,"transactionId":\#(transactionId),"meterValue":[{"timestamp":"2026-12-01T06:00:00Z","sampledValue":["#
            + sampled.joined(separator: ",") + "]}]}"
    }

    /// A 2.0.1 charger's transaction event: Started (with token, EVSE and the start reading), or Updated with the
    /// same periodic sample as ``meterValues(transactionId:reading:)``, in 2.0.1 form.
    static func transactionEvent(seqNo: Int, started: Bool, reading: Int) -> String {
        let time = "2026-12-01T06:00:00Z"
        guard !started else {
            return
                #"{"eventType":"Started","timestamp":"\#(time)","triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"bench-tx","chargingState":"Charging"},"idToken":{"idToken":"BENCH-TAG","type":"ISO14443"},"evse":{"id":1,"connectorId":1},"meterValue":[{"timestamp":"\#(time)","sampledValue":[{"value":0,"context":"Transaction.Begin","measurand":"Energy.Active.Import.Register","unitOfMeasure":{"unit":"Wh"}}]}]}"#
        }
        var sampled = [
            #"{"value":\#(reading),"context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unitOfMeasure":{"unit":"Wh"}}"#,
            #"{"value":11040,"context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unitOfMeasure":{"unit":"W"}}"#,
        ]
        for phase in 1...3 {
            sampled.append(
                #"{"value":16.\#(phase),"context":"Sample.Periodic","measurand":"Current.Import","phase":"L\#(phase)","location":"Outlet","unitOfMeasure":{"unit":"A"}}"#
            )
            sampled.append(
                #"{"value":230.\#(phase),"context":"Sample.Periodic","measurand":"Voltage","phase":"L\#(phase)-N","location":"Outlet","unitOfMeasure":{"unit":"V"}}"#
            )
        }
        return
            #"{"eventType":"Updated","timestamp":"\#(time)","triggerReason":"MeterValuePeriodic","seqNo":\#(seqNo),"transactionInfo":{"transactionId":"bench-tx"},"meterValue":[{"timestamp":"\#(time)","sampledValue":["#
            + sampled.joined(separator: ",") + "]}]}"
    }

    /// The `transactionId` of a StartTransaction.conf, read without a JSON parser.
    static func transactionId(in buffer: ByteBuffer) -> Int? {
        let text = String(buffer: buffer)
        guard let range = text.range(of: #""transactionId":"#) else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    func channelInactive(context: ChannelHandlerContext) {
        booted?.fail(ChannelError.ioOnClosedChannel)
        booted = nil
        done?.succeed(())
        done = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        booted?.fail(error)
        booted = nil
        context.close(promise: nil)
    }
}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
