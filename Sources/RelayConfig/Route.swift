import Foundation
import OCPP
import OCPPTransport

/// Which chargers a route applies to: exact ids, `glob:` patterns (`*`, `?`) or `regex:` patterns.
public struct ChargerMatcher: Sendable, CustomStringConvertible {
    private enum Pattern: Sendable {
        case exact(String)
        case glob(String)
        case regex(String, SendableRegex)
    }

    private struct SendableRegex: @unchecked Sendable {
        let regex: Regex<AnyRegexOutput>
    }

    private let patterns: [Pattern]
    public let description: String

    public init(_ texts: [String], what: String = "route") throws(ConfigurationError) {
        var patterns: [Pattern] = []
        for text in texts {
            if text.hasPrefix("glob:") {
                patterns.append(.glob(String(text.dropFirst(5))))
            } else if text.hasPrefix("regex:") {
                let source = String(text.dropFirst(6))
                guard let regex = try? Regex(source) else {
                    throw ConfigurationError("\(what) pattern '\(text)' is not a valid regular expression")
                }
                patterns.append(.regex(source, SendableRegex(regex: regex)))
            } else {
                patterns.append(.exact(text))
            }
        }
        guard !patterns.isEmpty else { throw ConfigurationError("\(what) needs at least one charger id or pattern") }
        self.patterns = patterns
        self.description = texts.joined(separator: ", ")
    }

    /// The pattern that matches `identity`, if any.
    public func match(_ identity: String) -> String? {
        for pattern in patterns {
            switch pattern {
            case .exact(let id) where id == identity: return id
            case .glob(let glob) where Self.glob(glob, matches: identity): return "glob:\(glob)"
            case .regex(let source, let regex) where (try? regex.regex.wholeMatch(in: identity)) != nil:
                return "regex:\(source)"
            default: continue
            }
        }
        return nil
    }

    /// `*` any run of characters, `?` one character, everything else literal.
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern)
        let t = Array(text)
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                pi += 1
                ti += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// Where a group of chargers goes: its upstream and the OCPP version spoken there.
public struct Route: Sendable {
    public var name: String
    public var chargers: ChargerMatcher
    public var upstream: UpstreamURL
    /// `nil`: pass through whatever the charger speaks.
    public var upstreamVersion: OCPPVersion?
    /// The password the relay presents upstream as `<charger id>:<password>`; `nil`: the charger's own header
    /// (when forwarded).
    public var upstreamPassword: String?
    /// The backends beside the upstream (replacing the top-level list).
    public var mirrors: [MirrorSettings] = []
    /// What the upstream implements beyond its OCPP version (replacing the top-level set).
    public var upstreamExtensions: Set<UpstreamExtension> = []
    /// How long the route's chargers are kept while a lost upstream is redialled (replacing the top-level one).
    public var reconnectGrace: Duration = .zero
    /// Whether invalid charger calls are refused by the relay (replacing `validation.reject_invalid_calls`).
    public var rejectInvalidCalls = false
}

/// What a 1.6 upstream implements beyond OCPP 1.6, for the translation of 2.0.1 chargers
/// (`upstream_extensions`).
public enum UpstreamExtension: String, Sendable, Hashable, CaseIterable {
    /// The OCA's 1.6 Security Whitepaper (security events, certificates, signed firmware, security logs).
    case security
    /// The OCA's Plug & Charge over 1.6: ISO 15118 messages in DataTransfer.
    case pnc
}

/// The route a charger takes, and why.
public struct RouteChoice: Sendable {
    public var upstream: UpstreamURL
    public var upstreamVersion: OCPPVersion?
    public var upstreamPassword: String?
    public var mirrors: [MirrorSettings]
    public var upstreamExtensions: Set<UpstreamExtension>
    /// `timeouts.reconnect_grace`, or the route's.
    public var reconnectGrace: Duration
    /// `validation.reject_invalid_calls`, or the route's.
    public var rejectInvalidCalls: Bool
    /// A readable reason: which route and pattern matched, or the default.
    public var reason: String
}

extension RelayConfiguration {
    /// The first route that matches the charger, else the top-level upstream and version.
    public func route(for identity: String) -> RouteChoice {
        for route in routes {
            if let pattern = route.chargers.match(identity) {
                return RouteChoice(
                    upstream: route.upstream,
                    upstreamVersion: route.upstreamVersion,
                    upstreamPassword: route.upstreamPassword,
                    mirrors: route.mirrors,
                    upstreamExtensions: route.upstreamExtensions,
                    reconnectGrace: route.reconnectGrace,
                    rejectInvalidCalls: route.rejectInvalidCalls,
                    reason: "route \(route.name) (matched \(pattern))"
                )
            }
        }
        return RouteChoice(
            upstream: upstream,
            upstreamVersion: upstreamVersion,
            upstreamPassword: upstreamPassword,
            mirrors: mirrors,
            upstreamExtensions: upstreamExtensions,
            reconnectGrace: reconnectGrace,
            rejectInvalidCalls: rejectInvalidCalls,
            reason: "no route matched: default upstream"
        )
    }

    /// Whether any charger may be translated (an upstream version is pinned), or has mirrors (then the mapping tables and the state store are
    /// needed: mirrors keep their transaction ids there).
    public var translates: Bool {
        upstreamVersion != nil || routes.contains { $0.upstreamVersion != nil }
            || !mirrors.isEmpty || routes.contains { !$0.mirrors.isEmpty }
    }
}
