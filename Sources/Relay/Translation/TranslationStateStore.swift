import Foundation
import GRDB
import OCPPTranslation
import RelayRecording

/// The translation state of every charger, in an embedded SQLite database (GRDB), one row per charger.
///
/// Written synchronously whenever a charger's state changes, before the frames that depend on it are
/// forwarded: a relay killed right after a StartTransaction.conf still knows the transaction when the
/// StopTransaction comes. WAL mode keeps a write at well under a millisecond.
public final class TranslationStateStore: Sendable {
    private let database: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        var configuration = Configuration()
        configuration.journalMode = .wal
        database = try DatabaseQueue(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "charger_state") { t in
                t.primaryKey("identity", .text)
                t.column("state", .text).notNull()
                t.column("updated_at", .text).notNull()
            }
        }
        try migrator.migrate(database)
    }

    /// The stored state of a charger, or a fresh one.
    public func load(identity: String) throws -> ChargerState {
        let text = try database.read { db in
            try String.fetchOne(db, sql: "SELECT state FROM charger_state WHERE identity = ?", arguments: [identity])
        }
        guard let text else { return ChargerState() }
        return try JSONDecoder().decode(ChargerState.self, from: Data(text.utf8))
    }

    /// Stores a charger's state.
    public func save(identity: String, state: ChargerState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(state), as: UTF8.self)
        // Formatting by hand: an ISO8601DateFormatter made per write was a third of a translated MeterValues' CPU.
        let now = Timestamp.rfc3339(Timestamp.now())
        try database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO charger_state (identity, state, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT(identity) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                    """,
                arguments: [identity, text, now]
            )
        }
    }
}
