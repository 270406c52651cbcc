import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import OCPP

/// What the soak's backend received, per charger: each transaction's start (by the charger's idTag, which the soak
/// makes unique per transaction) and end, counted, so that a transaction lost or doubled anywhere shows.
struct SoakBackendLedger: Sendable {
    /// `identity/idTag` → how often its start arrived.
    var started: [String: Int] = [:]
    /// `identity/idTag` → how often its end arrived.
    var ended: [String: Int] = [:]
    /// The idTag of each transaction the backend knows (`identity/transactionId`).
    var tokens: [String: String] = [:]
    var calls = 0
    var connections = 0
    var nextTransaction = 0
}

/// The soak's backend: answers every call at once (1.6 or 2.0.1, by subprotocol), keeps the ledger, and restarts on
/// demand as a deploy does: it stops listening, closes every connection (with 1012, or by a reset as a crash
/// does), and listens again on the same port after a pause.
final class SoakBackend: Sendable {
    let port: Int
    private let group: any EventLoopGroup
    private let server = NIOLockedValueBox<(any Channel)?>(nil)
    private let children = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    let ledger = NIOLockedValueBox(SoakBackendLedger())

    private init(port: Int, group: any EventLoopGroup) {
        self.port = port
        self.group = group
    }

    static func start(group: any EventLoopGroup) async throws -> SoakBackend {
        let backend = SoakBackend(port: ProxyProcess.freePort(), group: group)
        try await backend.listen()
        return backend
    }

    private func listen() async throws {
        let channel = try await BenchBackend.bind(
            group: group,
            port: port,
            accepted: { [children] channel in
                let id = ObjectIdentifier(channel)
                children.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in children.withLockedValue { $0[id] = nil } }
            },
            handler: { [ledger] head, v201 in
                ledger.withLockedValue { $0.connections += 1 }
                let identity = String(head.uri.split(separator: "/").last ?? "")
                return SoakBackendHandler(v201: v201, identity: identity, ledger: ledger)
            }
        )
        server.withLockedValue { $0 = channel }
    }

    /// How a restart ends the backend's connections.
    enum Restart: String, Sendable {
        /// A deploy: a close frame with 1012 (service restart).
        case close
        /// A crash: the connections reset, no close frame.
        case reset
    }

    /// Stops listening, ends every connection, waits `pause`, listens again on the same port.
    func restart(_ kind: Restart, pause: Duration) async throws {
        let listening = server.withLockedValue { channel -> (any Channel)? in
            defer { channel = nil }
            return channel
        }
        try? await listening?.close()
        for channel in children.withLockedValue({ Array($0.values) }) {
            switch kind {
            case .close:
                var code = channel.allocator.buffer(capacity: 2)
                code.writeInteger(UInt16(1012))
                let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: code)
                channel.writeAndFlush(frame).whenComplete { _ in channel.close(promise: nil) }
            case .reset:
                guard let socket = channel as? any SocketOptionProvider else {
                    channel.close(promise: nil)
                    continue
                }
                socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
            }
        }
        try await Task.sleep(for: pause)
        try await listen()
    }

    func stop() async {
        try? await server.withLockedValue { $0 }?.close()
        for channel in children.withLockedValue({ Array($0.values) }) { try? await channel.close() }
    }
}

/// One connection of the soak's backend.
private final class SoakBackendHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let v201: Bool
    let identity: String
    let ledger: NIOLockedValueBox<SoakBackendLedger>

    init(v201: Bool, identity: String, ledger: NIOLockedValueBox<SoakBackendLedger>) {
        self.v201 = v201
        self.identity = identity
        self.ledger = ledger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        var payload = frame.data
        if let mask = frame.maskKey { payload.webSocketUnmask(mask) }
        switch frame.opcode {
        case .text:
            guard case .call(let call)? = try? RPCFrame.parse(payload.readableBytesView) else { return }
            let result = answer(call)
            let reply = "[3,\(JSONValue.string(call.messageID).jsonText),\(result)]"
            context.writeAndFlush(
                wrapOutboundOut(
                    WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(string: reply))
                ),
                promise: nil
            )
        default:
            BackendHandler.answerControl(frame.opcode, payload, context: context)
        }
    }

    /// Counts what the call says of transactions and returns its answer's payload.
    private func answer(_ call: RPCFrame.Call) -> String {
        let p = call.payload
        return ledger.withLockedValue { ledger in
            ledger.calls += 1
            switch call.action {
            case "StartTransaction":
                let tag = p["idTag"]?.stringValue ?? "?"
                ledger.started["\(identity)/\(tag)", default: 0] += 1
                ledger.nextTransaction += 1
                ledger.tokens["\(identity)/\(ledger.nextTransaction)"] = tag
                return #"{"idTagInfo":{"status":"Accepted"},"transactionId":\#(ledger.nextTransaction)}"#
            case "StopTransaction":
                let tag = ledger.tokens["\(identity)/\(p["transactionId"]?.intValue ?? -1)"] ?? "?"
                ledger.ended["\(identity)/\(tag)", default: 0] += 1
                return #"{"idTagInfo":{"status":"Accepted"}}"#
            case "TransactionEvent":
                let id = p["transactionInfo"]?["transactionId"]?.stringValue ?? "?"
                switch p["eventType"]?.stringValue {
                case "Started":
                    let tag = p["idToken"]?["idToken"]?.stringValue ?? "?"
                    ledger.started["\(identity)/\(tag)", default: 0] += 1
                    ledger.tokens["\(identity)/\(id)"] = tag
                    return #"{"idTokenInfo":{"status":"Accepted"}}"#
                case "Ended":
                    let tag = ledger.tokens["\(identity)/\(id)"] ?? "?"
                    ledger.ended["\(identity)/\(tag)", default: 0] += 1
                    return "{}"
                default:
                    return "{}"
                }
            default:
                return BackendHandler.answer(call.action, v201: v201, transaction: 0)
            }
        }
    }
}
