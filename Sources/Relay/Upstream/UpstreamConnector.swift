import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import OCPP
import RelayRecording

/// How dialling upstream for one charger ended.
///
/// Unchecked `Sendable`: an outcome is created and consumed on the event loop of the charger's channel.
enum UpstreamOutcome: @unchecked Sendable {
    /// Upstream accepted the WebSocket; its leg handler buffers frames until the session attaches.
    case accepted(channel: any Channel, handler: LegHandler, subprotocol: String?)
    /// Upstream answered the upgrade with another HTTP status; the charger gets the same.
    case refused(status: HTTPResponseStatus, headers: HTTPHeaders)
    /// No TCP connection, or the upstream broke the handshake: the charger gets 502.
    case failed(String)
    /// Upstream did not answer in time: the charger gets 504.
    case timedOut
}

/// Dials `<upstream>/<chargePointId>` with the charger's subprotocols and Authorization header.
struct UpstreamConnector {
    let maxFrameBytes: Int
    let timeout: TimeAmount

    /// Headers of an upstream refusal worth passing on to the charger.
    static let forwardedRefusalHeaders = ["WWW-Authenticate", "Retry-After", "Location"]

    private enum UpgradeResult: Sendable {
        case upgraded(NIOLoopBound<LegHandler>, subprotocol: String?)
        case notUpgraded
    }

    /// - Parameter tls: the context for a wss:// upstream.
    func connect(
        to upstream: UpstreamURL,
        tls: NIOSSLContext,
        identity: ChargePointIdentity,
        offeredSubprotocols: [String],
        authorization: String?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<UpstreamOutcome> {
        let promise = eventLoop.makePromise(of: UpstreamOutcome.self)
        let attempt = NIOLoopBound(Attempt(promise: promise), eventLoop: eventLoop)

        var headers = HTTPHeaders()
        headers.add(name: "Host", value: upstream.hostHeader)
        if !offeredSubprotocols.isEmpty {
            headers.add(name: "Sec-WebSocket-Protocol", value: offeredSubprotocols.joined(separator: ", "))
        }
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: upstream.path(for: identity), headers: headers)
        let maxFrameBytes = self.maxFrameBytes
        let tls = upstream.scheme == .wss ? tls : nil
        // SNI and the certificate check need a name; an IP address is checked against the certificate's addresses.
        let serverHostname = (try? SocketAddress(ipAddress: upstream.host, port: 0)) == nil ? upstream.host : nil
        let refusal = eventLoop.makePromise(of: UpstreamOutcome.self)

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: RelayServer.receiveBuffers)
            .channelInitializer { channel in
                let upgrader = NIOTypedWebSocketClientUpgrader<UpgradeResult>(
                    maxFrameSize: maxFrameBytes,
                    enableAutomaticErrorHandling: false,  // protocol errors are answered by RelaySession.failed
                    upgradePipelineHandler: { channel, response in
                        channel.eventLoop.makeCompletedFuture {
                            let handler = try LegHandler.install(
                                in: channel.pipeline.syncOperations,
                                leg: .upstream(0),
                                maxFrameBytes: maxFrameBytes
                            )
                            let chosen = response.headers[canonicalForm: "Sec-WebSocket-Protocol"].first.map(
                                String.init
                            )
                            return .upgraded(NIOLoopBound(handler, eventLoop: channel.eventLoop), subprotocol: chosen)
                        }
                    }
                )
                let configuration = NIOTypedHTTPClientUpgradeConfiguration<UpgradeResult>(
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
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: serverHostname)
                        )
                    }
                    let upgraded = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                    )
                    upgraded.whenComplete { result in
                        switch result {
                        case .success(.upgraded(let handler, let subprotocol)):
                            if let subprotocol, !offeredSubprotocols.contains(subprotocol) {
                                attempt.value.finish(
                                    .failed(
                                        "upstream chose subprotocol '\(subprotocol)', which the charger did not offer"
                                    )
                                )
                                channel.close(promise: nil)
                            } else if attempt.value.isFinished {
                                channel.close(promise: nil)  // timed out meanwhile
                            } else {
                                attempt.value.finish(
                                    .accepted(channel: channel, handler: handler.value, subprotocol: subprotocol)
                                )
                            }
                        case .success(.notUpgraded):
                            refusal.futureResult.whenComplete { refused in
                                attempt.value.finish((try? refused.get()) ?? .failed("upstream refused the upgrade"))
                                channel.close(promise: nil)
                            }
                        case .failure(let error):
                            attempt.value.finish(.failed("upstream handshake failed: \(error)"))
                            channel.close(promise: nil)
                        }
                    }
                }
            }

        let timeoutTask = eventLoop.scheduleTask(in: timeout) {
            attempt.value.finish(.timedOut)
        }
        bootstrap.connect(host: upstream.host, port: upstream.port).whenComplete { result in
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
                    attempt.value.finish(.failed("cannot connect to \(upstream.host):\(upstream.port): \(error)"))
                }
            }
        }
        promise.futureResult.whenComplete { result in
            timeoutTask.cancel()
            // A timed-out attempt closes whatever it had opened.
            if case .success(.timedOut) = result { attempt.value.channel?.close(promise: nil) }
        }
        // Make sure refusal never leaks when the channel closes early.
        promise.futureResult.whenComplete { _ in refusal.succeed(.failed("upstream closed during the handshake")) }
        return promise.futureResult
    }

    /// Completes a dial exactly once.
    private final class Attempt {
        let promise: EventLoopPromise<UpstreamOutcome>
        var channel: (any Channel)?
        private(set) var isFinished = false

        init(promise: EventLoopPromise<UpstreamOutcome>) {
            self.promise = promise
        }

        func finish(_ outcome: UpstreamOutcome) {
            guard !isFinished else {
                if case .accepted(let channel, _, _) = outcome { channel.close(promise: nil) }
                return
            }
            isFinished = true
            promise.succeed(outcome)
        }
    }
}

/// Reads the HTTP response of a refused upgrade and reports its status and the headers worth forwarding.
private final class RefusalCatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<UpstreamOutcome>
    private var head: HTTPResponseHead?

    init(promise: EventLoopPromise<UpstreamOutcome>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            // The status is all that matters: answer without waiting for a body that may never end.
            var forwarded = HTTPHeaders()
            for name in UpstreamConnector.forwardedRefusalHeaders {
                for value in head.headers[name] { forwarded.add(name: name, value: value) }
            }
            promise.succeed(.refused(status: head.status, headers: forwarded))
        case .body, .end:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(.failed("upstream closed the connection during the handshake"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.succeed(.failed("upstream handshake failed: \(error)"))
        context.close(promise: nil)
    }
}
