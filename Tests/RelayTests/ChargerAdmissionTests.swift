import NIOHTTP1
import OCPP
import OCPPTransport
import Testing

@testable import Relay
@testable import RelayConfig

/// The admission of a charger's upgrade, decision by decision, without a channel.
@Suite("Charger admission")
struct ChargerAdmissionTests {
    static func configuration(
        version: OCPPVersion? = nil,
        allowed: [String]? = nil,
        passwords: Bool = false,
        routes: [Route] = []
    ) throws -> RelayConfiguration {
        var configuration = RelayConfiguration(
            upstream: try UpstreamURL("ws://csms.example/ocpp"),
            upstreamVersion: version
        )
        configuration.access = ChargerAccess(
            allowed: try allowed.map { try ChargerMatcher($0, what: "allow-list") },
            passwords: passwords ? ["CP-1": PasswordHash.make(password: "s3cret", rounds: 1000)] : nil
        )
        configuration.routes = routes
        return configuration
    }

    static func request(
        _ uri: String = "/ocpp/CP-1",
        offering: [String] = ["ocpp1.6"],
        authorization: String? = nil,
        certificate: ChargerAdmission.CertificateIdentity = .notChecked
    ) -> ChargerAdmission.Request {
        ChargerAdmission.Request(
            uri: uri,
            offeredSubprotocols: offering,
            authorization: authorization,
            certificate: certificate
        )
    }

    /// The status and message of a refusal action, or nil.
    static func refused(_ action: ChargerAdmission.Action) -> (UInt, String)? {
        guard case .refuse(let refusal, _) = action else { return nil }
        return (refusal.status.code, refusal.message)
    }

    struct RefusalCase: CustomTestStringConvertible, Sendable {
        var name: String
        var request: ChargerAdmission.Request
        var version: OCPPVersion? = nil
        var allowed: [String]? = nil
        var canTranslate = true
        var status: UInt
        var message: String
        var testDescription: String { name }
    }

    static let refusals: [RefusalCase] = [
        .init(name: "no identity", request: request("/ocpp/"), status: 404, message: "empty"),
        .init(name: "a hostile identity", request: request("/ocpp/CP%00X"), status: 400, message: ""),
        .init(
            name: "a certificate for another charger",
            request: request(certificate: .commonName("CP-2")),
            status: 403,
            message: "the client certificate names 'CP-2', not this charger"
        ),
        .init(
            name: "no certificate name",
            request: request(certificate: .commonName(nil)),
            status: 403,
            message: "the client certificate names no common name, not this charger"
        ),
        .init(
            name: "not on the allow-list",
            request: request(),
            allowed: ["CP-9"],
            status: 404,
            message: "charger is not on the allow-list"
        ),
        .init(
            name: "a 2.0.1 upstream and a charger offering nothing it can serve",
            request: request(offering: ["ocpp3.0", "mqtt"]),
            version: .v201,
            status: 400,
            message: "this relay speaks ocpp2.0.1 upstream and cannot serve a charger offering ocpp3.0, mqtt"
        ),
        .init(
            name: "a 1.6 charger on a 2.0.1 upstream without tables",
            request: request(offering: ["ocpp1.6"]),
            version: .v201,
            canTranslate: false,
            status: 400,
            message: "this relay speaks ocpp2.0.1 upstream and cannot serve a charger offering ocpp1.6"
        ),
        .init(
            name: "a 1.6 upstream and a charger offering only 2.1, without tables",
            request: request(offering: ["ocpp2.1"]),
            version: .v16,
            canTranslate: false,
            status: 400,
            message: "this relay speaks ocpp1.6 upstream and cannot serve a charger offering ocpp2.1"
        ),
    ]

    @Test("refused before dialling", arguments: refusals)
    func refusedEarly(_ c: RefusalCase) throws {
        var admission = ChargerAdmission(
            policy: .init(
                configuration: try Self.configuration(version: c.version, allowed: c.allowed),
                canTranslate: c.canTranslate
            )
        )
        let action = admission.requestReceived(c.request)
        let (status, message) = try #require(Self.refused(action), "\(action)")
        #expect(status == c.status)
        #expect(message.contains(c.message), "\(message)")
        #expect(admission.refusal != nil)
        #expect(admission.plan == nil)
    }

    @Test("a charger offering the upstream's version is dialled with it alone; a 1.6 charger is translated")
    func plans() throws {
        var pinned = ChargerAdmission(
            policy: .init(configuration: try Self.configuration(version: .v201), canTranslate: true)
        )
        guard case .dial(let plan) = pinned.requestReceived(Self.request(offering: ["ocpp1.6", "ocpp2.0.1"])) else {
            Issue.record("not dialled")
            return
        }
        #expect(plan.offeredSubprotocols == ["ocpp2.0.1"] && plan.translation == nil)
        var translated = ChargerAdmission(
            policy: .init(configuration: try Self.configuration(version: .v201), canTranslate: true)
        )
        guard case .dial(let plan16) = translated.requestReceived(Self.request(offering: ["ocpp1.6"])) else {
            Issue.record("not dialled")
            return
        }
        #expect(
            plan16.offeredSubprotocols == ["ocpp2.0.1"]
                && plan16.translation == TranslationDirection(charger: .v16, upstream: .v201)
        )
        // Upstream accepts 2.0.1: the charger gets its 1.6.
        #expect(
            translated.upstreamAnswered(.accepted(subprotocol: "ocpp2.0.1"))
                == .complete(["Sec-WebSocket-Protocol": "ocpp1.6"])
        )
        #expect(translated.plan?.translation == TranslationDirection(charger: .v16, upstream: .v201))
        // Upstream accepting something else is a 502, and the upstream connection goes.
        var wrong = ChargerAdmission(
            policy: .init(configuration: try Self.configuration(version: .v201), canTranslate: true)
        )
        _ = wrong.requestReceived(Self.request(offering: ["ocpp1.6"]))
        guard case .refuse(let refusal, closeUpstream: true) = wrong.upstreamAnswered(.accepted(subprotocol: nil))
        else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.status == .badGateway && refusal.message == "upstream did not accept ocpp2.0.1")
    }

    @Test("a charger is translated from the version it offers nearest its upstream's")
    func nearestVersion() {
        #expect(
            TranslationDirection(offered: ["ocpp2.1"], upstream: .v201)
                == TranslationDirection(charger: .v21, upstream: .v201)
        )
        #expect(
            TranslationDirection(offered: ["ocpp2.1", "ocpp2.0.1"], upstream: .v16)
                == TranslationDirection(charger: .v201, upstream: .v16)
        )
        #expect(
            TranslationDirection(offered: ["ocpp1.6", "ocpp2.0.1"], upstream: .v21)
                == TranslationDirection(charger: .v201, upstream: .v21)
        )
        #expect(TranslationDirection(offered: ["ocpp3.0", "mqtt"], upstream: .v21) == nil)
        #expect(TranslationDirection(offered: ["ocpp2.1"], upstream: .v21) == nil)
    }

    @Test("a 2.0.1-only charger on a 1.6 upstream is translated; one offering 1.6 as well passes through")
    func reversePlans() throws {
        var reverse = ChargerAdmission(
            policy: .init(configuration: try Self.configuration(version: .v16), canTranslate: true)
        )
        guard case .dial(let plan) = reverse.requestReceived(Self.request(offering: ["ocpp2.0.1"])) else {
            Issue.record("not dialled")
            return
        }
        #expect(
            plan.offeredSubprotocols == ["ocpp1.6"]
                && plan.translation == TranslationDirection(charger: .v201, upstream: .v16)
        )
        #expect(
            reverse.upstreamAnswered(.accepted(subprotocol: "ocpp1.6"))
                == .complete(["Sec-WebSocket-Protocol": "ocpp2.0.1"])
        )
        var both = ChargerAdmission(
            policy: .init(configuration: try Self.configuration(version: .v16), canTranslate: true)
        )
        guard case .dial(let plain) = both.requestReceived(Self.request(offering: ["ocpp2.0.1", "ocpp1.6"])) else {
            Issue.record("not dialled")
            return
        }
        #expect(plain.offeredSubprotocols == ["ocpp1.6"] && plain.translation == nil)
    }

    @Test("pass-through echoes upstream's subprotocol and forwards the charger's credentials; a route's replace them")
    func passThrough() throws {
        var admission = ChargerAdmission(policy: .init(configuration: try Self.configuration(), canTranslate: false))
        let basic = BasicCredentials.header(user: "CP-1", password: "x")
        guard case .dial(let plan) = admission.requestReceived(Self.request(authorization: basic)) else {
            Issue.record("not dialled")
            return
        }
        #expect(plan.authorization == basic && plan.offeredSubprotocols == ["ocpp1.6"])
        #expect(plan.upstream.url(for: plan.identity) == "ws://csms.example/ocpp/CP-1")
        #expect(
            admission.upstreamAnswered(.accepted(subprotocol: "ocpp1.6"))
                == .complete(["Sec-WebSocket-Protocol": "ocpp1.6"])
        )
        admission.sessionStarted()
        #expect(admission.plan == nil && admission.identity == nil, "nothing of the request is kept")

        let route = Route(
            name: "new",
            chargers: try ChargerMatcher(["glob:CP-*"]),
            upstream: try UpstreamURL("wss://new.example/ocpp"),
            upstreamVersion: nil,
            upstreamPassword: "route-secret"
        )
        var routed = ChargerAdmission(
            policy: .init(configuration: try Self.configuration(routes: [route]), canTranslate: false)
        )
        guard case .dial(let routedPlan) = routed.requestReceived(Self.request(authorization: basic)) else {
            Issue.record("not dialled")
            return
        }
        #expect(routedPlan.authorization == BasicCredentials.header(user: "CP-1", password: "route-secret"))
        #expect(routedPlan.upstream.url(for: routedPlan.identity) == "wss://new.example/ocpp/CP-1")
        #expect(routedPlan.routeReason == "route new (matched glob:CP-*)")
    }

    @Test("with passwords the check comes first, off the loop; a failed one is a 401 with a Basic challenge")
    func passwords() throws {
        let configuration = try Self.configuration(passwords: true)
        var admission = ChargerAdmission(policy: .init(configuration: configuration, canTranslate: false))
        let basic = BasicCredentials.header(user: "CP-1", password: "wrong")
        #expect(
            admission.requestReceived(Self.request(authorization: basic))
                == .authenticate(identity: "CP-1", authorization: basic)
        )
        #expect(admission.identity?.value == "CP-1")
        let action = admission.authenticated(configuration.access.authenticate("CP-1", authorization: basic))
        guard case .refuse(let refusal, _) = action else {
            Issue.record("not refused: \(action)")
            return
        }
        #expect(refusal.status == .unauthorized && refusal.message == "authentication failed: wrong password")
        #expect(refusal.headers.first(name: "WWW-Authenticate")?.hasPrefix("Basic realm=") == true)
        #expect(admission.identity?.value == "CP-1", "the recording names the refused charger")

        var good = ChargerAdmission(policy: .init(configuration: configuration, canTranslate: false))
        _ = good.requestReceived(Self.request(authorization: BasicCredentials.header(user: "CP-1", password: "s3cret")))
        guard case .dial = good.authenticated(.allowed) else {
            Issue.record("not dialled")
            return
        }
    }

    @Test(
        "upstream's answers: a refusal passes its status on, unreachable is 502, silence 504; each counted",
        arguments: [
            (ChargerAdmission.UpstreamAnswer.refused(status: .forbidden, headers: [:]), 403, true, nil),
            (.failed("connection refused"), 502, false, "unreachable"),
            (.timedOut, 504, false, "timeout"),
        ] as [(ChargerAdmission.UpstreamAnswer, UInt, Bool, String?)]
    )
    func upstreamAnswers(
        _ answer: ChargerAdmission.UpstreamAnswer,
        status: UInt,
        byUpstream: Bool,
        failure: String?
    )
        throws
    {
        var admission = ChargerAdmission(policy: .init(configuration: try Self.configuration(), canTranslate: false))
        _ = admission.requestReceived(Self.request())
        guard case .refuse(let refusal, closeUpstream: false) = admission.upstreamAnswered(answer) else {
            Issue.record("not refused")
            return
        }
        #expect(refusal.status.code == status)
        #expect(refusal.byUpstream == byUpstream && refusal.upstreamFailure == failure)
        #expect(admission.plan != nil, "the recording names the upstream that was dialled")
    }

    @Test("an answer after the admission ended keeps no upstream")
    func lateAnswer() throws {
        var admission = ChargerAdmission(
            policy: .init(configuration: try Self.configuration(allowed: ["CP-9"]), canTranslate: false)
        )
        _ = admission.requestReceived(Self.request())
        guard case .refuse(_, closeUpstream: true) = admission.upstreamAnswered(.accepted(subprotocol: nil)) else {
            Issue.record("an upstream accepted after a refusal was kept")
            return
        }
    }
}
