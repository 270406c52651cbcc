import NIOCore
import NIOHTTP1
import NIOSSL
import OCPP
import OCPPTransport

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

/// Dials `<upstream>/<chargePointId>` with the charger's subprotocols and Authorization header, on the charger's
/// event loop (both legs of a session share it), through the ``WebSocketDialler``.
struct UpstreamConnector {
    let maxFrameBytes: Int
    let timeout: TimeAmount

    /// Headers of an upstream refusal worth passing on to the charger.
    static let forwardedRefusalHeaders = ["WWW-Authenticate", "Retry-After", "Location"]

    /// - Parameter tls: the context for a wss:// upstream.
    func connect(
        to upstream: UpstreamURL,
        tls: NIOSSLContext,
        identity: ChargePointIdentity,
        offeredSubprotocols: [String],
        authorization: String?,
        deflate: DeflatePolicy? = nil,
        leg: LegID = .upstream(0),
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<UpstreamOutcome> {
        var headers = HTTPHeaders()
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        var dial = WebSocketDial(
            upstream,
            path: upstream.path(for: identity),
            subprotocols: offeredSubprotocols,
            headers: headers,
            tls: tls,
            maxFrameSize: maxFrameBytes,
            timeout: timeout
        )
        dial.deflate = deflate
        let maxFrameBytes = self.maxFrameBytes
        return WebSocketDialler.dial(dial, on: eventLoop, receiveBuffers: RelayServer.receiveBuffers) {
            channel,
            accepted in
            NIOLoopBound(
                try LegHandler.install(
                    in: channel.pipeline.syncOperations,
                    leg: leg,
                    maxFrameBytes: maxFrameBytes,
                    deflate: accepted.deflate
                ),
                eventLoop: channel.eventLoop
            )
        }.map { outcome in
            switch outcome {
            case .accepted(let channel, let handler, let subprotocol):
                return .accepted(channel: channel, handler: handler.value, subprotocol: subprotocol)
            case .refused(let status, let all):
                var forwarded = HTTPHeaders()
                for name in Self.forwardedRefusalHeaders {
                    for value in all[name] { forwarded.add(name: name, value: value) }
                }
                return .refused(status: status, headers: forwarded)
            case .failed(let message):
                return .failed("upstream: \(message)")
            case .timedOut:
                return .timedOut
            }
        }
    }
}
