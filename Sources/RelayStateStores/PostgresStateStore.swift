import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import OCPPTranslation
import PostgresNIO
import RelayConfig

/// The translation state in PostgreSQL, shared by several relays: any of them continues a charger's
/// transactions after it reconnects through another.
///
/// **Ownership.** A relay that reads a charger's state on connect first claims the charger: the claim raises the
/// charger's epoch in `ocpp_relay_owner` and announces it (`NOTIFY ocpp_relay_owner`). Every write of that
/// charger's state (and of its mirrors' states) is fenced by the epoch the relay holds: it applies only while no
/// newer claim exists, and takes a share lock on the owner row, so that a claim waits for a write in progress and a
/// write after a claim finds it. A relay that hears of a newer claim from another relay, or whose write is fenced
/// out, closes its connection of that charger (`ownershipLost`). Two relays never write diverging state for one
/// charger; the newest connection wins across relays as it does within one.
package final class PostgresStateStore: TranslationStateStore, ChargerPasswordStore {
    typealias Location = PostgresLocation

    /// The schema, one migration per version, applied in order inside one transaction each.
    static let migrations: [String] = [
        """
        CREATE TABLE ocpp_relay_owner (
            charger TEXT PRIMARY KEY,
            relay TEXT NOT NULL,
            epoch BIGINT NOT NULL,
            claimed_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE TABLE ocpp_relay_state (
            key TEXT PRIMARY KEY,
            charger TEXT NOT NULL,
            state TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX ocpp_relay_state_charger ON ocpp_relay_state (charger);
        """,
        """
        CREATE TABLE ocpp_relay_password (
            charger TEXT PRIMARY KEY,
            hash TEXT NOT NULL,
            changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        """,
    ]

    static let channel = "ocpp_relay_owner"

    let location: Location
    private let client: PostgresClient
    private let relayID: String
    private let logger: Logger
    private let ownershipLost: @Sendable (String) -> Void
    /// The epoch this relay holds per charger it claimed.
    private let epochs = NIOLockedValueBox<[String: Int64]>([:])

    /// - Parameters:
    ///   - relayID: this relay's id (its run id): its own claims' announcements are not a reason to close.
    ///   - ownershipLost: called (off the event loops) with a charger another relay took over.
    package init(
        url: String,
        password: String?,
        relayID: String,
        logger: Logger,
        ownershipLost: @escaping @Sendable (String) -> Void
    ) throws(ConfigurationError) {
        location = try Location(url: url)
        var configuration = PostgresClient.Configuration(
            host: location.host,
            port: location.port,
            username: location.user,
            password: password,
            database: location.database,
            tls: location.tls
        )
        configuration.options.connectTimeout = .seconds(5)
        var quiet = logger
        quiet.logLevel = .error
        client = PostgresClient(configuration: configuration, backgroundLogger: quiet)
        self.relayID = relayID
        self.logger = logger
        self.ownershipLost = ownershipLost
    }

    /// The client's connection pool and the other relays' claims, until cancelled (the relay runs this in its task
    /// group for as long as it runs: no task outlives it).
    package func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { await self.listen() }
        }
    }

    /// The database did not answer in time.
    struct Unreachable: Error, CustomStringConvertible {
        let seconds: Int
        var description: String { "no connection within \(seconds) s" }
    }

    /// Reaches the database (within `timeout` seconds: the pool would keep trying) and creates or migrates the
    /// schema; ``run()`` must be running.
    package func prepare() async throws {
        let timeout = 10
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.migrate() }
            group.addTask {
                try await Task.sleep(for: .seconds(timeout))
                throw Unreachable(seconds: timeout)
            }
            try await group.next()
            group.cancelAll()
        }
    }

    private func migrate() async throws {
        _ = try await client.withConnection { connection in
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS ocpp_relay_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger
            )
        }
        for (index, migration) in Self.migrations.enumerated() {
            let version = index + 1
            try await client.withTransaction(logger: logger) { connection in
                // One relay migrates; the others wait for its lock, then find the version applied.
                try await connection.query("LOCK TABLE ocpp_relay_migrations IN EXCLUSIVE MODE", logger: logger)
                let applied = try await connection.query(
                    "SELECT version FROM ocpp_relay_migrations WHERE version = \(version)",
                    logger: logger
                ).collect()
                guard applied.isEmpty else { return }
                for statement in migration.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try await connection.query(PostgresQuery(unsafeSQL: String(statement)), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO ocpp_relay_migrations (version) VALUES (\(version))",
                    logger: logger
                )
            }
        }
    }

    /// Hears claims of other relays, reconnecting with a pause when the database goes away.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        for try await notification in notifications {
                            heard(notification.payload)
                        }
                    }
                }
            } catch {
                guard !Task.isCancelled else { return }
                logger.warning(
                    "lost the database's claim announcements; listening again",
                    metadata: ["error": "\(error)"]
                )
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// `epoch relay charger` (the charger's id last: it may hold spaces): a newer claim than the one held here by
    /// another relay closes the connection here.
    private func heard(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let epoch = Int64(parts[0]), parts[1] != relayID else { return }
        let charger = parts[2]
        let lost = epochs.withLockedValue { epochs -> Bool in
            guard let held = epochs[charger], held < epoch else { return false }
            epochs[charger] = nil
            return true
        }
        if lost { ownershipLost(charger) }
    }

    /// The charger a state key belongs to (a mirror's state is the charger's id, a separator, the mirror's name).
    static func charger(of key: String) -> String {
        String(key.prefix { $0 != "\u{1F}" })
    }

    /// A round trip to the database.
    package func check() async throws {
        _ = try await client.query("SELECT 1", logger: logger).collect()
    }

    package func load(identity: String) async throws -> ChargerState? {
        let charger = Self.charger(of: identity)
        if charger == identity { try await claim(charger) }
        let rows = try await client.query(
            "SELECT state FROM ocpp_relay_state WHERE key = \(identity)",
            logger: logger
        )
        for try await text in rows.decode(String.self) {
            return try JSONDecoder().decode(ChargerState.self, from: Data(text.utf8))
        }
        return nil
    }

    package func changedPassword(of identity: String) async throws -> PasswordHash? {
        let rows = try await client.query(
            "SELECT hash FROM ocpp_relay_password WHERE charger = \(identity)",
            logger: logger
        )
        for try await text in rows.decode(String.self) { return try PasswordHash(parsing: text) }
        return nil
    }

    package func storeChangedPassword(_ hash: PasswordHash, of identity: String) async throws {
        let text = hash.description
        try await client.query(
            """
            INSERT INTO ocpp_relay_password (charger, hash) VALUES (\(identity), \(text))
            ON CONFLICT (charger) DO UPDATE SET hash = EXCLUDED.hash, changed_at = now()
            """,
            logger: logger
        )
    }

    /// Takes the charger over: a new epoch, announced to the other relays when it is committed.
    private func claim(_ charger: String) async throws {
        let relayID = self.relayID
        let epoch = try await client.withTransaction(logger: logger) { connection -> Int64 in
            let rows = try await connection.query(
                """
                INSERT INTO ocpp_relay_owner (charger, relay, epoch) VALUES (\(charger), \(relayID), 1)
                ON CONFLICT (charger) DO UPDATE SET relay = EXCLUDED.relay, epoch = ocpp_relay_owner.epoch + 1,
                    claimed_at = now()
                RETURNING epoch
                """,
                logger: logger
            )
            var epoch: Int64 = 0
            for try await value in rows.decode(Int64.self) { epoch = value }
            let payload = "\(epoch) \(relayID) \(charger)"
            try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
            return epoch
        }
        epochs.withLockedValue { $0[charger] = epoch }
    }

    package func save(_ batch: [StateWrite]) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let held = epochs.withLockedValue { $0 }
        let fenced = try await client.withTransaction(logger: logger) { connection -> [String] in
            var fenced: [String] = []
            for write in batch {
                let charger = Self.charger(of: write.identity)
                let epoch = held[charger] ?? 0
                let text = String(decoding: try encoder.encode(write.state), as: UTF8.self)
                // Applied only while this relay's claim is the newest; the owner row's share lock makes a newer
                // claim wait for this write, or this write see the newer claim.
                let rows = try await connection.query(
                    """
                    WITH owner AS (
                        SELECT 1 FROM ocpp_relay_owner WHERE charger = \(charger) AND epoch = \(epoch) FOR SHARE
                    )
                    INSERT INTO ocpp_relay_state (key, charger, state, updated_at)
                    SELECT \(write.identity), \(charger), \(text), now() FROM owner
                    ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
                    RETURNING key
                    """,
                    logger: logger
                ).collect()
                if rows.isEmpty { fenced.append(charger) }
            }
            return fenced
        }
        for charger in Set(fenced) {
            let lost = epochs.withLockedValue { $0.removeValue(forKey: charger) != nil }
            logger.warning(
                "another relay holds this charger now; its state is not written here",
                metadata: ["charger": "\(charger)"]
            )
            if lost { ownershipLost(charger) }
        }
    }
}

extension PostgresLocation {
    /// The TLS PostgresNIO is given for `sslMode`.
    var tls: PostgresClient.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case "disable": return .disable
        case "prefer", "require":
            // As libpq: encrypted, the server's certificate not checked.
            configuration.certificateVerification = .none
            return sslMode == "prefer" ? .prefer(configuration) : .require(configuration)
        case "verify-ca":
            configuration.certificateVerification = .noHostnameVerification
            return .require(configuration)
        default:
            return .require(configuration)
        }
    }
}
