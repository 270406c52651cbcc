import NIOCore
import OCPP
import RelayObservability
import RelayRecording

extension RelayServer {
    /// The chargers connected now, read on each session's event loop (one task per loop).
    public func consoleChargers() async -> [ConsoleCharger] {
        let sessions = registry.live.filter { registry.current(for: $0.identity.value) === $0 }
        let byLoop = Dictionary(grouping: sessions) { ObjectIdentifier($0.eventLoop) }
        var chargers: [ConsoleCharger] = []
        for group in byLoop.values {
            guard let loop = group.first?.eventLoop else { continue }
            let snapshots = try? await loop.submit { group.map { $0.consoleSnapshot() } }.get()
            chargers += snapshots ?? []
        }
        return chargers.sorted { $0.identity < $1.identity }
    }

    /// The Prometheus exposition as `/metrics` serves it.
    public func metricsText() -> String {
        String(decoding: metrics.exposition(connectedChargers: registry.liveCount), as: UTF8.self)
    }
}
