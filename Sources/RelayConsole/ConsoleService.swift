import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import Relay
import RelayConfig
import RelayRecording
import ServiceLifecycle

/// The console in the browser (`console.listen`): its pages, a JSON API under `/api/` and a live stream of one
/// charger's frames (server-sent events), on Hummingbird. Runs beside the relay in its service group.
public struct ConsoleService: Service {
    let relay: RelayServer
    let settings: ConsoleSettings
    let logger: Logger
    let onListening: @Sendable (_ url: String) -> Void

    public init(
        relay: RelayServer,
        settings: ConsoleSettings,
        logger: Logger,
        onListening: @escaping @Sendable (_ url: String) -> Void = { _ in }
    ) {
        self.relay = relay
        self.settings = settings
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let tls = try relay.configuration.listenerTLS?.serverConfiguration()
        let auth = ConsoleAuth(settings: settings, secure: tls != nil, clock: relay.clock)
        let sampler = MetricsSampler()
        let router = Router()
        router.middlewares.add(ConsoleAuthMiddleware(auth: auth))
        ConsoleRoutes(
            relay: relay,
            auth: auth,
            sampler: sampler,
            redaction: ConsoleRedaction(redactTokens: settings.redactTokens)
        ).add(to: router)
        let scheme = tls == nil ? "http" : "https"
        let app = Application(
            router: router,
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { [onListening, logger] channel in
                let port = channel.localAddress?.port ?? 0
                let host = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
                logger.info("console", metadata: ["address": "\(scheme)://\(host):\(port)/"])
                onListening("\(scheme)://\(host):\(port)/")
            },
            logger: logger
        )
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    sampler.sample(relay.metricsText(), time: relay.clock.wallSeconds)
                    relay.console.keepalive()
                    // Cancelled when the application has ended: the loop ends, and the console with it, cleanly.
                    try? await Task.sleep(for: .seconds(MetricsSampler.interval))
                }
            }
            // The application ends on the service group's graceful shutdown; the sampler with it.
            try await app.run()
            group.cancelAll()
        }
    }
}
