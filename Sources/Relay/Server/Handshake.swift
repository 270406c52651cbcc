import Foundation
import NIOCore
import NIOHTTP1
import OCPP
import OCPPTranslation
import RelayRecording

/// What the relay decided about one charger's upgrade request, shared by the upgrader's callbacks and
/// the handler that answers a refusal (NIO does not replay a refused request to the HTTP pipeline, so the
/// decision has to be kept here).
///
/// Confined to the charger channel's event loop.
final class Handshake {
    struct Refusal {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var message: String
    }

    struct Upstream {
        var channel: any Channel
        var handler: LegHandler
        var subprotocol: String?
    }

    var connection: UInt64 = 0
    var identity: ChargePointIdentity?
    var path = ""
    /// The charger's whole upgrade request has arrived (the handshake timeout no longer applies).
    var requestReceived = false
    var offeredSubprotocols: [String] = []
    var upstreamURL: String?
    var authorizationUser: String?
    var authorizationPresent = false
    var refusal: Refusal?
    var upstream: Upstream?
    /// Set once the session owns the upstream leg.
    var attached = false
    /// The charger speaks 1.6 and upstream 2.0.1: frames are translated.
    var translated = false
    /// The tables and state store the handshake chose (a reload meanwhile does not change them).
    var translation: RelayServer.Translation?
    /// The translated charger's state, read while upstream was dialled.
    var translationState: ChargerState?
    /// Drops the connection if the request does not arrive in time.
    var expiry: Scheduled<Void>?

    /// Lets go of what only the handshake needed, once the session owns the connection (the handshake lives as
    /// long as the connection: an idle charger should not keep its request's strings).
    func release() {
        upstream = nil
        path = ""
        offeredSubprotocols = []
        upstreamURL = nil
        authorizationUser = nil
        refusal = nil
        translation = nil
        translationState = nil
    }

    /// The open record for this connection.
    func openRecord(remoteAddress: String?, subprotocol: String?) -> ConnectionOpen {
        ConnectionOpen(
            connection: connection,
            time: Timestamp.now(),
            charger: identity?.value ?? "",
            path: path,
            offeredSubprotocols: offeredSubprotocols,
            subprotocol: translated && subprotocol != nil ? OCPPVersion.v16.rawValue : subprotocol,
            upstreamSubprotocol: translated ? subprotocol : nil,
            remoteAddress: remoteAddress,
            upstreamURL: upstreamURL,
            authorizationPresent: authorizationPresent,
            authorizationUser: authorizationUser
        )
    }

    /// The request target as recordings keep it: query values are replaced, because some chargers put a token
    /// there (`?token=…`); parameter names stay, so the shape of the request is still visible.
    static func recordablePath(_ uri: String) -> String {
        guard let question = uri.firstIndex(of: "?") else { return uri }
        let query = uri[uri.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map {
            parameter in
            guard let equals = parameter.firstIndex(of: "=") else { return String(parameter) }
            return parameter[..<equals] + "=redacted"
        }
        return uri[..<question] + "?" + query.joined(separator: "&")
    }

    /// `address:port` of a peer, as recordings and logs show it.
    static func describe(_ address: SocketAddress?) -> String? {
        address.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" }
    }

    /// Splits a `Sec-WebSocket-Protocol` header list into tokens, in the charger's order.
    static func subprotocols(in headers: HTTPHeaders) -> [String] {
        headers[canonicalForm: "Sec-WebSocket-Protocol"].map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
    }

    /// The user name of a Basic Authorization header; the password is never kept.
    static func basicUser(_ authorization: String?) -> String? {
        BasicCredentials.parse(authorization)?.user
    }
}
