import Foundation
import GRDB
import OCPPTranslation
import RelayConfig
import RelayRecording

/// The translation state of every charger in an embedded SQLite database (GRDB), one row per charger.
///
/// Written off the event loops, a batch per transaction; WAL mode keeps a batch at well under a millisecond.
/// The JSON encoder is made once and used inside the database's serial queue.
package final class SQLiteStateStore: TranslationStateStore, ChargerPasswordStore {
    private let database: DatabaseQueue
    let path: String
    private let encoder: JSONEncoder
    /// For the rows' `updated_at`.
    private let clock: RelayClock

    package init(path: String, clock: RelayClock = .system) throws {
        self.path = path
        self.clock = clock
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        var configuration = Configuration()
        configuration.journalMode = .wal
        database = try DatabaseQueue(path: path, configuration: configuration)
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "charger_state") { t in
                t.primaryKey("identity", .text)
                t.column("state", .text).notNull()
                t.column("updated_at", .text).notNull()
            }
        }
        migrator.registerMigration("v2 charger passwords") { db in
            try db.create(table: "charger_password") { t in
                t.primaryKey("identity", .text)
                t.column("hash", .text).notNull()
                t.column("changed_at", .text).notNull()
            }
        }
        try migrator.migrate(database)
    }

    package func changedPassword(of identity: String) async throws -> PasswordHash? {
        let text = try await database.read { db in
            try String.fetchOne(db, sql: "SELECT hash FROM charger_password WHERE identity = ?", arguments: [identity])
        }
        return try text.map { text throws in try PasswordHash(parsing: text) }
    }

    package func storeChangedPassword(_ hash: PasswordHash, of identity: String) async throws {
        let now = clock.rfc3339
        try await database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO charger_password (identity, hash, changed_at) VALUES (?, ?, ?)
                    ON CONFLICT(identity) DO UPDATE SET hash = excluded.hash, changed_at = excluded.changed_at
                    """,
                arguments: [identity, hash.description, now]
            )
        }
    }

    package func load(identity: String) async throws -> ChargerState? {
        let text = try await database.read { db in
            try String.fetchOne(db, sql: "SELECT state FROM charger_state WHERE identity = ?", arguments: [identity])
        }
        guard let text else { return nil }
        return try JSONDecoder().decode(ChargerState.self, from: Data(text.utf8))
    }

    package func save(_ batch: [StateWrite]) async throws {
        let encoder = self.encoder
        let now = clock.rfc3339
        try await database.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO charger_state (identity, state, updated_at) VALUES (?, ?, ?)
                    ON CONFLICT(identity) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                    """
            )
            for write in batch {
                let text = String(decoding: try encoder.encode(write.state), as: UTF8.self)
                try statement.execute(arguments: [write.identity, text, now])
            }
        }
    }
}
