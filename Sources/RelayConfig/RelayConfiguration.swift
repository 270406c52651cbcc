import Foundation
import OCPP
import OCPPTransport
import RelayRecording

/// Everything `ocpp-relay serve` needs, from flags and the YAML file (flags win).
public struct RelayConfiguration: Sendable {
    /// Address to listen on for chargers.
    public var listenHost: String
    public var listenPort: Int
    /// Where chargers are relayed to.
    public var upstream: UpstreamURL
    /// The OCPP version to speak upstream; `nil` passes through whatever the charger speaks.
    public var upstreamVersion: OCPPVersion?
    public var recording: RecordingConfiguration
    /// The largest WebSocket message accepted from either side; larger ones close the leg with 1009.
    public var maxFrameBytes: Int
    /// How long dialling and the upstream handshake may take before the charger gets 504.
    public var upstreamTimeout: Duration
    /// How long a close handshake may take before the TCP connection is dropped.
    public var closeTimeout: Duration
    /// How long a graceful shutdown waits for connections to close.
    public var shutdownTimeout: Duration
    /// Event-loop threads (one is fastest on two cores).
    public var eventLoops: Int
    /// Chargers connected or in their handshake at once; more are refused with 503 (and `Retry-After`).
    /// By default as many as the process's descriptor limit allows (two sockets per charger), so that the
    /// relay refuses clearly instead of failing to accept or to dial.
    public var maxConnections: Int = RelayConfiguration.descriptorBoundConnections()
    /// A leg silent this long is pinged, and dropped when still silent one interval later; 0 never pings.
    public var pingInterval: Duration = .seconds(60)
    /// How long a charger may take to send its HTTP upgrade request before the relay drops the connection
    /// (a client that connects and sends nothing, or a byte a minute, must not hold a socket).
    public var handshakeTimeout: Duration = .seconds(30)
    /// How long a translated CALL may wait for its answer before its sender gets a CALLERROR.
    public var callTimeout: Duration = .seconds(30)
    /// How long a translated session keeps the backend's leg after its charger left, to deliver what the relay
    /// answered on the backend's behalf (and the charger's calls in flight).
    public var drainTimeout: Duration = .seconds(30)
    /// How long a charger is kept connected when its upstream is lost as a restarting backend's is (closed with
    /// 1001, 1012 or 1013, or the connection lost) while the relay dials it again; 0: the loss reaches the charger
    /// at once (strictly transparent). Routes may say otherwise.
    public var reconnectGrace: Duration = .zero
    /// Whether a charger's CALL that breaks its version's schema is answered by the relay with the CALLERROR OCPP
    /// prescribes instead of being forwarded (`validation.reject_invalid_calls`; routes may say otherwise).
    public var rejectInvalidCalls = false
    /// The share of charger connections whose frames are judged against their version's schema as they are
    /// recorded (`validation.verdicts`: 1 every connection, 0 none); the verdicts of invalid frames are recorded
    /// beside them, counted in the metrics and shown by the console.
    public var verdictShare: Double = 1

    /// Whether the frames of connection number `connection` are judged (``verdictShare`` of the connections, spread
    /// evenly by number).
    public func judgesFrames(ofConnection connection: UInt64) -> Bool {
        verdictShare >= 1 || Double(connection % 1000) < verdictShare * 1000
    }
    /// Redials of lost upstreams per second across the relay (0: not paced): a restarted backend meets a trickle,
    /// not the fleet at once. It must let the fleet through within the grace: at 500 a second, 9,000 chargers are
    /// redialled in 18 s (at 50 they would need three minutes, and most graces would run out first).
    public var redialRate: Double = 500
    /// Handshakes carried out at once across the relay (0: no bound): in a storm, a charger whose request is in waits
    /// for a slot before its upstream is dialled, and holds it until its session starts or its connection closes.
    /// Thousands of handshakes at once leave their memory between the sessions' (4,000 at once: 28 KiB per idle
    /// connection; 18.6 with 512 slots).
    public var handshakes: Int = 512
    /// permessage-deflate (RFC 7692) with chargers that offer it (`compression.chargers: accept`). Off by default
    /// until a compressed connection's memory is bounded (66.6 KiB per idle connection against 17.6 uncompressed).
    public var compressChargers = false
    /// permessage-deflate offered to backends (`compression.upstream: offer`).
    public var compressUpstream = false
    /// The largest LZ77 window the relay keeps per peer to inflate its messages (`compression.window_bits`, 9 … 15):
    /// 2^bits bytes per compressed leg, besides zlib's state.
    public var compressionWindowBits = 12
    /// A folder of edited translation tables; nil: the tables built into the binary (`Mappings/` at build time).
    public var mappingsDirectory: String?
    /// The SQLite file of the translation state, or a `postgresql://` URL (several relays sharing it); `nil` puts a
    /// SQLite file beside the recordings.
    public var stateDatabase: String?
    /// The PostgreSQL password (from `translation.state_password_env`).
    public var statePassword: String?
    /// An operator's YAML laid over the tables (top-level keys are table file names).
    public var mappingOverrides: String?
    /// Per-charger upstreams and versions, first match wins; chargers no route matches use
    /// ``upstream`` and ``upstreamVersion``.
    public var routes: [Route] = []
    /// Backends beside the upstream for chargers no route gives its own list.
    public var mirrors: [MirrorSettings] = []
    /// A charger's average message rate (0: unlimited); over it, the relay stops reading the charger until its
    /// budget refills (its own TCP backpressure slows it; the other chargers are not affected).
    public var messagesPerSecond: Double = 50
    /// How many messages a charger may send at once (a boot, a queue sent after being offline).
    public var messageBurst: Int = 200
    /// Where `/metrics`, `/healthz` and `/readyz` are served (plain HTTP); `nil`: not served.
    public var metricsListen: (host: String, port: Int)?
    /// The console in the browser, when `console.listen` is set.
    public var console: ConsoleSettings?
    /// Set: the listener speaks TLS (wss://).
    public var listenerTLS: ListenerTLS?
    /// Trust roots and the relay's own certificate for wss:// upstreams.
    public var upstreamTLS: UpstreamTLSFiles?
    /// The allow-list and the charger passwords the relay checks itself.
    public var access = ChargerAccess()
    /// The password the relay presents upstream for chargers no route gives one (`nil`: the charger's header).
    public var upstreamPassword: String?
    /// What the upstream implements beyond its OCPP version (routes may say otherwise).
    public var upstreamExtensions: Set<UpstreamExtension> = []
    /// Whether a 1.6 charger's StartTransaction is answered before the 2.0.1 backend answers
    /// (`translation.early_start_answer`).
    public var earlyStartAnswer = false

    /// Whether the translation state is in a PostgreSQL database shared by several relays.
    public var stateIsShared: Bool { stateDatabasePath.contains("://") }

    /// Where the translation state lives.
    public var stateDatabasePath: String {
        stateDatabase ?? (recording.directory as NSString).appendingPathComponent("translation-state.sqlite")
    }

    public init(
        listenHost: String = "127.0.0.1",
        listenPort: Int = 8180,
        upstream: UpstreamURL,
        upstreamVersion: OCPPVersion? = nil,
        recording: RecordingConfiguration = RecordingConfiguration(),
        maxFrameBytes: Int = 1 << 20,
        upstreamTimeout: Duration = .seconds(10),
        closeTimeout: Duration = .seconds(5),
        shutdownTimeout: Duration = .seconds(5),
        eventLoops: Int = 1,
        mappingsDirectory: String? = nil,
        stateDatabase: String? = nil
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.upstream = upstream
        self.upstreamVersion = upstreamVersion
        self.recording = recording
        self.maxFrameBytes = maxFrameBytes
        self.upstreamTimeout = upstreamTimeout
        self.closeTimeout = closeTimeout
        self.shutdownTimeout = shutdownTimeout
        self.eventLoops = eventLoops
        self.mappingsDirectory = mappingsDirectory
        self.stateDatabase = stateDatabase
    }

    /// Raises the soft open-file limit to the hard one (as Go's runtime does): a relay holds two sockets per
    /// charger, and services often start with a soft limit of 1,024.
    public static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// The open-file limit shared by the sockets of each charger (its own, the upstream's and a mirror's each),
    /// less a reserve for recordings, the database and the listener.
    public static func descriptorBoundConnections(socketsPerCharger: Int = 2) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return 100_000
        }
        return max(1, (Int(clamping: limit.rlim_cur) - 64) / socketsPerCharger)
    }

    /// Splits `HOST:PORT` (or `[v6]:PORT`, or `:PORT` for all interfaces).
    public static func parseListen(_ text: String) throws(ConfigurationError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw ConfigurationError("listen address '\(text)' must be HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        return (host, port)
    }
}

/// The listener's TLS files (paths; read when the relay starts).
public struct ListenerTLS: Sendable, Equatable {
    public var certificate: String
    public var key: String
    /// CA file for charger certificates (security profile 3); `nil`: no client certificates.
    public var clientCA: String?
    /// The certificate's subject common name must equal the charger's identity.
    public var checkIdentity: Bool

    public init(certificate: String, key: String, clientCA: String? = nil, checkIdentity: Bool = false) {
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
        self.checkIdentity = checkIdentity
    }
}

/// TLS files for wss:// upstreams.
public struct UpstreamTLSFiles: Sendable, Equatable {
    public var ca: String?
    public var certificate: String?
    public var key: String?
}

extension RelayConfiguration {
    /// ``metricsListen`` as text (tuples are not comparable).
    var metricsListenText: String {
        metricsListen.map { "\($0.host):\($0.port)" } ?? ""
    }

    /// Whether a listen host only accepts connections from this machine.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

extension Duration {
    /// Seconds as messages say them: `10`, `2.5`, `0.05`.
    public var secondsText: String {
        let (seconds, attoseconds) = components
        guard attoseconds != 0 else { return "\(seconds)" }
        return "\(Double(seconds) + Double(attoseconds) / 1e18)"
    }
}

/// A configuration value is wrong; the message says which and why.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
