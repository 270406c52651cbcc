import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import OCPP
import OCPPTranslation
import OCPPTransport
import RelayConfig
import RelayObservability
import RelayRecording
import RelayStateStores

extension RelayServer {
    /// The translation engine for a charger of the other version than its upstream.
    static func translation(
        _ direction: TranslationDirection,
        identity: String,
        tables: MappingTables,
        state: ChargerState,
        uuids: UUIDSource,
        clock: RelayClock,
        options: TranslationOptions = .init(),
        callTimeout: Duration
    ) -> any VersionTranslation {
        let translationClock = TranslationClock(
            now: { clock.rfc3339 },
            uptime: { clock.uptime },
            makeID: { uuids.next() }
        )
        guard
            let engine = Translations.engine(
                charger: direction.charger,
                upstream: direction.upstream,
                identity: identity,
                tables: tables,
                state: state,
                clock: translationClock,
                options: options,
                callTimeout: callTimeout
            )
        else { preconditionFailure("a translation direction names a pair the engine translates") }
        return engine
    }
}

extension RelayServer {
    /// Receive buffers start small: OCPP frames are a few hundred bytes, and every idle charger keeps one
    /// per socket (they grow for bursts).
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 256, initial: 512, maximum: 65536)

    func makeBootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Reads per readiness event (NIO's default): a held leg is read at most 4 × 64 KiB past its hold.
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(.recvAllocator, value: RelayServer.receiveBuffers)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try upgrades.configureChargerPipeline(channel)
                }
            }
    }

}
