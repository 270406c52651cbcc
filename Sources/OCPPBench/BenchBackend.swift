import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OCPP

/// A fast OCPP backend for the benchmark: a ChannelHandler per connection that answers every CALL at once
/// with a canned, schema-shaped result (1.6 or 2.0.1 by subprotocol). It speaks enough for boots,
/// heartbeats, status, transactions and meter values, which is all the benchmark sends.
final class BenchBackend: Sendable {
    let channel: any Channel

    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func start(group: any EventLoopGroup) async throws -> BenchBackend {
        BenchBackend(channel: try await bind(group: group) { _, v201 in BackendHandler(v201: v201) })
    }

    /// A WebSocket server on loopback at `port` (0: any) for the bench's and the soak's backends: each connection's
    /// upgrade picks the newest OCPP version offered, and `handler` makes the connection's handler from the request
    /// and whether that version is 2.x; `accepted` sees each connection first.
    static func bind(
        group: any EventLoopGroup,
        port: Int = 0,
        accepted: @escaping @Sendable (any Channel) -> Void = { _ in },
        handler: @escaping @Sendable (HTTPRequestHead, Bool) -> any ChannelHandler
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    accepted(channel)
                    let upgrader = NIOTypedWebSocketServerUpgrader<Void>(
                        maxFrameSize: 1 << 20,
                        shouldUpgrade: { channel, head in
                            let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map(String.init)
                            let chosen = ["ocpp2.1", "ocpp2.0.1", "ocpp1.6"].first { offered.contains($0) }
                            var headers = HTTPHeaders()
                            if let chosen { headers.add(name: "Sec-WebSocket-Protocol", value: chosen) }
                            return channel.eventLoop.makeSucceededFuture(headers)
                        },
                        upgradePipelineHandler: { channel, head in
                            let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map(String.init)
                            let v201 = offered.contains("ocpp2.0.1") || offered.contains("ocpp2.1")
                            return channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(handler(head, v201))
                            }
                        }
                    )
                    _ = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                        configuration: .init(
                            upgradeConfiguration: .init(
                                upgraders: [upgrader],
                                notUpgradingCompletionHandler: { channel in
                                    channel.close(promise: nil)
                                    return channel.eventLoop.makeSucceededVoidFuture()
                                }
                            )
                        )
                    )
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }

    func stop() async {
        try? await channel.close()
    }
}

/// Answers each CALL on the event loop.
final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let v201: Bool
    private var transactions = 0

    init(v201: Bool) {
        self.v201 = v201
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        var payload = frame.data
        if let mask = frame.maskKey { payload.webSocketUnmask(mask) }
        switch frame.opcode {
        case .text:
            guard let call = Self.callHeader(payload) else { return }
            let reply = "[3,\"\(call.id)\",\(answer(call.action))]"
            context.writeAndFlush(
                wrapOutboundOut(
                    WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(string: reply))
                ),
                promise: nil
            )
        default:
            Self.answerControl(frame.opcode, payload, context: context)
        }
    }

    /// A backend's answer to a control frame: a ping's pong, a close's echo (then the connection goes).
    static func answerControl(_ opcode: WebSocketOpcode, _ payload: ByteBuffer, context: ChannelHandlerContext) {
        switch opcode {
        case .ping:
            context.writeAndFlush(NIOAny(WebSocketFrame(fin: true, opcode: .pong, data: payload)), promise: nil)
        case .connectionClose:
            var echo = context.channel.allocator.buffer(capacity: 2)
            echo.writeInteger(UInt16(1000))
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(NIOAny(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo)))
                .whenComplete { _ in bound.value.close(promise: nil) }
        default:
            break
        }
    }

    /// `[2,"id","Action",…`: the id and action, read without parsing the payload.
    static func callHeader(_ buffer: ByteBuffer) -> (id: String, action: String)? {
        buffer.withUnsafeReadableBytes { bytes -> (String, String)? in
            var strings: [String] = []
            var index = 0
            while index < bytes.count, strings.count < 2 {
                if bytes[index] == UInt8(ascii: "\"") {
                    let start = index + 1
                    var end = start
                    while end < bytes.count, bytes[end] != UInt8(ascii: "\"") { end += 1 }
                    strings.append(
                        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                    )
                    index = end + 1
                } else {
                    index += 1
                }
            }
            guard strings.count == 2, bytes.count > 1, bytes[1] == UInt8(ascii: "2") else { return nil }
            return (strings[0], strings[1])
        }
    }

    private func answer(_ action: String) -> String {
        if action == "StartTransaction" { transactions += 1 }
        return Self.answer(action, v201: v201, transaction: transactions)
    }

    /// The canned answer to `action` (the connection's `transaction`-th StartTransaction gets that id).
    static func answer(_ action: String, v201: Bool, transaction: Int) -> String {
        let now = "\"2026-11-27T06:00:00.000Z\""
        switch action {
        case "BootNotification": return "{\"currentTime\":\(now),\"interval\":300,\"status\":\"Accepted\"}"
        case "Heartbeat": return "{\"currentTime\":\(now)}"
        case "Authorize":
            return v201 ? "{\"idTokenInfo\":{\"status\":\"Accepted\"}}" : "{\"idTagInfo\":{\"status\":\"Accepted\"}}"
        case "StartTransaction":
            return "{\"idTagInfo\":{\"status\":\"Accepted\"},\"transactionId\":\(transaction)}"
        case "StopTransaction": return "{\"idTagInfo\":{\"status\":\"Accepted\"}}"
        case "TransactionEvent": return "{\"idTokenInfo\":{\"status\":\"Accepted\"}}"
        default: return "{}"
        }
    }
}
