import Foundation
import OCPP
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
    public var upstreamTimeoutSeconds: Double
    /// How long a close handshake may take before the TCP connection is dropped.
    public var closeTimeoutSeconds: Double
    /// How long a graceful shutdown waits for connections to close.
    public var shutdownTimeoutSeconds: Double
    /// Event-loop threads (one is fastest on two cores).
    public var eventLoops: Int
    /// How long a charger may take to send its HTTP upgrade request before the relay drops the connection
    /// (a client that connects and sends nothing, or a byte a minute, must not hold a socket).
    public var handshakeTimeoutSeconds: Double = 30
    /// How long a translated CALL may wait for its answer before its sender gets a CALLERROR.
    public var callTimeoutSeconds: Double = 30
    /// The folder holding the translation tables (`Mappings/`).
    public var mappingsDirectory: String
    /// The SQLite file of the translation state; `nil` puts it beside the recordings.
    public var stateDatabase: String?
    /// An operator's YAML laid over the tables (top-level keys are table file names).
    public var mappingOverrides: String?
    /// Per-charger upstreams and versions, first match wins; chargers no route matches use
    /// ``upstream`` and ``upstreamVersion``.
    public var routes: [Route] = []

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
        upstreamTimeoutSeconds: Double = 10,
        closeTimeoutSeconds: Double = 5,
        shutdownTimeoutSeconds: Double = 5,
        eventLoops: Int = 1,
        mappingsDirectory: String = "Mappings",
        stateDatabase: String? = nil
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.upstream = upstream
        self.upstreamVersion = upstreamVersion
        self.recording = recording
        self.maxFrameBytes = maxFrameBytes
        self.upstreamTimeoutSeconds = upstreamTimeoutSeconds
        self.closeTimeoutSeconds = closeTimeoutSeconds
        self.shutdownTimeoutSeconds = shutdownTimeoutSeconds
        self.eventLoops = eventLoops
        self.mappingsDirectory = mappingsDirectory
        self.stateDatabase = stateDatabase
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
