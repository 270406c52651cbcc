import NIOCore
import NIOWebSocket

/// One end of an OCPP WebSocket for the built-in peers: send text, receive text, answer pings.
///
/// Built on `NIOAsyncChannel`: convenient for scripted peers; the relay's own frame path does not use it.
public struct PeerSocket: Sendable {
    let channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
    let isClient: Bool
    /// The subprotocol agreed in the handshake.
    public let subprotocol: String?

    /// Runs `body` with an open socket and closes it afterwards.
    func run<T: Sendable>(_ body: (Session) async throws -> T) async throws -> T {
        try await channel.executeThenClose { inbound, outbound in
            let session = Session(inbound: inbound.makeAsyncIterator(), outbound: outbound, isClient: isClient)
            return try await body(session)
        }
    }

    /// An open socket.
    public final class Session {
        private var inbound: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator
        private let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
        private let isClient: Bool
        /// The close code the peer sent, once it closed.
        public private(set) var peerCloseCode: Int?

        init(
            inbound: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator,
            outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>,
            isClient: Bool
        ) {
            self.inbound = inbound
            self.outbound = outbound
            self.isClient = isClient
        }

        private var maskKey: WebSocketMaskingKey? { isClient ? .random() : nil }

        /// Sends one text message.
        public func send(_ text: String) async throws {
            let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: maskKey, data: ByteBuffer(string: text))
            try await outbound.write(frame)
        }

        /// The next text message, or `nil` once the peer closed.
        public func receive() async throws -> String? {
            while let frame = try await inbound.next() {
                var data = frame.data
                if let mask = frame.maskKey { data.webSocketUnmask(mask) }
                switch frame.opcode {
                case .text, .binary:
                    return data.readString(length: data.readableBytes) ?? ""
                case .ping:
                    try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, maskKey: maskKey, data: data))
                case .connectionClose:
                    peerCloseCode = data.readInteger(as: UInt16.self).map(Int.init) ?? 1005
                    if !closeSent {
                        var echo = ByteBuffer()
                        echo.writeInteger(UInt16(peerCloseCode == 1005 ? 1000 : peerCloseCode!))
                        try? await outbound.write(
                            WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: maskKey, data: echo)
                        )
                    }
                    return nil
                default:
                    continue
                }
            }
            return nil
        }

        private var closeSent = false

        /// Starts a close handshake and waits for the peer's answer (or the end of the connection).
        public func close(code: UInt16 = 1000) async throws {
            var payload = ByteBuffer()
            payload.writeInteger(code)
            closeSent = true
            try await outbound.write(
                WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: maskKey, data: payload)
            )
            while let frame = try await inbound.next() {
                if frame.opcode == .connectionClose { break }
            }
        }
    }
}
