import NIOCore
import NIOHTTP1

/// Answers a request that did not become a WebSocket: with the refusal the relay decided on
/// (upstream's status, 502, 504, 400, 404), or 426 for a plain HTTP request.
final class RefusalResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let handshake: NIOLoopBound<Handshake>
    private var sawHead = false
    private var answered = false

    private let answerEarly: Bool

    /// - Parameter answerEarly: whether a refusal already decided is answered as soon as the responder is
    ///   added (the upgrade handler consumed the request) rather than after the request has arrived.
    init(handshake: NIOLoopBound<Handshake>, answerEarly: Bool = true) {
        self.handshake = handshake
        self.answerEarly = answerEarly
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // A refused upgrade: NIO has already consumed the request (its end arrived while the relay was
        // dialling upstream), so answer now rather than wait for parts that will not come.
        if answerEarly, handshake.value.admission.refusal != nil {
            respond(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            sawHead = true
        case .body:
            break
        case .end:
            respond(context: context)
        }
    }

    private func respond(context: ChannelHandlerContext) {
        guard !answered else { return }
        answered = true
        // The request is in: the slowloris timer is done.
        handshake.value.expiry?.cancel()
        let refusal =
            handshake.value.admission.refusal
            ?? (sawHead
                ? ChargerAdmission.Refusal(
                    status: .upgradeRequired,
                    headers: ["Upgrade": "websocket"],
                    message: "connect with a WebSocket (ws://HOST:PORT/PREFIX/CHARGE_POINT_ID)"
                )
                : ChargerAdmission.Refusal(status: .badRequest, message: "invalid WebSocket handshake"))
        var headers = refusal.headers
        let body = "ocpp-relay: " + refusal.message + "\n"
        headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count))
        headers.replaceOrAdd(name: "Connection", value: "close")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: refusal.status, headers: headers))),
            promise: nil
        )
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
