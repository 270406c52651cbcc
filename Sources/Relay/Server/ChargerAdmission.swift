import NIOHTTP1
import OCPP
import OCPPTranslation
import OCPPTransport
import RelayConfig

/// The decision about one charger's WebSocket upgrade: a pure state machine. The request goes in (with the
/// TLS identity), then the password check's result and upstream's answer; out come the steps to take
/// (refuse with a status and reason, check the password off the loop, dial a plan, complete the upgrade with
/// these headers). The channel initializer only carries them out (``Handshake``).
struct ChargerAdmission: Sendable {
    /// What the admission decides with: one snapshot of the configuration per connection (a reload in the
    /// middle of a handshake does not mix two).
    struct Policy: Sendable {
        var configuration: RelayConfiguration
        /// Whether the tables for translating 1.6 chargers to a 2.0.1 upstream are loaded.
        var canTranslate: Bool
    }

    /// The charger's upgrade request, as far as the decision needs it.
    struct Request: Sendable, Equatable {
        var uri: String
        var offeredSubprotocols: [String]
        var authorization: String?
        /// The common name of the client's certificate, when the listener checks it (security profile 3).
        var certificate: CertificateIdentity = .notChecked
    }

    enum CertificateIdentity: Sendable, Equatable {
        case notChecked
        /// The certificate's common name (nil: no certificate, or none in it).
        case commonName(String?)
    }

    /// Where and how upstream is dialled for an admitted charger.
    struct Plan: Sendable, Equatable {
        var identity: ChargePointIdentity
        var upstream: UpstreamURL
        /// The route that chose the upstream (for the log).
        var routeReason: String
        var offeredSubprotocols: [String]
        /// The Authorization header upstream gets: the route's credentials, or the charger's when forwarded.
        var authorization: String?
        /// Set when the charger and the upstream speak different versions: frames are translated.
        var translation: TranslationDirection?
        /// The backends beside the upstream (the route's, else the top-level ones).
        var mirrors: [MirrorSettings]
        /// What the translation may assume of the upstream, and how it answers.
        var translationOptions = TranslationOptions()
        /// How long the charger is kept while a lost upstream is redialled (0: no grace).
        var reconnectGrace: Duration = .zero
        /// Whether the charger's invalid calls are refused by the relay (pass-through; a translation refuses them
        /// anyway).
        var rejectInvalidCalls = false
    }

    /// A refusal: the status and headers the charger gets, why (for the body, the log and the recording), who
    /// refused, and the upstream failure it counts as.
    struct Refusal: Sendable, Equatable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders = [:]
        var message: String
        var byUpstream = false
        var upstreamFailure: String?
    }

    /// How dialling upstream ended (the channel stays with the caller).
    enum UpstreamAnswer: Sendable, Equatable {
        case accepted(subprotocol: String?)
        case refused(status: HTTPResponseStatus, headers: HTTPHeaders)
        case failed(String)
        case timedOut
    }

    /// The states, each holding what the next decision needs and nothing more (a connected charger's admission
    /// keeps nothing). Indirect: the payloads live on the heap while they are needed, so that the admission a
    /// connection keeps is a pointer, not the size of its largest state.
    indirect enum State: Sendable {
        case awaitingRequest(Policy)
        /// The password is being checked (PBKDF2, off the loop).
        case authenticating(ChargePointIdentity, Request, Policy)
        /// Upstream is being dialled, bounded by the upstream timeout.
        case dialling(Plan, upstreamTimeout: Duration)
        /// Upstream accepted: the charger's upgrade completes and its session starts.
        case admitted(Plan, upstreamSubprotocol: String?)
        /// Refused; with the identity and the plan as far as they were decided (the recording names them).
        case refused(Refusal, identity: ChargePointIdentity?, plan: Plan?)
        /// The session owns the connection; nothing of the request is kept.
        case attached
    }

    enum Action: Sendable, Equatable {
        /// Answer the charger with this refusal (and record it); `closeUpstream`: an accepted upstream goes too.
        case refuse(Refusal, closeUpstream: Bool)
        /// Check the charger's password off the event loop, then call ``authenticated(_:)``.
        case authenticate(identity: String, authorization: String?)
        /// Dial upstream (and read a translated charger's state), then call ``upstreamAnswered(_:)``.
        case dial(Plan)
        /// Complete the charger's upgrade with these response headers.
        case complete(HTTPHeaders)
    }

    private(set) var state: State

    init(policy: Policy) {
        self.state = .awaitingRequest(policy)
    }

    /// An admission refused before its request is read (over the connection limit).
    init(refused refusal: Refusal) {
        self.state = .refused(refusal, identity: nil, plan: nil)
    }

    /// The refusal decided, if any.
    var refusal: Refusal? {
        if case .refused(let refusal, _, _) = state { return refusal }
        return nil
    }

    /// The charger's identity, once the request named a valid one.
    var identity: ChargePointIdentity? {
        switch state {
        case .authenticating(let identity, _, _), .refused(_, .some(let identity), _): identity
        case .dialling(let plan, _), .admitted(let plan, _): plan.identity
        case .awaitingRequest, .refused, .attached: nil
        }
    }

    /// The plan, once one was made.
    var plan: Plan? {
        switch state {
        case .dialling(let plan, _), .admitted(let plan, _), .refused(_, _, .some(let plan)): plan
        case .awaitingRequest, .authenticating, .refused, .attached: nil
        }
    }

    // MARK: Events

    /// The whole upgrade request has arrived.
    mutating func requestReceived(_ request: Request) -> Action {
        guard case .awaitingRequest(let policy) = state else {
            return refuse(.init(status: .badRequest, message: "request repeated"))
        }
        let configuration = policy.configuration
        let identity: ChargePointIdentity
        do {
            identity = try ChargePointIdentity.parse(requestTarget: request.uri).identity
        } catch {
            return refuse(.init(status: error.code == .empty ? .notFound : .badRequest, message: error.message))
        }
        if case .commonName(let name) = request.certificate, name != identity.value {
            return refuse(
                .init(
                    status: .forbidden,
                    message:
                        "the client certificate names \(name.map { "'\($0)'" } ?? "no common name"), not this charger"
                ),
                identity: identity
            )
        }
        guard configuration.access.isAllowed(identity.value) else {
            return refuse(.init(status: .notFound, message: "charger is not on the allow-list"), identity: identity)
        }
        guard configuration.access.passwords == nil else {
            state = .authenticating(identity, request, policy)
            return .authenticate(identity: identity.value, authorization: request.authorization)
        }
        return plan(identity, request, policy)
    }

    /// The password check's result.
    mutating func authenticated(_ decision: ChargerAccess.Decision) -> Action {
        guard case .authenticating(let identity, let request, let policy) = state else {
            return refuse(.init(status: .badRequest, message: "unexpected authentication"))
        }
        if case .unauthorized(let why) = decision {
            return refuse(
                .init(
                    status: .unauthorized,
                    headers: ["WWW-Authenticate": #"Basic realm="ocpp-relay", charset="UTF-8""#],
                    message: "authentication failed: \(why)"
                )
            )
        }
        return plan(identity, request, policy)
    }

    /// Upstream's answer to the dial.
    mutating func upstreamAnswered(_ answer: UpstreamAnswer) -> Action {
        guard case .dialling(let plan, let upstreamTimeout) = state else {
            // The charger went meanwhile (or was refused): an accepted upstream is not kept.
            return .refuse(refusal ?? .init(status: .badRequest, message: "no dial in progress"), closeUpstream: true)
        }
        switch answer {
        case .accepted(let subprotocol):
            var headers = HTTPHeaders()
            if let direction = plan.translation {
                guard subprotocol == direction.upstream.rawValue else {
                    return refuse(
                        .init(status: .badGateway, message: "upstream did not accept \(direction.upstream.rawValue)"),
                        closeUpstream: true
                    )
                }
                headers.add(name: "Sec-WebSocket-Protocol", value: direction.charger.rawValue)
            } else if let subprotocol {
                headers.add(name: "Sec-WebSocket-Protocol", value: subprotocol)
            }
            state = .admitted(plan, upstreamSubprotocol: subprotocol)
            return .complete(headers)
        case .refused(let status, let headers):
            return refuse(
                .init(
                    status: status,
                    headers: headers,
                    message: "upstream refused the connection: \(status.code) \(status.reasonPhrase)",
                    byUpstream: true
                )
            )
        case .failed(let message):
            return refuse(.init(status: .badGateway, message: message, upstreamFailure: "unreachable"))
        case .timedOut:
            let timeout = upstreamTimeout.secondsText
            return refuse(
                .init(
                    status: .gatewayTimeout,
                    message: "upstream did not answer within \(timeout) s",
                    upstreamFailure: "timeout"
                )
            )
        }
    }

    /// The charger's session started: what the admission kept goes.
    mutating func sessionStarted() {
        state = .attached
    }

    // MARK: Decisions

    private mutating func refuse(
        _ refusal: Refusal,
        closeUpstream: Bool = false,
        identity: ChargePointIdentity? = nil
    ) -> Action {
        state = .refused(refusal, identity: identity ?? self.identity, plan: plan)
        return .refuse(refusal, closeUpstream: closeUpstream)
    }

    /// Chooses the route and the subprotocols offered upstream.
    private mutating func plan(_ identity: ChargePointIdentity, _ request: Request, _ policy: Policy) -> Action {
        let configuration = policy.configuration
        let route = configuration.route(for: identity.value)
        var offered = request.offeredSubprotocols
        var translation: TranslationDirection?
        if let pinned = route.upstreamVersion {
            if offered.contains(pinned.rawValue) {
                offered = [pinned.rawValue]
            } else if policy.canTranslate, let direction = TranslationDirection(offered: offered, upstream: pinned) {
                // A charger of the other version: the relay translates.
                translation = direction
                offered = [pinned.rawValue]
            } else {
                let what = offered.isEmpty ? "no subprotocol" : offered.joined(separator: ", ")
                return refuse(
                    .init(
                        status: .badRequest,
                        message:
                            "this relay speaks \(pinned.rawValue) upstream and cannot serve a charger offering \(what)"
                    ),
                    identity: identity
                )
            }
        }
        let authorization =
            route.upstreamPassword.map { BasicCredentials.header(user: identity.value, password: $0) }
            ?? (configuration.access.forwardAuthorization ? request.authorization : nil)
        let plan = Plan(
            identity: identity,
            upstream: route.upstream,
            routeReason: route.reason,
            offeredSubprotocols: offered,
            authorization: authorization,
            translation: translation,
            mirrors: route.mirrors,
            translationOptions: TranslationOptions(
                upstreamSecurity: route.upstreamExtensions.contains(.security),
                upstreamPlugAndCharge: route.upstreamExtensions.contains(.pnc),
                answerStartEarly: configuration.earlyStartAnswer
            ),
            reconnectGrace: route.reconnectGrace,
            rejectInvalidCalls: route.rejectInvalidCalls
        )
        state = .dialling(plan, upstreamTimeout: configuration.upstreamTimeout)
        return .dial(plan)
    }
}

/// Which way the relay translates a charger: the version it speaks and its upstream's.
struct TranslationDirection: Sendable, Equatable {
    let charger: OCPPVersion
    let upstream: OCPPVersion

    init(charger: OCPPVersion, upstream: OCPPVersion) {
        self.charger = charger
        self.upstream = upstream
    }

    /// The translation a charger offering `offered` needs for an upstream pinned to `upstream`: from the offered
    /// version nearest the upstream's (a 2.1 charger that also offers 2.0.1 is translated from 2.0.1 for a 1.6
    /// backend: the shorter path loses less). `nil` when the charger offers no version the relay speaks.
    init?(offered: [String], upstream: OCPPVersion) {
        let versions = OCPPVersion.allCases
        guard let target = versions.firstIndex(of: upstream) else { return nil }
        let candidates = offered.compactMap(OCPPVersion.init(rawValue:)).filter { $0 != upstream }
        guard
            let nearest = candidates.min(by: {
                abs(versions.firstIndex(of: $0)! - target) < abs(versions.firstIndex(of: $1)! - target)
            })
        else { return nil }
        self.charger = nearest
        self.upstream = upstream
    }
}
