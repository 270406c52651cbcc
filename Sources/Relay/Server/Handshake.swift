import Foundation
import NIOCore
import NIOHTTP1
import OCPP
import OCPPTranslation
import OCPPTransport
import RelayConfig
import RelayRecording

/// One charger's upgrade in progress, shared by the upgrader's callbacks and the handler that answers a refusal
/// (NIO does not replay a refused request to the HTTP pipeline, so the decision has to be kept here): the
/// admission's decision (``ChargerAdmission``), what the recordings keep of the request, and the upstream leg
/// between upstream's acceptance and the session taking it.
///
/// Confined to the charger channel's event loop.
package final class Handshake {
    var admission: ChargerAdmission
    /// What recordings keep of the request, once it arrived.
    var request: RecordedRequest?
    var upstream = UpstreamStage.none
    /// Drops the connection if the request does not arrive in time.
    var expiry: Scheduled<Void>?
    /// Whether it holds one of its loop's handshake slots (``HandshakeGates``), or waits for one (nil once its
    /// connection closed).
    var holdsSlot = false
    var slotWaiter: EventLoopPromise<Void>?
    /// permessage-deflate as the relay accepted the charger's offer (`compression.chargers`), if it did.
    var deflate: DeflateAgreement?

    /// A class: the handshake an idle connection keeps holds a pointer (nil once the session started), not room
    /// for these strings.
    final class RecordedRequest {
        let connection: UInt64
        /// The request target, query values redacted.
        let path: String
        let offeredSubprotocols: [String]
        let authorizationUser: String?
        let authorizationPresent: Bool
        let remote: String?

        init(
            connection: UInt64,
            path: String,
            offeredSubprotocols: [String],
            authorizationUser: String?,
            authorizationPresent: Bool,
            remote: String?
        ) {
            self.connection = connection
            self.path = path
            self.offeredSubprotocols = offeredSubprotocols
            self.authorizationUser = authorizationUser
            self.authorizationPresent = authorizationPresent
            self.remote = remote
        }
    }

    /// Where the upstream leg is (indirect: an attached connection keeps a pointer, not the accepted leg's size).
    indirect enum UpstreamStage {
        case none
        /// Upstream accepted; the session has not taken the leg yet.
        case accepted(Upstream)
        /// The session owns the leg.
        case attached
    }

    struct Upstream {
        var channel: any Channel
        var handler: LegHandler
        var subprotocol: String?
        /// The tables and state store the handshake chose (a reload meanwhile does not change them), and the
        /// translated charger's state, read while upstream was dialled.
        var translation: RelayServer.Translation?
        var state: ChargerState?
    }

    init(admission: ChargerAdmission) {
        self.admission = admission
    }

    /// The open record for this connection.
    func openRecord(subprotocol: String?, time: UInt64) -> ConnectionOpen {
        let translation = admission.plan?.translation
        return ConnectionOpen(
            connection: request?.connection ?? 0,
            time: time,
            charger: admission.identity?.value ?? "",
            path: request?.path ?? "",
            offeredSubprotocols: request?.offeredSubprotocols ?? [],
            subprotocol: subprotocol.map { translation?.charger.rawValue ?? $0 },
            upstreamSubprotocol: translation != nil ? subprotocol : nil,
            remoteAddress: request?.remote,
            upstreamURL: admission.plan.map { $0.upstream.url(for: $0.identity) },
            authorizationPresent: request?.authorizationPresent ?? false,
            authorizationUser: request?.authorizationUser
        )
    }

    /// The request target as recordings keep it: query values are replaced, because some chargers put a token
    /// there (`?token=…`); parameter names stay, so the shape of the request is still visible.
    package static func recordablePath(_ uri: String) -> String {
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
    package static func subprotocols(in headers: HTTPHeaders) -> [String] {
        headers[canonicalForm: "Sec-WebSocket-Protocol"].map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
    }

    /// The user name of a Basic Authorization header; the password is never kept.
    static func basicUser(_ authorization: String?) -> String? {
        BasicCredentials.parse(authorization)?.user
    }
}
