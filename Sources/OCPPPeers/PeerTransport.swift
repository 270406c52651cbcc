import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OCPPTransport

/// Client and server WebSocket plumbing for the built-in peers.
public enum PeerTransport {
    /// Why a built-in peer could not connect.
    public struct ConnectError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens a WebSocket to `ws://host:port/path` offering `subprotocols` (through the project's one dialler).
    public static func connect(
        host: String,
        port: Int,
        path: String,
        subprotocols: [String],
        group: any EventLoopGroup,
        headers: HTTPHeaders = [:],
        timeout: TimeAmount = .seconds(30)
    ) async throws -> PeerSocket {
        let dial = WebSocketDial(
            host: host,
            port: port,
            path: path,
            subprotocols: subprotocols,
            headers: headers,
            maxFrameSize: 1 << 24,
            timeout: timeout
        )
        let outcome = try await WebSocketDialler.dial(dial, on: group) { channel, _ in
            try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
        }.get()
        switch outcome {
        case .accepted(_, let channel, let subprotocol):
            return PeerSocket(channel: channel, isClient: true, subprotocol: subprotocol)
        case .refused(let status, _):
            throw ConnectError(description: "the server refused the WebSocket upgrade for \(path): \(status.code)")
        case .failed(let message):
            throw ConnectError(description: message)
        case .timedOut:
            throw ConnectError(description: "no WebSocket within \(timeout.nanoseconds / 1_000_000_000) s")
        }
    }

    enum ServerUpgrade: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, subprotocol: String?, path: String)
        case notUpgraded
    }

    /// A listening WebSocket server that accepts the first of `supported` the client offers.
    public struct Server: Sendable {
        let listener: NIOAsyncChannel<EventLoopFuture<ServerUpgrade>, Never>

        /// The port it listens on.
        public var port: Int { listener.channel.localAddress?.port ?? 0 }

        /// Accepts connections until the listener closes, running `handle` for each in its own task.
        public func serve(_ handle: @escaping @Sendable (PeerSocket, String) async -> Void) async throws {
            try await withThrowingDiscardingTaskGroup { group in
                try await listener.executeThenClose { inbound in
                    for try await upgrade in inbound {
                        group.addTask {
                            guard case .websocket(let channel, let subprotocol, let path) = try? await upgrade.get()
                            else { return }
                            await handle(PeerSocket(channel: channel, isClient: false, subprotocol: subprotocol), path)
                        }
                    }
                }
            }
        }

        /// Stops listening.
        public func close() {
            listener.channel.close(promise: nil)
        }
    }

    /// Binds a WebSocket server.
    public static func listen(
        host: String,
        port: Int,
        supported: [String],
        group: any EventLoopGroup
    ) async throws -> Server {
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketServerUpgrader<ServerUpgrade>(
                        maxFrameSize: 1 << 24,
                        shouldUpgrade: { channel, head in
                            let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map { String($0) }
                            var headers = HTTPHeaders()
                            if let chosen = offered.first(where: supported.contains) {
                                headers.add(name: "Sec-WebSocket-Protocol", value: chosen)
                            } else if !offered.isEmpty {
                                return channel.eventLoop.makeSucceededFuture(nil)
                            }
                            return channel.eventLoop.makeSucceededFuture(headers)
                        },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                let asyncChannel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                                    wrappingChannelSynchronously: channel
                                )
                                let offered = head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map { String($0) }
                                return ServerUpgrade.websocket(
                                    asyncChannel,
                                    subprotocol: offered.first(where: supported.contains),
                                    path: head.uri
                                )
                            }
                        }
                    )
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                        configuration: NIOUpgradableHTTPServerPipelineConfiguration(
                            upgradeConfiguration: NIOTypedHTTPServerUpgradeConfiguration(
                                upgraders: [upgrader],
                                notUpgradingCompletionHandler: { channel in
                                    channel.close(promise: nil)
                                    return channel.eventLoop.makeSucceededFuture(.notUpgraded)
                                }
                            )
                        )
                    )
                }
            }
        return Server(listener: listener)
    }
}
