import Foundation
import OCPP
import RelayRecording
import Yams

/// Whether a reload (SIGHUP) applies a setting to new connections, or the running value stays until a restart.
enum Reload: Sendable {
    case applies
    case restart
}

/// One setting, declared once: its key, how its value is read and what it sets in the configuration (the
/// default is the configuration's), whether a reload applies it, and the keys inside it when it has structure.
package struct SettingDeclaration: Sendable {
    package let key: String
    let reload: Reload
    /// The keys inside a setting with structure (`tls.certificate`, `routes[].chargers`), for documentation.
    let subkeys: [String]
    let apply: @Sendable (SettingValue, inout RelayConfiguration) throws(ConfigurationError) -> Void
    /// For a setting bound at start: puts the running value back into a reloaded configuration; `true` when it
    /// differed.
    package let keep: @Sendable (_ new: inout RelayConfiguration, _ running: RelayConfiguration) -> Bool

    init(
        _ key: String,
        reload: Reload = .applies,
        subkeys: [String] = [],
        keep: @escaping @Sendable (inout RelayConfiguration, RelayConfiguration) -> Bool = { _, _ in false },
        apply: @escaping @Sendable (SettingValue, inout RelayConfiguration) throws(ConfigurationError) -> Void
    ) {
        self.key = key
        self.reload = reload
        self.subkeys = subkeys
        self.keep = keep
        self.apply = apply
    }

    /// Restores `path` from the running configuration; whether it differed.
    static func restore<Value: Equatable>(
        _ path: WritableKeyPath<RelayConfiguration, Value>,
        _ new: inout RelayConfiguration,
        _ running: RelayConfiguration
    ) -> Bool {
        guard new[keyPath: path] != running[keyPath: path] else { return false }
        new[keyPath: path] = running[keyPath: path]
        return true
    }
}

extension RelaySettings {
    /// Every setting, in the order they apply (routes after the upstream, version and password they default to;
    /// inline passwords after the passwords file they add to).
    static let declarations: [SettingDeclaration] = [
        SettingDeclaration(
            "listen",
            reload: .restart,
            keep: { new, running in
                let host = SettingDeclaration.restore(\.listenHost, &new, running)
                return SettingDeclaration.restore(\.listenPort, &new, running) || host
            }
        ) { value, c throws(ConfigurationError) in
            (c.listenHost, c.listenPort) = try RelayConfiguration.parseListen(try value.string("listen"))
        },
        SettingDeclaration("upstream") { value, c throws(ConfigurationError) in
            c.upstream = try upstreamURL(try value.string("upstream"))
        },
        SettingDeclaration("upstream_version") { value, c throws(ConfigurationError) in
            c.upstreamVersion = try version(try value.string("upstream_version"), name: "upstream_version")
        },
        SettingDeclaration("upstream_extensions") { value, c throws(ConfigurationError) in
            c.upstreamExtensions = try extensions(value, setting: "upstream_extensions")
        },
        SettingDeclaration("plaintext") { value, _ throws(ConfigurationError) in
            _ = try value.bool("plaintext")  // checked with the listener's address in resolve()
        },
        SettingDeclaration("log_level") { value, _ throws(ConfigurationError) in
            _ = try value.string("log_level")  // the command line sets up logging before the relay starts
        },
        SettingDeclaration("event_loops", reload: .restart, keep: { SettingDeclaration.restore(\.eventLoops, &$0, $1) })
        { value, c throws(ConfigurationError) in
            let loops = try value.int("event_loops")
            guard (1...64).contains(loops) else { throw ConfigurationError("event_loops must be 1 to 64") }
            c.eventLoops = loops
        },

        // recordings
        SettingDeclaration(
            "recordings.directory",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.recording.directory, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            c.recording.directory = try value.string("recordings.directory")
        },
        SettingDeclaration(
            "recordings.roll_size",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.recording.rollBytes, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            c.recording.rollBytes = try value.quantity("recordings.roll_size")
                .bytes(name: "recordings.roll_size", minimum: 4096)
        },
        SettingDeclaration(
            "recordings.roll_age",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.recording.rollAge, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            c.recording.rollAge = try value.quantity("recordings.roll_age")
                .duration(name: "recordings.roll_age", minimum: .seconds(1))
        },
        SettingDeclaration(
            "recordings.retention",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.recording.retention, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            let keep = try value.quantity("recordings.retention")
            c.recording.retention =
                keep.isForever ? nil : try keep.duration(name: "recordings.retention", minimum: .seconds(60))
        },
        SettingDeclaration(
            "recordings.compression_level",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.recording.compressionLevel, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            let level = try value.int("recordings.compression_level")
            guard (1...9).contains(level) else {
                throw ConfigurationError("recordings.compression_level must be 1 to 9")
            }
            c.recording.compressionLevel = level
        },
        SettingDeclaration(
            "recordings.journal_size",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.recording.journalBytes, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            // 0 (or `off`): no journal; each tick is compressed and written on its event loop.
            let size = try value.quantity("recordings.journal_size")
            let off = ["0", "off"].contains(size.text.lowercased())
            c.recording.journalBytes = off ? 0 : try size.bytes(name: "recordings.journal_size", minimum: 256 << 10)
        },

        // limits
        SettingDeclaration(
            "limits.max_frame_size",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.maxFrameBytes, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            let bytes = try value.quantity("limits.max_frame_size").bytes(name: "limits.max_frame_size", minimum: 1024)
            guard bytes <= Int(UInt32.max) else {
                throw ConfigurationError("limits.max_frame_size must be below 4 GiB")
            }
            c.maxFrameBytes = bytes
        },
        SettingDeclaration("limits.max_connections") { value, c throws(ConfigurationError) in
            c.maxConnections = try value.int("limits.max_connections", atLeast: 1)
        },
        SettingDeclaration("limits.messages_per_second") { value, c throws(ConfigurationError) in
            let rate = try value.double("limits.messages_per_second")
            guard rate >= 0 else {
                throw ConfigurationError("limits.messages_per_second must be 0 (unlimited) or more")
            }
            c.messagesPerSecond = rate
        },
        SettingDeclaration(
            "limits.redial_rate",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.redialRate, &$0, $1) }
        ) {
            value,
            c throws(ConfigurationError) in
            let rate = try value.double("limits.redial_rate")
            guard rate >= 0 else { throw ConfigurationError("limits.redial_rate must be 0 (not paced) or more") }
            c.redialRate = rate
        },
        SettingDeclaration("limits.handshakes") { value, c throws(ConfigurationError) in
            c.handshakes = try value.int("limits.handshakes", atLeast: 0)
        },
        // compression
        SettingDeclaration("compression.chargers") { value, c throws(ConfigurationError) in
            c.compressChargers = try value.choice("compression.chargers", ["accept": true, "off": false])
        },
        SettingDeclaration("compression.upstream") { value, c throws(ConfigurationError) in
            c.compressUpstream = try value.choice("compression.upstream", ["offer": true, "off": false])
        },
        SettingDeclaration("compression.window_bits") { value, c throws(ConfigurationError) in
            let bits = try value.int("compression.window_bits", atLeast: 9)
            guard bits <= 15 else { throw ConfigurationError("compression.window_bits must be 9 … 15") }
            c.compressionWindowBits = bits
        },
        SettingDeclaration("limits.message_burst") { value, c throws(ConfigurationError) in
            c.messageBurst = try value.int("limits.message_burst", atLeast: 1)
        },

        // timeouts
        SettingDeclaration(
            "timeouts.upstream",
            reload: .restart,
            keep: { SettingDeclaration.restore(\.upstreamTimeout, &$0, $1) }
        ) { value, c throws(ConfigurationError) in
            c.upstreamTimeout = try value.quantity("timeouts.upstream")
                .duration(name: "timeouts.upstream", minimum: .milliseconds(10))
        },
        SettingDeclaration("timeouts.close") { value, c throws(ConfigurationError) in
            c.closeTimeout = try value.quantity("timeouts.close")
                .duration(name: "timeouts.close", minimum: .milliseconds(10))
        },
        SettingDeclaration("timeouts.shutdown") { value, c throws(ConfigurationError) in
            c.shutdownTimeout = try value.quantity("timeouts.shutdown")
                .duration(name: "timeouts.shutdown", minimum: .milliseconds(10))
        },
        SettingDeclaration("timeouts.call") { value, c throws(ConfigurationError) in
            c.callTimeout = try value.quantity("timeouts.call")
                .duration(name: "timeouts.call", minimum: .milliseconds(100))
        },
        SettingDeclaration("timeouts.drain") { value, c throws(ConfigurationError) in
            c.drainTimeout = try value.quantity("timeouts.drain").duration(name: "timeouts.drain", minimum: .zero)
        },
        SettingDeclaration("timeouts.reconnect_grace") { value, c throws(ConfigurationError) in
            c.reconnectGrace = try value.quantity("timeouts.reconnect_grace")
                .duration(name: "timeouts.reconnect_grace", minimum: .zero)
        },
        SettingDeclaration("timeouts.ping") { value, c throws(ConfigurationError) in
            let interval = try value.quantity("timeouts.ping").duration(name: "timeouts.ping", minimum: .zero)
            guard interval == .zero || interval >= .milliseconds(50) else {
                throw ConfigurationError("timeouts.ping must be 0 (off) or at least 50ms")
            }
            c.pingInterval = interval
        },
        SettingDeclaration("timeouts.handshake") { value, c throws(ConfigurationError) in
            c.handshakeTimeout = try value.quantity("timeouts.handshake")
                .duration(name: "timeouts.handshake", minimum: .milliseconds(10))
        },

        // translation
        SettingDeclaration("translation.mappings") { value, c throws(ConfigurationError) in
            c.mappingsDirectory = try value.string("translation.mappings")
        },
        SettingDeclaration("translation.state") { value, c throws(ConfigurationError) in
            c.stateDatabase = try statePath(try value.string("translation.state"))
        },
        SettingDeclaration("translation.state_password_env") { value, c throws(ConfigurationError) in
            let name = try value.string("translation.state_password_env")
            c.statePassword = try secret(environment: name, setting: "translation.state_password_env")
        },
        SettingDeclaration("translation.overrides") { value, c throws(ConfigurationError) in
            c.mappingOverrides = try value.string("translation.overrides")
        },
        SettingDeclaration("translation.early_start_answer") { value, c throws(ConfigurationError) in
            c.earlyStartAnswer = try value.bool("translation.early_start_answer")
        },

        // validation
        SettingDeclaration("validation.reject_invalid_calls") { value, c throws(ConfigurationError) in
            c.rejectInvalidCalls = try value.bool("validation.reject_invalid_calls")
        },
        SettingDeclaration("validation.verdicts") { value, c throws(ConfigurationError) in
            let share = try value.double("validation.verdicts")
            guard (0...1).contains(share) else {
                throw ConfigurationError(
                    "validation.verdicts must be between 0 (no frame judged) and 1 (every connection's frames judged)"
                )
            }
            c.verdictShare = share
        },

        // access and credentials
        SettingDeclaration("allow") { value, c throws(ConfigurationError) in
            c.access.allowed = try ChargerMatcher(try value.strings("allow"), what: "allow")
        },
        SettingDeclaration("auth.passwords_file") { value, c throws(ConfigurationError) in
            let file = try value.string("auth.passwords_file")
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("auth.passwords_file: cannot read \(file)")
            }
            let texts: [String: String]
            do {
                texts = try YAMLDecoder().decode([String: String].self, from: String(decoding: data, as: UTF8.self))
            } catch {
                throw ConfigurationError("auth.passwords_file \(file): expected a map of charger id to password hash")
            }
            c.access.passwords = (c.access.passwords ?? [:]).merging(try passwordHashes(texts)) { _, new in new }
        },
        SettingDeclaration("auth.passwords") { value, c throws(ConfigurationError) in
            let inline = try passwordHashes(try value.stringMap("auth.passwords"))
            c.access.passwords = (c.access.passwords ?? [:]).merging(inline) { _, new in new }
        },
        SettingDeclaration("auth.forward_authorization") { value, c throws(ConfigurationError) in
            c.access.forwardAuthorization = try value.bool("auth.forward_authorization")
        },
        SettingDeclaration("auth.upstream_password_env") { value, c throws(ConfigurationError) in
            let name = try value.string("auth.upstream_password_env")
            c.upstreamPassword = try secret(environment: name, setting: "auth.upstream_password_env")
        },

        // TLS and metrics
        SettingDeclaration(
            "tls",
            reload: .restart,
            subkeys: ["certificate", "key", "client_ca", "client_identity"],
            keep: { new, running in
                // Certificate files are read again on reload (renewed ones serve new connections); whether the
                // listener speaks TLS at all is bound at start.
                guard (new.listenerTLS == nil) != (running.listenerTLS == nil) else { return false }
                new.listenerTLS = running.listenerTLS
                return true
            }
        ) { value, c throws(ConfigurationError) in
            let tls = try value.members("tls", allowed: ["certificate", "key", "client_ca", "client_identity"])
            guard let certificate = try tls["certificate"]?.string("tls.certificate"),
                let key = try tls["key"]?.string("tls.key")
            else { throw ConfigurationError("tls needs certificate and key") }
            let clientCA = try tls["client_ca"]?.string("tls.client_ca")
            let identity = try tls["client_identity"]?.string("tls.client_identity") ?? "cn"
            guard ["cn", "none"].contains(identity) else {
                throw ConfigurationError("tls.client_identity must be cn or none")
            }
            c.listenerTLS = ListenerTLS(
                certificate: certificate,
                key: key,
                clientCA: clientCA,
                checkIdentity: clientCA != nil && identity == "cn"
            )
        },
        SettingDeclaration("upstream_tls", subkeys: ["ca", "certificate", "key"]) {
            value,
            c throws(ConfigurationError) in
            let tls = try value.members("upstream_tls", allowed: ["ca", "certificate", "key"])
            let certificate = try tls["certificate"]?.string("upstream_tls.certificate")
            let key = try tls["key"]?.string("upstream_tls.key")
            guard (certificate == nil) == (key == nil) else {
                throw ConfigurationError("upstream_tls.certificate and upstream_tls.key go together")
            }
            c.upstreamTLS = UpstreamTLSFiles(
                ca: try tls["ca"]?.string("upstream_tls.ca"),
                certificate: certificate,
                key: key
            )
        },
        SettingDeclaration(
            "metrics.listen",
            reload: .restart,
            keep: { new, running in
                guard new.metricsListenText != running.metricsListenText else { return false }
                new.metricsListen = running.metricsListen
                return true
            }
        ) { value, c throws(ConfigurationError) in
            c.metricsListen = try RelayConfiguration.parseListen(try value.string("metrics.listen"))
        },

        // the console (after tls: it serves TLS with the listener's certificate)
        // The console starts with the relay: a reload keeps the running console's settings (its users included).
        SettingDeclaration("console.listen", reload: .restart, keep: Self.keepConsole(\.self)) {
            value,
            c throws(ConfigurationError) in
            let (host, port) = try RelayConfiguration.parseListen(try value.string("console.listen"))
            c.console = ConsoleSettings(host: host, port: port)
        },
        SettingDeclaration("console.users", reload: .restart, keep: Self.keepConsole(\.users)) {
            value,
            c throws(ConfigurationError) in
            c.console?.users = try passwordHashes(try value.stringMap("console.users"), setting: "console.users")
        },
        SettingDeclaration("console.token_env", reload: .restart, keep: Self.keepConsole(\.token)) {
            value,
            c throws(ConfigurationError) in
            let name = try value.string("console.token_env")
            c.console?.token = try secret(environment: name, setting: "console.token_env")
        },
        SettingDeclaration("console.session_ttl", reload: .restart, keep: Self.keepConsole(\.sessionLifetime)) {
            value,
            c throws(ConfigurationError) in
            c.console?.sessionLifetime = try value.quantity("console.session_ttl")
                .duration(name: "console.session_ttl", minimum: .seconds(1))
        },
        SettingDeclaration("console.redact_tokens", reload: .restart, keep: Self.keepConsole(\.redactTokens)) {
            value,
            c throws(ConfigurationError) in
            c.console?.redactTokens = try value.bool("console.redact_tokens")
        },

        SettingDeclaration("mirrors", subkeys: MirrorSettings.keys) { value, c throws(ConfigurationError) in
            c.mirrors = try mirrors(value, setting: "mirrors")
        },

        // routes (after the upstream, version, password and mirrors they default to)
        SettingDeclaration(
            "routes",
            subkeys: Self.routeKeys
        ) { value, c throws(ConfigurationError) in
            guard case .list(let routes) = value else { throw ConfigurationError("routes must be a list") }
            for (index, route) in routes.enumerated() {
                let fields = try route.members(
                    "routes[\(index + 1)]",
                    allowed: Self.routeKeys
                )
                let name = try fields["name"]?.string("routes[].name") ?? "#\(index + 1)"
                guard let chargers = try fields["chargers"]?.strings("routes[\(name)].chargers") else {
                    throw ConfigurationError("routes[\(name)] needs chargers")
                }
                c.routes.append(
                    Route(
                        name: name,
                        chargers: try ChargerMatcher(chargers),
                        upstream: try fields["upstream"].map { u throws(ConfigurationError) in
                            try upstreamURL(try u.string("routes[\(name)].upstream"))
                        } ?? c.upstream,
                        upstreamVersion: try fields["upstream_version"].map { v throws(ConfigurationError) in
                            try version(
                                try v.string("routes[\(name)].upstream_version"),
                                name: "routes[\(name)].upstream_version"
                            )
                        } ?? c.upstreamVersion,
                        upstreamPassword: try fields["upstream_password_env"].map { env throws(ConfigurationError) in
                            try secret(
                                environment: try env.string("routes[\(name)].upstream_password_env"),
                                setting: "routes[\(name)].upstream_password_env"
                            )
                        } ?? c.upstreamPassword,
                        mirrors: try fields["mirrors"].map { m throws(ConfigurationError) in
                            try mirrors(m, setting: "routes[\(name)].mirrors")
                        } ?? c.mirrors,
                        upstreamExtensions: try fields["upstream_extensions"].map { e throws(ConfigurationError) in
                            try extensions(e, setting: "routes[\(name)].upstream_extensions")
                        } ?? c.upstreamExtensions,
                        reconnectGrace: try fields["reconnect_grace"].map { g throws(ConfigurationError) in
                            try g.quantity("routes[\(name)].reconnect_grace")
                                .duration(name: "routes[\(name)].reconnect_grace", minimum: .zero)
                        } ?? c.reconnectGrace,
                        rejectInvalidCalls: try fields["reject_invalid_calls"]?.bool(
                            "routes[\(name)].reject_invalid_calls"
                        )
                            ?? c.rejectInvalidCalls
                    )
                )
            }
        },
    ]

    /// Keeps the running console's settings in a reloaded configuration; whether `field` differed.
    static func keepConsole<Value: Equatable & SendableMetatype>(
        _ field: any KeyPath<ConsoleSettings, Value> & Sendable
    ) -> @Sendable (inout RelayConfiguration, RelayConfiguration) -> Bool {
        { new, running in
            let differed = new.console?[keyPath: field] != running.console?[keyPath: field]
            new.console = running.console
            return differed
        }
    }

    static let routeKeys: [String] = [
        "chargers", "upstream", "upstream_version", "name", "upstream_password_env", "mirrors", "upstream_extensions",
        "reconnect_grace", "reject_invalid_calls",
    ]

    /// The declarations by key.
    static let declared: [String: SettingDeclaration] = Dictionary(
        uniqueKeysWithValues: declarations.map { ($0.key, $0) }
    )

    /// The groups keys sit in (`recordings`, `timeouts`, …).
    static let groups: Set<String> = Set(
        declarations.flatMap { declaration in
            let parts = declaration.key.split(separator: ".").map(String.init)
            return (1..<max(1, parts.count)).map { parts[..<$0].joined(separator: ".") }
        }
    )

    /// Every key a configuration file may hold, groups and the keys inside structured settings included
    /// (`routes[].chargers`): what `Config/relay.yaml` documents.
    public static var documentedKeys: Set<String> {
        var keys = groups
        for declaration in declarations {
            keys.insert(declaration.key)
            let inner = ["routes", "mirrors"].contains(declaration.key) ? "\(declaration.key)[]" : declaration.key
            for subkey in declaration.subkeys { keys.insert("\(inner).\(subkey)") }
        }
        return keys
    }

    /// The settings a reload leaves as they were (bound at start).
    package static var boundAtStart: [SettingDeclaration] { declarations.filter { $0.reload == .restart } }

    private static func passwordHashes(
        _ texts: [String: String],
        setting: String = "auth.passwords"
    ) throws(ConfigurationError) -> [String: PasswordHash] {
        var hashes: [String: PasswordHash] = [:]
        for (id, text) in texts {
            do {
                hashes[id] = try PasswordHash(parsing: text)
            } catch {
                throw ConfigurationError("\(setting)[\(id)]: \(error.message)")
            }
        }
        return hashes
    }
}
