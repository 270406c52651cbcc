import ArgumentParser
import Foundation
import Logging
import Relay
import RelayConfig
import RelayConsole
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Relay chargers to an upstream backend and record every frame."
    )

    @Option(help: "Address for chargers, HOST:PORT (default 127.0.0.1:8180).")
    var listen: String?

    @Option(help: "Upstream backend URL; each charger is relayed to <URL>/<chargePointId>.")
    var upstream: String?

    @Option(help: "OCPP version to speak upstream: 1.6, 2.0.1, 2.1 or passthrough (default).")
    var upstreamVersion: String?

    @Option(help: "Folder for recordings (default Recordings).")
    var recordings: String?

    @Option(help: "Largest message accepted from either side, e.g. 1MiB (default); larger ones close with 1009.")
    var maxFrameSize: String?

    @Option(help: "Folder of edited 1.6 ↔ 2.0.1 mapping tables (default: the tables built into the binary).")
    var mappings: String?

    @Option(help: "SQLite file of the translation state (default: translation-state.sqlite in the recordings folder).")
    var state: String?

    @Option(help: "YAML configuration file; flags override its values.")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String?

    @Option(help: "HOST:PORT for /metrics, /healthz and /readyz (plain HTTP; default: not served).")
    var metricsListen: String?

    @Flag(help: "Allow a plaintext listener on an address other than loopback (a proxy in front terminates TLS).")
    var plaintext = false

    func settings() throws -> RelaySettings {
        let file = try config.map { try RelaySettings.load(path: $0) } ?? RelaySettings()
        // Each flag sets one setting, by its key.
        var flags = RelaySettings()
        let given: [(String, String?)] = [
            ("listen", listen), ("upstream", upstream), ("upstream_version", upstreamVersion),
            ("recordings.directory", recordings), ("limits.max_frame_size", maxFrameSize), ("log_level", logLevel),
            ("translation.mappings", mappings), ("translation.state", state), ("metrics.listen", metricsListen),
            ("plaintext", plaintext ? "true" : nil),
        ]
        for case (let key, let value?) in given { flags[key] = .scalar(value) }
        return file.overridden(by: flags)
    }

    func run() async throws {
        RelayConfiguration.raiseDescriptorLimit()
        // A recording over a file size limit is a failed write (EFBIG) the recorder handles, not a reason to die.
        signal(SIGXFSZ, SIG_IGN)
        let settings: RelaySettings
        let configuration: RelayConfiguration
        do {
            settings = try self.settings()
            configuration = try settings.resolve()
        } catch let error as ConfigurationError {
            // EX_USAGE, as for a bad flag, without the usage text under a configuration error.
            throw fail(error.message, code: 64)
        }
        let logger = try Logging.makeLogger(level: settings.logLevel)
        let relay: RelayServer
        do {
            relay = try RelayServer(configuration: configuration, logger: logger) { host, port in
                // One line on standard output that scripts can wait for (useful with port 0).
                let shown = host.contains(":") ? "[\(host)]" : host
                let scheme = configuration.listenerTLS == nil ? "ws" : "wss"
                FileHandle.standardOutput.write(Data("listening on \(scheme)://\(shown):\(port)\n".utf8))
            }
        } catch let error as ConfigurationError {
            // EX_USAGE, as for a bad flag, without the usage text under a configuration error.
            throw fail(error.message, code: 64)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: relay)]
        if let console = configuration.console {
            let service = ConsoleService(relay: relay, settings: console, logger: logger) { url in
                FileHandle.standardOutput.write(Data("console on \(url)\n".utf8))
            }
            services.append(.init(service: service))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        // SIGHUP: read the configuration again and apply it to new connections.
        let reloader = Task { [self] in
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                do {
                    let notes = try relay.reload(try self.settings().resolve())
                    for note in notes { logger.warning("\(note)") }
                    logger.notice("configuration reloaded; connected chargers keep theirs")
                } catch {
                    logger.error("configuration not reloaded; the running one stays", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { reloader.cancel() }
        try await group.run()
    }
}
