import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import OCPPTransport
import RelayConfig
import RelayRecording

/// `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz` (the relay accepts chargers and
/// every configured upstream accepts TCP connections) on their own listen address, apart from the chargers'.
package final class ObservabilityServer: Sendable {
    private let channel: any Channel

    package struct Endpoints: Sendable {
        /// The Prometheus exposition.
        let metrics: @Sendable () -> [UInt8]
        /// Whether the relay is ready, and why not.
        let ready: @Sendable (any EventLoop) -> EventLoopFuture<(ready: Bool, detail: String)>

        package init(
            metrics: @escaping @Sendable () -> [UInt8],
            ready: @escaping @Sendable (any EventLoop) -> EventLoopFuture<(ready: Bool, detail: String)>
        ) {
            self.metrics = metrics
            self.ready = ready
        }
    }

    private init(channel: any Channel) {
        self.channel = channel
    }

    package var localAddress: SocketAddress? { channel.localAddress }

    package static func start(
        host: String,
        port: Int,
        group: any EventLoopGroup,
        endpoints: Endpoints
    ) async throws -> ObservabilityServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ObservabilityHandler(endpoints: endpoints))
                }
            }
            .bind(host: host, port: port).get()
        return ObservabilityServer(channel: channel)
    }

    package func close() async {
        try? await channel.close()
    }
}

private final class ObservabilityHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoints: ObservabilityServer.Endpoints
    private var head: HTTPRequestHead?

    init(endpoints: ObservabilityServer.Endpoints) {
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        guard head.method == .GET || head.method == .HEAD else {
            return respond(.methodNotAllowed, "only GET\n", head: head, context: context)
        }
        switch path {
        case "/metrics":
            respond(
                .ok,
                endpoints.metrics(),
                contentType: "text/plain; version=0.0.4; charset=utf-8",
                head: head,
                context: context
            )
        case "/healthz":
            respond(.ok, "ok\n", head: head, context: context)
        case "/readyz":
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            endpoints.ready(loop).whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success(let readiness):
                    handler.respond(
                        readiness.ready ? .ok : .serviceUnavailable,
                        readiness.detail + "\n",
                        head: head,
                        context: context
                    )
                case .failure(let error):
                    handler.respond(.serviceUnavailable, "\(error)\n", head: head, context: context)
                }
            }
        default:
            respond(.notFound, "not found: try /metrics, /healthz or /readyz\n", head: head, context: context)
        }
    }

    private func respond(
        _ status: HTTPResponseStatus,
        _ text: String,
        head: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        respond(status, Array(text.utf8), contentType: "text/plain; charset=utf-8", head: head, context: context)
    }

    private func respond(
        _ status: HTTPResponseStatus,
        _ body: [UInt8],
        contentType: String,
        head: HTTPRequestHead,
        context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))),
                promise: nil
            )
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }
}

/// Whether every upstream the configuration names accepts a TCP connection; asked at most every few seconds.
/// The upstreams are read from the configuration in force when asked (a reload may change them).
package final class UpstreamReachability: Sendable {
    private let configuration: @Sendable () -> RelayConfiguration
    private let clock: RelayClock
    /// When (monotonic nanoseconds) the upstreams were last probed, and what was found.
    private let cache = NIOLockedValueBox<(at: UInt64, targets: [String], unreachable: [String])?>(nil)
    private static let freshFor: UInt64 = 5_000_000_000

    package init(clock: RelayClock, configuration: @escaping @Sendable () -> RelayConfiguration) {
        self.clock = clock
        self.configuration = configuration
    }

    /// The upstreams (`host:port`) that did not accept a connection.
    package func unreachable(on eventLoop: any EventLoop) -> EventLoopFuture<[String]> {
        let configuration = self.configuration()
        var targets: [(host: String, port: Int)] = []
        var seen = Set<String>()
        for upstream in [configuration.upstream] + configuration.routes.map(\.upstream)
        where seen.insert("\(upstream.host):\(upstream.port)").inserted {
            targets.append((upstream.host, upstream.port))
        }
        let names = targets.map { "\($0.host):\($0.port)" }
        if let cached = cache.withLockedValue({ $0 }), cached.targets == names,
            clock.monotonic() &- cached.at < Self.freshFor
        {
            return eventLoop.makeSucceededFuture(cached.unreachable)
        }
        let timeout = TimeAmount(min(configuration.upstreamTimeout, .seconds(2)))
        let probes = zip(targets, names).map { target, name in
            ClientBootstrap(group: eventLoop)
                .connectTimeout(timeout)
                .connect(host: target.host, port: target.port)
                .flatMap { channel in channel.close().map { nil as String? } }
                .recover { _ in name }
        }
        return EventLoopFuture.whenAllSucceed(probes, on: eventLoop).map { [cache, clock] results in
            let unreachable = results.compactMap { $0 }
            cache.withLockedValue { $0 = (clock.monotonic(), names, unreachable) }
            return unreachable
        }
    }
}
