import Foundation
import OCPP
import OCPPTransport
import RelayRecording
import Yams

/// The settings as a user writes them, in the YAML file or as flags: every field optional,
/// sizes and durations with units (`64MiB`, `1h`, `30d`). ``resolve()`` checks them and fills defaults.
///
/// The YAML keys are part of the relay's stable interface; see `Config/relay.yaml`.
public struct RelaySettings: Sendable, Decodable, Equatable {
    public var listen: String?
    public var upstream: String?
    /// `1.6`, `2.0.1`, or `passthrough`.
    public var upstreamVersion: String?
    public var recordings: Recordings?
    public var limits: Limits?
    public var timeouts: Timeouts?
    public var eventLoops: Int?
    public var logLevel: String?
    public var translation: Translation?
    public var routes: [RouteSettings]?
    /// Charger ids or `glob:`/`regex:` patterns allowed to connect; others get 404. Absent: everyone.
    public var allow: [String]?
    public var auth: Auth?
    /// The chargers' listener speaks TLS (wss://).
    public var tls: TLS?
    /// How the relay dials wss:// upstreams.
    public var upstreamTLS: UpstreamTLS?
    /// Allows a plaintext listener on an address other than loopback (behind a proxy that terminates TLS).
    public var plaintext: Bool?
    public var metrics: Metrics?

    /// Prometheus metrics and health endpoints.
    public struct Metrics: Sendable, Decodable, Equatable {
        /// HOST:PORT for `/metrics`, `/healthz` and `/readyz` (plain HTTP; keep it on an internal address).
        public var listen: String?

        public init(listen: String? = nil) {
            self.listen = listen
        }
    }

    /// The listener's certificate and, for security profile 3, the CA that signs charger certificates.
    public struct TLS: Sendable, Decodable, Equatable {
        /// PEM file: the relay's certificate, then its chain.
        public var certificate: String
        /// PEM file: the private key.
        public var key: String
        /// PEM file: the CA(s) charger certificates must chain to; set, a charger without one is refused.
        public var clientCA: String?
        /// `cn` (default with client_ca): the certificate's subject common name must be the charger's identity;
        /// `none`: any certificate from the CA will do.
        public var clientIdentity: String?

        enum CodingKeys: String, CodingKey {
            case certificate, key
            case clientCA = "client_ca"
            case clientIdentity = "client_identity"
        }
    }

    /// Trust and identity for wss:// upstreams.
    public struct UpstreamTLS: Sendable, Decodable, Equatable {
        /// PEM file of the CAs trusted for upstream certificates (default: the system's).
        public var ca: String?
        /// PEM file: the certificate the relay presents upstream (security profile 3), and its key.
        public var certificate: String?
        public var key: String?
    }

    /// Credentials: what the relay checks itself and what it presents upstream.
    public struct Auth: Sendable, Decodable, Equatable {
        /// Charger id → password hash (`ocpp-relay auth hash`). When set (here or in a file), the relay checks
        /// every charger's Basic credentials; chargers without an entry get 401.
        public var passwords: [String: String]?
        /// A YAML file holding the same map (keep it readable by the relay only).
        public var passwordsFile: String?
        /// Whether the charger's Authorization header is passed upstream (default yes).
        public var forwardAuthorization: Bool?
        /// An environment variable holding the password the relay presents upstream as `<charger id>:<password>`
        /// (instead of the charger's header); routes may set their own.
        public var upstreamPasswordEnv: String?

        public init(
            passwords: [String: String]? = nil,
            passwordsFile: String? = nil,
            forwardAuthorization: Bool? = nil,
            upstreamPasswordEnv: String? = nil
        ) {
            self.passwords = passwords
            self.passwordsFile = passwordsFile
            self.forwardAuthorization = forwardAuthorization
            self.upstreamPasswordEnv = upstreamPasswordEnv
        }

        enum CodingKeys: String, CodingKey {
            case passwords
            case passwordsFile = "passwords_file"
            case forwardAuthorization = "forward_authorization"
            case upstreamPasswordEnv = "upstream_password_env"
        }
    }

    /// A route as written in the configuration file.
    public struct RouteSettings: Sendable, Decodable, Equatable {
        /// Exact ids, `glob:` or `regex:` patterns.
        public var chargers: [String]
        public var upstream: String?
        /// `1.6`, `2.0.1` or `passthrough`; absent: the top-level setting.
        public var upstreamVersion: String?
        public var name: String?
        /// An environment variable with the password the relay presents upstream for these chargers.
        public var upstreamPasswordEnv: String?

        enum CodingKeys: String, CodingKey {
            case chargers, upstream, name
            case upstreamVersion = "upstream_version"
            case upstreamPasswordEnv = "upstream_password_env"
        }
    }

    /// Translation between 1.6 chargers and a 2.0.1 upstream.
    public struct Translation: Sendable, Decodable, Equatable {
        /// The folder of mapping tables.
        public var mappings: String?
        /// The SQLite file of the translation state.
        public var state: String?
        /// A YAML file laid over the tables; its top-level keys are table file names.
        public var overrides: String?

        public init(mappings: String? = nil, state: String? = nil, overrides: String? = nil) {
            self.mappings = mappings
            self.state = state
            self.overrides = overrides
        }
    }

    public struct Recordings: Sendable, Decodable, Equatable {
        public var directory: String?
        public var rollSize: Quantity?
        public var rollAge: Quantity?
        /// A duration, or `forever`.
        public var retention: Quantity?
        public var compressionLevel: Int?

        public init(
            directory: String? = nil,
            rollSize: Quantity? = nil,
            rollAge: Quantity? = nil,
            retention: Quantity? = nil,
            compressionLevel: Int? = nil
        ) {
            self.directory = directory
            self.rollSize = rollSize
            self.rollAge = rollAge
            self.retention = retention
            self.compressionLevel = compressionLevel
        }

        enum CodingKeys: String, CodingKey {
            case directory
            case rollSize = "roll_size"
            case rollAge = "roll_age"
            case retention
            case compressionLevel = "compression_level"
        }
    }

    public struct Limits: Sendable, Decodable, Equatable {
        public var maxFrameSize: Quantity?
        /// Chargers connected or connecting at once; more get 503.
        public var maxConnections: Int?
        /// A charger's average message rate (0: unlimited) and how many it may send at once.
        public var messagesPerSecond: Double?
        public var messageBurst: Int?

        public init(
            maxFrameSize: Quantity? = nil,
            maxConnections: Int? = nil,
            messagesPerSecond: Double? = nil,
            messageBurst: Int? = nil
        ) {
            self.maxFrameSize = maxFrameSize
            self.maxConnections = maxConnections
            self.messagesPerSecond = messagesPerSecond
            self.messageBurst = messageBurst
        }

        enum CodingKeys: String, CodingKey {
            case maxFrameSize = "max_frame_size"
            case maxConnections = "max_connections"
            case messagesPerSecond = "messages_per_second"
            case messageBurst = "message_burst"
        }
    }

    public struct Timeouts: Sendable, Decodable, Equatable {
        public var upstream: Quantity?
        public var close: Quantity?
        public var shutdown: Quantity?
        /// A translated CALL without an answer.
        public var call: Quantity?
        /// A charger's HTTP upgrade request, from connect to its last byte.
        public var handshake: Quantity?
        /// Silence on a leg before the relay pings it (`0` never pings).
        public var ping: Quantity?

        public init(
            upstream: Quantity? = nil,
            close: Quantity? = nil,
            shutdown: Quantity? = nil,
            call: Quantity? = nil,
            handshake: Quantity? = nil,
            ping: Quantity? = nil
        ) {
            self.ping = ping
            self.upstream = upstream
            self.close = close
            self.shutdown = shutdown
            self.call = call
            self.handshake = handshake
        }
    }

    enum CodingKeys: String, CodingKey {
        case listen, upstream
        case upstreamVersion = "upstream_version"
        case recordings, limits, timeouts
        case eventLoops = "event_loops"
        case logLevel = "log_level"
        case translation, routes, allow, auth, tls, plaintext, metrics
        case upstreamTLS = "upstream_tls"
    }

    public init(
        listen: String? = nil,
        upstream: String? = nil,
        upstreamVersion: String? = nil,
        recordings: Recordings? = nil,
        limits: Limits? = nil,
        timeouts: Timeouts? = nil,
        eventLoops: Int? = nil,
        logLevel: String? = nil,
        translation: Translation? = nil
    ) {
        self.listen = listen
        self.upstream = upstream
        self.upstreamVersion = upstreamVersion
        self.recordings = recordings
        self.limits = limits
        self.timeouts = timeouts
        self.eventLoops = eventLoops
        self.logLevel = logLevel
        self.translation = translation
    }

    /// Reads a YAML settings file.
    public static func load(path: String) throws(ConfigurationError) -> RelaySettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read configuration file \(path)")
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), source: path)
    }

    /// Parses YAML settings text.
    public static func parse(yaml: String, source: String = "configuration") throws(ConfigurationError) -> RelaySettings
    {
        do {
            if yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return RelaySettings() }
            return try YAMLDecoder().decode(RelaySettings.self, from: yaml)
        } catch let error as DecodingError {
            throw ConfigurationError("\(source): \(Self.describe(error))")
        } catch {
            throw ConfigurationError("\(source): \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(path(c)): \(c.debugDescription)"
        case .keyNotFound(let key, let c):
            return "\(path(c)): missing \(key.stringValue)"
        @unknown default:
            return "\(error)"
        }
    }

    /// `1.6`, `2.0.1`, or `passthrough` (nil).
    private static func version(_ text: String, name: String) throws(ConfigurationError) -> OCPPVersion? {
        if text.lowercased() == "passthrough" { return nil }
        guard let parsed = OCPPVersion(name: text) else {
            throw ConfigurationError("\(name) '\(text)' must be 1.6, 2.0.1 or passthrough")
        }
        return parsed
    }

    /// The allow-list and the charger passwords.
    private func resolveAccess() throws(ConfigurationError) -> ChargerAccess {
        var access = ChargerAccess()
        if let allow {
            access.allowed = try ChargerMatcher(allow, what: "allow")
        }
        var texts: [String: String]?
        if let file = auth?.passwordsFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError("auth.passwords_file: cannot read \(file)")
            }
            do {
                texts = try YAMLDecoder().decode([String: String].self, from: String(decoding: data, as: UTF8.self))
            } catch {
                throw ConfigurationError("auth.passwords_file \(file): expected a map of charger id to password hash")
            }
        }
        if let inline = auth?.passwords {
            texts = (texts ?? [:]).merging(inline) { _, new in new }
        }
        if let texts {
            var hashes: [String: PasswordHash] = [:]
            for (id, text) in texts {
                do {
                    hashes[id] = try PasswordHash(parsing: text)
                } catch {
                    throw ConfigurationError("auth.passwords[\(id)]: \(error.message)")
                }
            }
            access.passwords = hashes
        }
        access.forwardAuthorization = auth?.forwardAuthorization ?? true
        return access
    }

    /// TLS for chargers and upstreams; a plaintext listener beyond loopback only when asked for.
    private func resolveTLS(into configuration: inout RelayConfiguration) throws(ConfigurationError) {
        if let tls {
            let identity = tls.clientIdentity ?? "cn"
            guard ["cn", "none"].contains(identity) else {
                throw ConfigurationError("tls.client_identity must be cn or none")
            }
            configuration.listenerTLS = ListenerTLS(
                certificate: tls.certificate,
                key: tls.key,
                clientCA: tls.clientCA,
                checkIdentity: tls.clientCA != nil && identity == "cn"
            )
        } else if !(plaintext ?? false) && !RelayConfiguration.isLoopback(configuration.listenHost) {
            throw ConfigurationError(
                "listening on \(configuration.listenHost) without TLS: configure tls (certificate, key), "
                    + "or set plaintext: true (--plaintext) when a proxy in front terminates TLS"
            )
        }
        if let upstreamTLS {
            guard (upstreamTLS.certificate == nil) == (upstreamTLS.key == nil) else {
                throw ConfigurationError("upstream_tls.certificate and upstream_tls.key go together")
            }
            configuration.upstreamTLS = UpstreamTLSFiles(
                ca: upstreamTLS.ca,
                certificate: upstreamTLS.certificate,
                key: upstreamTLS.key
            )
        }
    }

    /// A secret from the environment (secrets do not belong in configuration files).
    private static func secret(environment name: String, setting: String) throws(ConfigurationError) -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw ConfigurationError("\(setting): the environment variable \(name) is not set")
        }
        return value
    }

    /// These settings with every field that `overrides` sets replaced by its value.
    public func overridden(by overrides: RelaySettings) -> RelaySettings {
        var result = self
        result.listen = overrides.listen ?? listen
        result.upstream = overrides.upstream ?? upstream
        result.upstreamVersion = overrides.upstreamVersion ?? upstreamVersion
        result.eventLoops = overrides.eventLoops ?? eventLoops
        result.logLevel = overrides.logLevel ?? logLevel
        result.routes = overrides.routes ?? routes
        result.allow = overrides.allow ?? allow
        result.tls = overrides.tls ?? tls
        result.upstreamTLS = overrides.upstreamTLS ?? upstreamTLS
        result.plaintext = overrides.plaintext ?? plaintext
        result.metrics = overrides.metrics ?? metrics
        result.auth = overrides.auth ?? auth
        if let o = overrides.recordings {
            var r = recordings ?? Recordings()
            r.directory = o.directory ?? r.directory
            r.rollSize = o.rollSize ?? r.rollSize
            r.rollAge = o.rollAge ?? r.rollAge
            r.retention = o.retention ?? r.retention
            r.compressionLevel = o.compressionLevel ?? r.compressionLevel
            result.recordings = r
        }
        if let o = overrides.limits {
            result.limits = Limits(
                maxFrameSize: o.maxFrameSize ?? limits?.maxFrameSize,
                maxConnections: o.maxConnections ?? limits?.maxConnections,
                messagesPerSecond: o.messagesPerSecond ?? limits?.messagesPerSecond,
                messageBurst: o.messageBurst ?? limits?.messageBurst
            )
        }
        if let o = overrides.translation {
            result.translation = Translation(
                mappings: o.mappings ?? translation?.mappings,
                state: o.state ?? translation?.state,
                overrides: o.overrides ?? translation?.overrides
            )
        }
        if let o = overrides.timeouts {
            result.timeouts = Timeouts(
                upstream: o.upstream ?? timeouts?.upstream,
                close: o.close ?? timeouts?.close,
                shutdown: o.shutdown ?? timeouts?.shutdown,
                call: o.call ?? timeouts?.call,
                handshake: o.handshake ?? timeouts?.handshake,
                ping: o.ping ?? timeouts?.ping
            )
        }
        return result
    }

    static func upstreamURL(_ text: String) throws(ConfigurationError) -> UpstreamURL {
        do {
            return try UpstreamURL(text)
        } catch {
            throw ConfigurationError(error.message)
        }
    }

    /// Checks the settings and turns them into a configuration with defaults filled in.
    public func resolve() throws(ConfigurationError) -> RelayConfiguration {
        guard let upstreamText = upstream else {
            throw ConfigurationError(
                "no upstream: pass --upstream ws://HOST:PORT/PATH or set 'upstream' in the configuration file"
            )
        }
        var configuration = RelayConfiguration(upstream: try Self.upstreamURL(upstreamText))
        if let listen {
            (configuration.listenHost, configuration.listenPort) = try RelayConfiguration.parseListen(listen)
        }
        if let version = upstreamVersion {
            configuration.upstreamVersion = try Self.version(version, name: "upstream_version")
        }
        configuration.access = try resolveAccess()
        if let listen = metrics?.listen {
            configuration.metricsListen = try RelayConfiguration.parseListen(listen)
        }
        try resolveTLS(into: &configuration)
        let defaultUpstreamPassword = try auth?.upstreamPasswordEnv.map { name throws(ConfigurationError) in
            try Self.secret(environment: name, setting: "auth.upstream_password_env")
        }
        configuration.upstreamPassword = defaultUpstreamPassword
        for (index, route) in (routes ?? []).enumerated() {
            let name = route.name ?? "#\(index + 1)"
            configuration.routes.append(
                Route(
                    name: name,
                    chargers: try ChargerMatcher(route.chargers),
                    upstream: try route.upstream.map { u throws(ConfigurationError) in try Self.upstreamURL(u) }
                        ?? configuration.upstream,
                    upstreamVersion: try route.upstreamVersion.map { v throws(ConfigurationError) in
                        try Self.version(v, name: "routes[\(name)].upstream_version")
                    } ?? configuration.upstreamVersion,
                    upstreamPassword: try route.upstreamPasswordEnv.map { env throws(ConfigurationError) in
                        try Self.secret(environment: env, setting: "routes[\(name)].upstream_password_env")
                    } ?? defaultUpstreamPassword
                )
            )
        }
        if let r = recordings {
            if let d = r.directory { configuration.recording.directory = d }
            if let s = r.rollSize {
                configuration.recording.rollBytes = try s.bytes(name: "recordings.roll_size", minimum: 4096)
            }
            if let a = r.rollAge {
                configuration.recording.rollSeconds = Int(try a.seconds(name: "recordings.roll_age", minimum: 1))
            }
            if let keep = r.retention {
                configuration.recording.retentionSeconds =
                    keep.isForever ? nil : Int(try keep.seconds(name: "recordings.retention", minimum: 60))
            }
            if let level = r.compressionLevel {
                guard (1...9).contains(level) else {
                    throw ConfigurationError("recordings.compression_level must be 1 to 9")
                }
                configuration.recording.compressionLevel = level
            }
        }
        if let size = limits?.maxFrameSize {
            configuration.maxFrameBytes = try size.bytes(name: "limits.max_frame_size", minimum: 1024)
            guard configuration.maxFrameBytes <= Int(UInt32.max) else {
                throw ConfigurationError("limits.max_frame_size must be below 4 GiB")
            }
        }
        if let connections = limits?.maxConnections {
            guard connections >= 1 else { throw ConfigurationError("limits.max_connections must be at least 1") }
            configuration.maxConnections = connections
        }
        if let rate = limits?.messagesPerSecond {
            guard rate >= 0 else {
                throw ConfigurationError("limits.messages_per_second must be 0 (unlimited) or more")
            }
            configuration.messagesPerSecond = rate
        }
        if let burst = limits?.messageBurst {
            guard burst >= 1 else { throw ConfigurationError("limits.message_burst must be at least 1") }
            configuration.messageBurst = burst
        }
        if let t = timeouts?.upstream {
            configuration.upstreamTimeout = try t.duration(name: "timeouts.upstream", minimum: .milliseconds(10))
        }
        if let t = timeouts?.close {
            configuration.closeTimeout = try t.duration(name: "timeouts.close", minimum: .milliseconds(10))
        }
        if let t = timeouts?.call {
            configuration.callTimeout = try t.duration(name: "timeouts.call", minimum: .milliseconds(100))
        }
        if let t = timeouts?.ping {
            let interval = try t.duration(name: "timeouts.ping", minimum: .zero)
            guard interval == .zero || interval >= .milliseconds(50) else {
                throw ConfigurationError("timeouts.ping must be 0 (off) or at least 50ms")
            }
            configuration.pingInterval = interval
        }
        if let t = timeouts?.handshake {
            configuration.handshakeTimeout = try t.duration(name: "timeouts.handshake", minimum: .milliseconds(10))
        }
        if let t = timeouts?.shutdown {
            configuration.shutdownTimeout = try t.duration(name: "timeouts.shutdown", minimum: .milliseconds(10))
        }
        if let t = translation {
            if let mappings = t.mappings { configuration.mappingsDirectory = mappings }
            if let state = t.state { configuration.stateDatabase = try Self.statePath(state) }
            configuration.mappingOverrides = t.overrides
        }
        if let loops = eventLoops {
            guard (1...64).contains(loops) else { throw ConfigurationError("event_loops must be 1 to 64") }
            configuration.eventLoops = loops
        }
        return configuration
    }
}

extension RelaySettings {
    /// `translation.state` is the path of a SQLite file; anything else is refused instead of becoming a file
    /// named after it in the working folder.
    static func statePath(_ text: String) throws(ConfigurationError) -> String {
        if let scheme = text.range(of: "://").map({ text[..<$0.lowerBound] }) {
            throw ConfigurationError(
                "translation.state: \(scheme):// is not supported; give the path of a SQLite file"
            )
        }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigurationError("translation.state is empty; give the path of a SQLite file")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: text, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ConfigurationError("translation.state: \(text) is a folder; give the path of a SQLite file")
        }
        return text
    }
}

/// A number with an optional unit, as written in settings: `1048576`, `1MiB`, `64 MB`, `90s`, `1h`, `30d`.
public struct Quantity: Sendable, Decodable, Equatable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public init(stringLiteral value: String) {
        self.text = value
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            text = String(number)
        } else if let number = try? container.decode(Double.self) {
            text = String(number)
        } else {
            text = try container.decode(String.self)
        }
    }

    public var description: String { text }

    var isForever: Bool { ["forever", "never", "none"].contains(text.lowercased()) }

    private func split() -> (Double, String)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let numberPart = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(numberPart) else { return nil }
        return (value, trimmed.dropFirst(numberPart.count).trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// The value in bytes (units B, KB/KiB, MB/MiB, GB/GiB; powers of 1000 and 1024).
    public func bytes(name: String, minimum: Int) throws(ConfigurationError) -> Int {
        let units: [String: Double] = [
            "": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1_048_576, "mb": 1_000_000, "mib": 1_048_576,
            "g": 1_073_741_824, "gb": 1_000_000_000, "gib": 1_073_741_824,
        ]
        guard let (value, unit) = split(), let factor = units[unit] else {
            throw ConfigurationError("\(name): '\(text)' is not a size (examples: 1048576, 512KiB, 64MiB)")
        }
        let bytes = Int(value * factor)
        guard bytes >= minimum else {
            throw ConfigurationError("\(name): \(text) is below the minimum of \(minimum) bytes")
        }
        return bytes
    }

    /// The value as a duration (units ms, s, m/min, h, d; no unit means seconds), to the microsecond.
    public func duration(name: String, minimum: Duration) throws(ConfigurationError) -> Duration {
        let minimumSeconds = Double(minimum.components.seconds) + Double(minimum.components.attoseconds) / 1e18
        return .microseconds(Int64((try seconds(name: name, minimum: minimumSeconds) * 1e6).rounded()))
    }

    /// The value in seconds (units ms, s, m/min, h, d; no unit means seconds).
    public func seconds(name: String, minimum: Double) throws(ConfigurationError) -> Double {
        let units: [String: Double] = ["": 1, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400]
        guard let (value, unit) = split(), let factor = units[unit] else {
            throw ConfigurationError("\(name): '\(text)' is not a duration (examples: 500ms, 10s, 1h, 30d)")
        }
        let seconds = value * factor
        guard seconds >= minimum else {
            throw ConfigurationError("\(name): \(text) is below the minimum of \(minimum) s")
        }
        return seconds
    }
}
