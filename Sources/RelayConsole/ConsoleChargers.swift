import Foundation
import NIOPosix
import OCPP
import Relay
import RelayConfig
import RelayRecording

/// A charger as the console shows it beside the connected ones: its recorded connections, read from the recordings'
/// indexes (the relay keeps no other memory of a charger that left).
struct RecordedConnection: Encodable, Sendable {
    /// `<runID>/<connection>`: the relay run that recorded it and the connection's number there.
    var key: String
    var runID: String
    var connection: UInt64
    var version: String?
    /// RFC 3339; `end` is absent while the connection is open, or when its relay stopped without closing it.
    var start: String
    var end: String?
    var lastSeen: String
    var frames: Int
    var messages: Int
    /// How it ended: who started the close (`charger`, `upstream`, `relay`), the code and the reason.
    var closedBy: String?
    var closeCode: Int?
    var closeReason: String?

    init(_ summary: ConnectionSummary) {
        key = summary.key
        runID = summary.runID
        connection = summary.connection
        version = summary.subprotocol.map(OCPPVersion.shortName(ofSubprotocol:))
        start = Timestamp.rfc3339(summary.start)
        end = summary.end.map(Timestamp.rfc3339)
        lastSeen = Timestamp.rfc3339(summary.lastSeen)
        frames = summary.frames
        messages = summary.messages
        closedBy = summary.closedBy
        closeCode = summary.closeCode
        closeReason = summary.closeReason
    }
}

/// One row of the chargers page: connected now (`live`), or seen in the recordings (`last`).
struct ConsoleChargerRow: Encodable, Sendable {
    var identity: String
    var connected: Bool
    var live: ConsoleCharger?
    /// The charger's latest recorded connection.
    var last: RecordedConnection?
}

/// One charger's page: whether it is connected, and every recorded connection, the latest first.
struct ConsoleChargerPage: Encodable, Sendable {
    var identity: String
    var connected: Bool
    var live: ConsoleCharger?
    var connections: [RecordedConnection]
}

extension ConsoleRoutes {
    /// How many chargers that are not connected the chargers page lists at most (the latest seen).
    static let recentKept = 2000

    /// The recorded connections of every charger, by charger (file I/O: on the thread pool).
    func recordedConnections() async throws -> [String: [ConnectionSummary]] {
        let directory = relay.configuration.recording.directory
        return try await NIOThreadPool.singleton.runIfActive {
            guard FileManager.default.fileExists(atPath: directory) else { return [:] }
            let connections = try RecordingCatalog(path: directory).connections()
            return Dictionary(grouping: connections, by: \.charger)
        }
    }

    /// The chargers page: those connected now, and with `all` those seen in the recordings that are not.
    func chargers(all: Bool) async throws -> [ConsoleChargerRow] {
        let live = await relay.consoleChargers()
        var rows = live.map { ConsoleChargerRow(identity: $0.identity, connected: true, live: $0) }
        guard all else { return rows }
        let recorded = try await recordedConnections()
        for index in rows.indices {
            rows[index].last = recorded[rows[index].identity]?.max { $0.start < $1.start }.map(RecordedConnection.init)
        }
        let connected = Set(live.map(\.identity))
        let left = recorded.filter { !connected.contains($0.key) }
            .compactMap { identity, connections in connections.max { $0.lastSeen < $1.lastSeen }.map { (identity, $0) }
            }
            .sorted { $0.1.lastSeen > $1.1.lastSeen }
            .prefix(Self.recentKept)
        rows += left.map { ConsoleChargerRow(identity: $0.0, connected: false, last: RecordedConnection($0.1)) }
        return rows.sorted { $0.identity < $1.identity }
    }

    /// One charger's page.
    func charger(_ identity: String) async throws -> ConsoleChargerPage {
        let live = await relay.consoleChargers().first { $0.identity == identity }
        let connections = (try await recordedConnections())[identity] ?? []
        return ConsoleChargerPage(
            identity: identity,
            connected: live != nil,
            live: live,
            connections: connections.sorted { $0.start > $1.start }.map(RecordedConnection.init)
        )
    }
}
