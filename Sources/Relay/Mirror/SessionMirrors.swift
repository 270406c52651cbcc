import Foundation
import NIOCore
import NIOSSL
import OCPP
import OCPPTranslation
import RelayConfig
import RelayObservability
import RelayRecording

/// What a session needs to reach its mirrors: their settings, how to dial, the translation tables and state for
/// mirrors of another version, and the counters. Confined to the session's event loop.
final class SessionMirrors {
    /// One mirror's side of the session.
    struct Mirror {
        let settings: MirrorSettings
        /// The identity it sees, and the subprotocol it is offered.
        let identity: ChargePointIdentity
        let subprotocol: String
        /// Set for a mirror of the other version than the charger: its own translation, with its own state (made
        /// once the state is read).
        var translator: (any VersionTranslation)?
        let makeTranslator: (@Sendable (ChargerState) -> any VersionTranslation)?
        var handler: LegHandler?
        var redial: Scheduled<Void>?
        /// Counters by action and outcome, made when first counted.
        var counters = MirrorCounters()
    }

    var set: MirrorSet
    var mirrors: [Mirror]
    let connector: UpstreamConnector
    let tls: NIOSSLContext
    /// Where each mirror's state (transaction id map, translation state) is read and written.
    let states: TranslationStates
    let writer: StateWriter
    /// Set when the session ends: nothing is dialled again.
    var stopped = false
    /// While the session has ended and a connected mirror is still to get or answer something: what runs once all
    /// are done, and the bound (the mirrors' call timeout).
    var draining: (done: () -> Void, timer: Scheduled<Void>)?
    /// Diagnostics already logged (each once per session).
    var logged: Set<String> = []

    init(
        mirrors: [Mirror],
        callTimeout: Duration,
        chargerSpeaks16: Bool,
        connector: UpstreamConnector,
        tls: NIOSSLContext,
        states: TranslationStates,
        writer: StateWriter
    ) {
        self.mirrors = mirrors
        self.set = MirrorSet(
            links: mirrors.enumerated().map { index, mirror in
                MirrorLink(
                    settings: mirror.settings,
                    index: index + 1,
                    callTimeout: callTimeout,
                    mapsTransactions: chargerSpeaks16
                )
            }
        )
        self.connector = connector
        self.tls = tls
        self.states = states
        self.writer = writer
    }

    /// The key a mirror's state is stored under: the charger's identity and the mirror's name, joined by a
    /// control character no identity may hold.
    func stateKey(_ index: Int, charger: ChargePointIdentity) -> String {
        "\(charger.value)\u{1F}mirror\u{1F}\(mirrors[index].settings.name)"
    }

    /// The Authorization header towards a mirror.
    func authorization(_ index: Int) -> String? {
        let mirror = mirrors[index]
        guard let password = mirror.settings.password else { return nil }
        return "Basic " + Data("\(mirror.identity.value):\(password)".utf8).base64EncodedString()
    }

    /// The mirrors a charger gets, or why one cannot be served (a 2.0.1 charger on a 1.6 mirror).
    static func plan(
        _ settings: [MirrorSettings],
        identity: ChargePointIdentity,
        chargerVersion: OCPPVersion?,
        primaryVersion: OCPPVersion?,
        tables: MappingTables,
        uuids: UUIDSource,
        clock: RelayClock,
        callTimeout: Duration
    ) -> (mirrors: [Mirror], problems: [String]) {
        var mirrors: [Mirror] = []
        var problems: [String] = []
        for mirror in settings {
            let version = mirror.upstreamVersion ?? primaryVersion ?? chargerVersion
            guard let chargerVersion, let version else {
                problems.append("mirror \(mirror.name): the charger negotiated no OCPP version; not mirrored")
                continue
            }
            var makeTranslator: (@Sendable (ChargerState) -> any VersionTranslation)?
            if version != chargerVersion {
                guard let direction = TranslationDirection(offered: [chargerVersion.rawValue], upstream: version) else {
                    problems.append(
                        "mirror \(mirror.name): a \(chargerVersion.shortName) charger cannot be translated for a "
                            + "\(version.shortName) backend; not mirrored"
                    )
                    continue
                }
                let mirrorIdentity = mirror.identity(for: identity).value
                makeTranslator = { state in
                    RelayServer.translation(
                        direction,
                        identity: mirrorIdentity,
                        tables: tables,
                        state: state,
                        uuids: uuids,
                        clock: clock,
                        callTimeout: callTimeout
                    )
                }
            }
            mirrors.append(
                Mirror(
                    settings: mirror,
                    identity: mirror.identity(for: identity),
                    subprotocol: version.rawValue,
                    makeTranslator: makeTranslator
                )
            )
        }
        return (mirrors, problems)
    }
}
