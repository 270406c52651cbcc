import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// Where and how to open a WebSocket.
public struct WebSocketDial: Sendable {
    public var host: String
    public var port: Int
    /// The request target.
    public var path: String
    /// The `Host` header.
    public var hostHeader: String
    /// Offered in `Sec-WebSocket-Protocol`, in this order; the server must choose one of them (or none).
    public var subprotocols: [String]
    /// Further request headers (`Authorization`).
    public var headers: HTTPHeaders
    /// Set: TLS (wss://), with SNI and the certificate checked against the host name (an IP address is checked
    /// against the certificate's addresses).
    public var tls: NIOSSLContext?
    public var maxFrameSize: Int
    /// Connecting, TLS and the upgrade together.
    public var timeout: TimeAmount
    /// Set: permessage-deflate is offered (RFC 7692) under this policy, and the server's answer checked against
    /// the offer. Unset: no extension is offered, and an answer naming one fails the dial.
    public var deflate: DeflatePolicy?

    public init(
        host: String,
        port: Int,
        path: String,
        hostHeader: String? = nil,
        subprotocols: [String],
        headers: HTTPHeaders = [:],
        tls: NIOSSLContext? = nil,
        maxFrameSize: Int = 1 << 20,
        timeout: TimeAmount = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.path = path
        self.hostHeader = hostHeader ?? "\(host):\(port)"
        self.subprotocols = subprotocols
        self.headers = headers
        self.tls = tls
        self.maxFrameSize = maxFrameSize
        self.timeout = timeout
    }
}

/// What the server agreed to in its answer: the subprotocol it chose, and permessage-deflate's parameters when
/// it accepted the offer.
public struct WebSocketAccepted: Sendable, Equatable {
    public var subprotocol: String?
    public var deflate: DeflateAgreement?
}

/// How a dial ended.
public enum WebSocketDialOutcome<Upgraded: Sendable>: Sendable {
    /// The server accepted: what the caller installed in the pipeline, and the subprotocol chosen.
    case accepted(channel: any Channel, Upgraded, subprotocol: String?)
    /// The server answered the upgrade with another status.
    case refused(status: HTTPResponseStatus, headers: HTTPHeaders)
    /// No connection, a broken handshake, or a subprotocol nobody offered.
    case failed(String)
    /// No answer within the timeout.
    case timedOut
}

/// Opens WebSocket client connections: TCP, TLS when asked, the HTTP upgrade with subprotocols and headers, one
/// timeout for all of it. The one client upgrade of the project: the relay's upstream legs, the built-in peers,
/// the replayer and the benchmark's chargers all dial through it, each installing its own handler.
public enum WebSocketDialler {
    /// Dials; on acceptance calls `upgraded` on the channel's event loop (NIO's frame codec is in the pipeline
    /// then) and completes with what it returns. A late or refused connection is closed, never leaked.
    public static func dial<Upgraded: Sendable>(
        _ dial: WebSocketDial,
        on group: any EventLoopGroup,
        receiveBuffers: AdaptiveRecvByteBufferAllocator? = nil,
        upgraded: @escaping @Sendable (any Channel, WebSocketAccepted) throws -> Upgraded
    ) -> EventLoopFuture<WebSocketDialOutcome<Upgraded>> {
        let eventLoop = group.next()
        guard eventLoop.inEventLoop else {
            return eventLoop.flatSubmit {
                start(dial, on: eventLoop, receiveBuffers: receiveBuffers, upgraded: upgraded)
            }
        }
        return start(dial, on: eventLoop, receiveBuffers: receiveBuffers, upgraded: upgraded)
    }

    private static func start<Upgraded: Sendable>(
        _ dial: WebSocketDial,
        on eventLoop: any EventLoop,
        receiveBuffers: AdaptiveRecvByteBufferAllocator?,
        upgraded: @escaping @Sendable (any Channel, WebSocketAccepted) throws -> Upgraded
    ) -> EventLoopFuture<WebSocketDialOutcome<Upgraded>> {
        let promise = eventLoop.makePromise(of: WebSocketDialOutcome<Upgraded>.self)
        let attempt = NIOLoopBound(Attempt(promise: promise), eventLoop: eventLoop)
        let refusal = eventLoop.makePromise(of: WebSocketDialOutcome<Upgraded>.self)

        var headers = HTTPHeaders()
        headers.add(name: "Host", value: dial.hostHeader)
        if !dial.subprotocols.isEmpty {
            headers.add(name: "Sec-WebSocket-Protocol", value: dial.subprotocols.joined(separator: ", "))
        }
        if let deflate = dial.deflate {
            headers.add(name: "Sec-WebSocket-Extensions", value: PerMessageDeflate.offer(deflate))
        }
        headers.add(contentsOf: dial.headers)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: dial.path, headers: headers)
        let serverHostname = (try? SocketAddress(ipAddress: dial.host, port: 0)) == nil ? dial.host : nil

        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(dial.timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if let receiveBuffers { bootstrap = bootstrap.channelOption(.recvAllocator, value: receiveBuffers) }
        bootstrap = bootstrap.channelInitializer { channel in
            let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade<Upgraded>>(
                maxFrameSize: dial.maxFrameSize,
                enableAutomaticErrorHandling: false,  // the caller's handler answers protocol errors
                upgradePipelineHandler: { channel, response in
                    channel.eventLoop.makeCompletedFuture {
                        let chosen = response.headers[canonicalForm: "Sec-WebSocket-Protocol"].first.map(String.init)
                        if let chosen, !dial.subprotocols.contains(chosen) { return .unoffered(chosen) }
                        // RFC 6455 §4.1: an extension the client did not offer, or parameters outside its offer,
                        // fail the connection.
                        let answered = response.headers["Sec-WebSocket-Extensions"].map { $0[...] }
                        var agreement: DeflateAgreement?
                        if let deflate = dial.deflate {
                            switch PerMessageDeflate.answer(answered, to: deflate) {
                            case .success(let agreed): agreement = agreed
                            case .failure(let error): return .badExtension(error.description)
                            }
                        } else if let unasked = WebSocketExtensions.elements(in: answered).first {
                            return .badExtension(PerMessageDeflate.AnswerError.unoffered(unasked.name).description)
                        }
                        let accepted = WebSocketAccepted(subprotocol: chosen, deflate: agreement)
                        return .upgraded(try upgraded(channel, accepted), subprotocol: chosen)
                    }
                }
            )
            let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade<Upgraded>>(
                upgradeRequestHead: head,
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RefusalCatcher(promise: refusal))
                        return .notUpgraded
                    }
                }
            )
            return channel.eventLoop.makeCompletedFuture {
                if let tls = dial.tls {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: serverHostname)
                    )
                }
                let upgrade = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                    configuration: NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                )
                upgrade.whenComplete { result in
                    switch result {
                    case .success(.upgraded(let value, let subprotocol)):
                        if attempt.value.isFinished {
                            channel.close(promise: nil)  // timed out meanwhile
                        } else {
                            attempt.value.finish(.accepted(channel: channel, value, subprotocol: subprotocol))
                        }
                    case .success(.unoffered(let subprotocol)):
                        attempt.value.finish(
                            .failed("the server chose subprotocol '\(subprotocol)', which was not offered")
                        )
                        channel.close(promise: nil)
                    case .success(.badExtension(let why)):
                        attempt.value.finish(.failed(why))
                        channel.close(promise: nil)
                    case .success(.notUpgraded):
                        refusal.futureResult.whenComplete { refused in
                            attempt.value.finish((try? refused.get()) ?? .failed("the server refused the upgrade"))
                            channel.close(promise: nil)
                        }
                    case .failure(let error):
                        attempt.value.finish(.failed("the WebSocket handshake failed: \(error)"))
                        channel.close(promise: nil)
                    }
                }
            }
        }

        let timeoutTask = eventLoop.scheduleTask(in: dial.timeout) {
            attempt.value.finish(.timedOut)
        }
        bootstrap.connect(host: dial.host, port: dial.port).whenComplete { result in
            switch result {
            case .success(let channel):
                // If the attempt already timed out, drop the late connection.
                if attempt.value.isFinished {
                    channel.close(promise: nil)
                } else {
                    attempt.value.channel = channel
                }
            case .failure(let error):
                if let channelError = error as? ChannelError, case .connectTimeout = channelError {
                    attempt.value.finish(.timedOut)
                } else {
                    attempt.value.finish(.failed("cannot connect to \(dial.host):\(dial.port): \(error)"))
                }
            }
        }
        promise.futureResult.whenComplete { result in
            timeoutTask.cancel()
            // A timed-out attempt closes whatever it had opened.
            if case .success(.timedOut) = result { attempt.value.channel?.close(promise: nil) }
        }
        // The refusal promise never leaks when the channel closes early.
        promise.futureResult.whenComplete { _ in
            refusal.succeed(.failed("the server closed the connection during the handshake"))
        }
        return promise.futureResult
    }

    private enum Upgrade<Upgraded: Sendable>: Sendable {
        case upgraded(Upgraded, subprotocol: String?)
        case unoffered(String)
        case badExtension(String)
        case notUpgraded
    }

    /// Completes a dial exactly once.
    private final class Attempt<Upgraded: Sendable> {
        let promise: EventLoopPromise<WebSocketDialOutcome<Upgraded>>
        var channel: (any Channel)?
        private(set) var isFinished = false

        init(promise: EventLoopPromise<WebSocketDialOutcome<Upgraded>>) {
            self.promise = promise
        }

        func finish(_ outcome: WebSocketDialOutcome<Upgraded>) {
            guard !isFinished else {
                if case .accepted(let channel, _, _) = outcome { channel.close(promise: nil) }
                return
            }
            isFinished = true
            promise.succeed(outcome)
        }
    }

    /// Reads the HTTP response of a refused upgrade and reports its status and headers.
    private final class RefusalCatcher<Upgraded: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart

        private let promise: EventLoopPromise<WebSocketDialOutcome<Upgraded>>

        init(promise: EventLoopPromise<WebSocketDialOutcome<Upgraded>>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                // The status is all that matters: answer without waiting for a body that may never end.
                promise.succeed(.refused(status: head.status, headers: head.headers))
            case .body, .end:
                break
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.succeed(.failed("the server closed the connection during the handshake"))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.succeed(.failed("the WebSocket handshake failed: \(error)"))
            context.close(promise: nil)
        }
    }
}

extension WebSocketDial {
    /// A charger's connection to an upstream URL.
    public init(
        _ url: UpstreamURL,
        path: String,
        subprotocols: [String],
        headers: HTTPHeaders = [:],
        tls: NIOSSLContext?,
        maxFrameSize: Int,
        timeout: TimeAmount
    ) {
        self.init(
            host: url.host,
            port: url.port,
            path: path,
            hostHeader: url.hostHeader,
            subprotocols: subprotocols,
            headers: headers,
            tls: url.scheme == .wss ? tls : nil,
            maxFrameSize: maxFrameSize,
            timeout: timeout
        )
    }
}
