/// Where chargers' translation state is kept across connections and restarts: the relay's SQLite file, or a
/// database several relays share. Called off the event loops; one charger's state is read when it connects
/// and written in batches (one transaction per batch, several chargers in it) while it is connected.
public protocol TranslationStateStore: Sendable {
    /// The stored state of a charger; `nil` when none is stored.
    func load(identity: String) async throws -> ChargerState?
    /// Stores the states of several chargers, all or none.
    func save(_ batch: [StateWrite]) async throws
    /// Reaches the store and readies its schema before the relay accepts chargers (a shared database).
    func prepare() async throws
    /// What the store needs running for as long as the relay runs (a shared database's connections and the other
    /// relays' announcements), until the task is cancelled; the relay runs it in its own task group, so nothing
    /// outlives the relay.
    func run() async
    /// Reaches the store (a shared database's health for `/readyz`); throws when it cannot.
    func check() async throws
}

extension TranslationStateStore {
    public func prepare() async throws {}
    public func run() async {}
    public func check() async throws {}
}

/// One charger's state to store.
public struct StateWrite: Sendable, Equatable {
    public var identity: String
    public var state: ChargerState

    public init(identity: String, state: ChargerState) {
        self.identity = identity
        self.state = state
    }
}
