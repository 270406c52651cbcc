import Foundation
import NIOCore
import NIOHTTP1
import OCPP
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
        guard let authorization, authorization.lowercased().hasPrefix("basic ") else { return nil }
        let encoded = authorization.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let data = Base64.decode(encoded), let text = String(validating: data, as: UTF8.self),
            let colon = text.firstIndex(of: ":")
        else { return nil }
        return String(text[..<colon])
    }
}

/// Standard base64 decoding, for Basic credentials.
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        var lookup = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            lookup[Int(c)] = UInt8(i)
        }
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") { break }
            let v = lookup[Int(c)]
            guard v != 0xFF else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return output
    }
}
