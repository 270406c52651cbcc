import Foundation
import OCPP

/// Where the relay dials for each charger.
///
/// Either a template with `{id}` where the charger's identity goes, percent-encoded
/// (`ws://host/steve/websocket/CentralSystemService/{id}`, `wss://host/ws/ocpp/{id}/`, trailing slash kept),
/// or a plain `ws://host[:port][/path]`, which means `<url>/{id}`.
public struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case ws, wss }

    /// Where a charger's identity goes in a template.
    public static let placeholder = "{id}"

    public var scheme: Scheme
    public var host: String
    public var port: Int
    /// The path before the identity, without a trailing slash (`""` or `/ocpp`); for a template, the template
    /// path as written.
    public var basePath: String
    /// Whether ``basePath`` holds `{id}` placeholders.
    public var isTemplate: Bool

    /// A URL that is not a ws:// or wss:// URL the relay can dial; the message says why.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public let message: String
        public var description: String { message }

        init(_ message: String) {
            self.message = message
        }
    }

    /// Parses `ws://host:port/path`. Credentials in the URL are refused: they would end up in logs.
    public init(_ text: String) throws(Invalid) {
        guard let schemeEnd = text.range(of: "://") else {
            throw Invalid("upstream URL '\(text)' has no scheme (expected ws://host:port/path)")
        }
        guard let scheme = Scheme(rawValue: text[..<schemeEnd.lowerBound].lowercased()) else {
            throw Invalid("upstream URL '\(text)': only ws:// and wss:// are supported")
        }
        let rest = text[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if authority.contains("@") {
            throw Invalid(
                "upstream URL must not carry credentials; the charger's Authorization header is forwarded"
            )
        }
        if path.contains("?") || path.contains("#") {
            throw Invalid("upstream URL '\(text)' must not have a query or fragment")
        }
        let isTemplate = path.contains(Self.placeholder)
        let withoutPlaceholders = path.replacingOccurrences(of: Self.placeholder, with: "")
        if withoutPlaceholders.contains("{") || withoutPlaceholders.contains("}") {
            throw Invalid(
                "upstream URL '\(text)': the only placeholder is {id} (the charger's identity, percent-encoded)"
            )
        }
        if !isTemplate {
            while path.hasSuffix("/") { path.removeLast() }
        }
        let host: Substring
        let portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw Invalid("upstream URL '\(text)' has a broken IPv6 address")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
            portText = nil
        }
        guard !host.isEmpty else { throw Invalid("upstream URL '\(text)' has no host") }
        var port = scheme == .ws ? 80 : 443
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw Invalid("upstream URL '\(text)' has an invalid port")
            }
            port = p
        }
        self.scheme = scheme
        self.host = String(host)
        self.port = port
        self.basePath = path
        self.isTemplate = isTemplate
    }

    /// The request path for one charger.
    public func path(for identity: ChargePointIdentity) -> String {
        isTemplate
            ? basePath.replacingOccurrences(of: Self.placeholder, with: identity.pathSegment)
            : basePath + "/" + identity.pathSegment
    }

    /// The Host header value.
    public var hostHeader: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let defaultPort = scheme == .ws ? 80 : 443
        return port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }

    /// The full URL for one charger.
    public func url(for identity: ChargePointIdentity) -> String {
        "\(scheme.rawValue)://\(hostHeader)\(path(for: identity))"
    }

    public var description: String { "\(scheme.rawValue)://\(hostHeader)\(basePath)" }
}
