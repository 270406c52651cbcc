import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OCPPTransport
import Testing

/// A TCP server on loopback that answers the first request it reads with canned bytes (or never answers).
final class CannedServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private final class Answer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let response: String?

        init(response: String?) {
            self.response = response
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let response else { return }
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: response)), promise: nil)
        }
    }

    init(response: String?) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Answer(response: response))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async {
        try? await channel.close()
    }
}

@Suite("WebSocket dialler")
struct WebSocketDiallerTests {
    func dial(
        port: Int,
        subprotocols: [String] = ["ocpp1.6"],
        timeout: TimeAmount = .seconds(5)
    ) async throws
        -> WebSocketDialOutcome<Bool>
    {
        try await WebSocketDialler.dial(
            WebSocketDial(
                host: "127.0.0.1",
                port: port,
                path: "/ocpp/CP-1",
                subprotocols: subprotocols,
                timeout: timeout
            ),
            on: MultiThreadedEventLoopGroup.singleton
        ) { _, _ in true }.get()
    }

    @Test("a refusal comes back with its status and headers, without waiting for its body")
    func refused() async throws {
        let server = try await CannedServer(
            response:
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"csms\"\r\nContent-Length: 1000\r\n\r\n"
        )
        defer { Task { await server.close() } }
        guard case .refused(let status, let headers) = try await dial(port: server.port) else {
            Issue.record("not refused")
            return
        }
        #expect(status == .unauthorized)
        #expect(headers.first(name: "WWW-Authenticate") == #"Basic realm="csms""#)
    }

    @Test("a server that never answers is a timeout; nobody listening is a failure naming the address")
    func silentAndAbsent() async throws {
        let server = try await CannedServer(response: nil)
        defer { Task { await server.close() } }
        guard case .timedOut = try await dial(port: server.port, timeout: .milliseconds(300)) else {
            Issue.record("no timeout")
            return
        }
        let port = server.port
        await server.close()
        guard case .failed(let message) = try await dial(port: port) else {
            Issue.record("no failure")
            return
        }
        #expect(message.contains("cannot connect to 127.0.0.1:\(port)"), "\(message)")
    }

    @Test("an accepted upgrade installs the caller's handler; a subprotocol or an extension nobody offered fails it")
    func accepted() async throws {
        let chosen = NIOLockedValueBox("")
        let extensions = NIOLockedValueBox<[String]>([])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketServerUpgrader<Void>(
                        shouldUpgrade: { channel, _ in
                            var headers = HTTPHeaders()
                            headers.add(name: "Sec-WebSocket-Protocol", value: chosen.withLockedValue { $0 })
                            for value in extensions.withLockedValue({ $0 }) {
                                headers.add(name: "Sec-WebSocket-Extensions", value: value)
                            }
                            return channel.eventLoop.makeSucceededFuture(headers)
                        },
                        upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededVoidFuture() }
                    )
                    _ = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                        configuration: .init(
                            upgradeConfiguration: .init(
                                upgraders: [upgrader],
                                notUpgradingCompletionHandler: { $0.eventLoop.makeSucceededVoidFuture() }
                            )
                        )
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = server.localAddress?.port ?? 0
        chosen.withLockedValue { $0 = "ocpp2.0.1" }
        guard
            case .accepted(let channel, let installed, let subprotocol) = try await dial(
                port: port,
                subprotocols: ["ocpp1.6", "ocpp2.0.1"]
            )
        else {
            Issue.record("not accepted")
            return
        }
        #expect(installed && subprotocol == "ocpp2.0.1")
        try await channel.close()
        guard case .failed(let message) = try await dial(port: port, subprotocols: ["ocpp1.6"]) else {
            Issue.record("an unoffered subprotocol was accepted")
            return
        }
        #expect(message == "the server chose subprotocol 'ocpp2.0.1', which was not offered")
        // RFC 6455 §4.1: the dial offers no extension, so any in the answer fails it.
        for (answer, named) in [
            (["x-unknown-extension"], "x-unknown-extension"),
            (["permessage-deflate; server_max_window_bits=7"], "permessage-deflate"),
            ([#"x-quoted; note="a, b", x-second"#], "x-quoted"),
        ] {
            extensions.withLockedValue { $0 = answer }
            guard case .failed(let message) = try await dial(port: port, subprotocols: ["ocpp2.0.1"]) else {
                Issue.record("an unoffered extension was accepted: \(answer)")
                continue
            }
            #expect(message == "the server answered with extension '\(named)', which was not offered")
        }
    }

    @Test("extensions are read from every value of the header, with their parameters, quoted commas kept")
    func extensionElements() {
        #expect(WebSocketExtensions.elements(in: []) == [])
        #expect(WebSocketExtensions.elements(in: ["", " , "]) == [])
        #expect(
            WebSocketExtensions.elements(in: [#" permessage-deflate; client_max_window_bits, x-a; p="1, 2"; q"#, "x-b"])
                == [
                    .init(name: "permessage-deflate", parameters: [("client_max_window_bits", nil)]),
                    .init(name: "x-a", parameters: [("p", "1, 2"), ("q", nil)]),
                    .init(name: "x-b"),
                ]
        )
    }
}
