import RelayConfig

/// Charger passwords a backend changed through the relay (SetVariables of `SecurityCtrlr.BasicAuthPassword`, or a
/// 1.6 ChangeConfiguration of `AuthorizationKey`, accepted by the charger). When the relay checks chargers'
/// passwords itself (`auth.passwords`), a changed password supersedes the configured one from then on: the
/// charger reconnects with it. Kept with the translation state, so that every relay sharing a PostgreSQL state
/// knows it, and a relay restarted after the change still admits the charger.
package protocol ChargerPasswordStore: Sendable {
    /// The changed password of a charger (as its hash), or `nil` when the configured one stands.
    func changedPassword(of identity: String) async throws -> PasswordHash?
    /// Stores a charger's changed password (as its hash).
    func storeChangedPassword(_ hash: PasswordHash, of identity: String) async throws
}
