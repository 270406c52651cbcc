import Crypto
import Foundation
import NIOConcurrencyHelpers
import _CryptoExtras

/// A charger password as the configuration stores it: `pbkdf2-sha256$<rounds>$<salt>$<key>` (base64), made by
/// `ocpp-relay auth hash`. The relay never holds a charger's password in the clear.
///
/// The default cost is OWASP's for PBKDF2-SHA256 (210,000 rounds, tens of milliseconds per check). OCPP passwords are
/// machine-made secrets of 16 to 40 characters (2.0.1's BasicAuthPassword has at least 16); a fleet whose passwords
/// are may choose fewer rounds (at least ``minimumRounds``) so that a reconnect storm after a restart is admitted
/// faster. Accepted credentials are remembered (``VerifiedCredentials``), so reconnects cost a SHA-256.
public struct PasswordHash: Sendable, Hashable, CustomStringConvertible {
    public static let scheme = "pbkdf2-sha256"
    public static let defaultRounds = 210_000
    public static let minimumRounds = 10_000

    public let rounds: Int
    public let salt: [UInt8]
    public let key: [UInt8]

    public init(parsing text: String) throws(ConfigurationError) {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.scheme, let rounds = Int(parts[1]), rounds >= Self.minimumRounds,
            let salt = Data(base64Encoded: String(parts[2])), salt.count >= 8,
            let key = Data(base64Encoded: String(parts[3])), key.count >= 16
        else {
            throw ConfigurationError(
                "a password hash must look like \(Self.scheme)$ROUNDS$SALT$KEY (made by `ocpp-relay auth hash`)"
            )
        }
        self.rounds = rounds
        self.salt = Array(salt)
        self.key = Array(key)
    }

    init(rounds: Int, salt: [UInt8], key: [UInt8]) {
        self.rounds = rounds
        self.salt = salt
        self.key = key
    }

    /// Hashes a new password with a random salt.
    public static func make(password: String, rounds: Int = defaultRounds) -> PasswordHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return PasswordHash(rounds: rounds, salt: salt, key: derive(password, salt: salt, rounds: rounds))
    }

    /// Whether `password` is the one hashed (compared in constant time).
    public func verify(_ password: String) -> Bool {
        let candidate = Self.derive(password, salt: salt, rounds: rounds)
        guard candidate.count == key.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(candidate, key) { difference |= a ^ b }
        return difference == 0
    }

    private static func derive(_ password: String, salt: [UInt8], rounds: Int) -> [UInt8] {
        // Only fails for parameters this type never passes (32 bytes out). The rounds were checked against
        // `minimumRounds` where the hash was parsed or made.
        let key = try! KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8),
            salt: salt,
            using: .sha256,
            outputByteCount: 32,
            unsafeUncheckedRounds: rounds
        )
        return key.withUnsafeBytes { Array($0) }
    }

    public var description: String {
        "\(Self.scheme)$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }
}

/// Who may connect, checked by the relay before it dials upstream: an allow-list of charger ids or patterns
/// (others get 404) and, when configured, the charger's Basic credentials (security profiles 1 and 2; a failed
/// check is 401 with `WWW-Authenticate`).
public struct ChargerAccess: Sendable {
    /// `nil`: every charger id is allowed.
    public var allowed: ChargerMatcher?
    /// `nil`: the relay does not check credentials (the upstream may).
    public var passwords: [String: PasswordHash]?
    /// Whether the charger's `Authorization` header goes upstream (when no route sets upstream credentials).
    public var forwardAuthorization = true

    public init(allowed: ChargerMatcher? = nil, passwords: [String: PasswordHash]? = nil) {
        self.allowed = allowed
        self.passwords = passwords
    }

    public enum Decision: Sendable, Equatable {
        case allowed
        /// Not on the allow-list: 404.
        case unknown
        /// Missing or wrong credentials: 401; the reason is for logs and recordings (never the password).
        case unauthorized(String)
    }

    /// The allow-list check alone (cheap; done first).
    public func isAllowed(_ identity: String) -> Bool {
        allowed.map { $0.match(identity) != nil } ?? true
    }

    /// The credentials check: the Basic user must be the charger's identity (OCPP security profiles) and its
    /// password the one hashed for it: the one a backend `changed` through the relay, else the configured one.
    /// Costs one PBKDF2 unless `cache` already saw these credentials accepted.
    public func authenticate(
        _ identity: String,
        authorization: String?,
        cache: VerifiedCredentials? = nil,
        changed: PasswordHash? = nil
    ) -> Decision {
        guard let passwords else { return .allowed }
        guard let hash = changed ?? passwords[identity] else {
            return .unauthorized("no password is configured for this charger")
        }
        guard let (user, password) = BasicCredentials.parse(authorization) else {
            return .unauthorized(authorization == nil ? "no credentials" : "credentials are not HTTP Basic")
        }
        guard user == identity else { return .unauthorized("the user name is not the charger's identity") }
        if let cache, cache.contains(identity: identity, hash: hash, password: password) { return .allowed }
        guard hash.verify(password) else { return .unauthorized("wrong password") }
        cache?.insert(identity: identity, hash: hash, password: password)
        return .allowed
    }
}

/// Credentials already accepted, so a reconnecting charger costs a SHA-256 instead of a PBKDF2. Keyed by the
/// stored hash too: a changed password in the configuration invalidates the entry.
public final class VerifiedCredentials: Sendable {
    private let entries = NIOLockedValueBox<[String: [UInt8]]>([:])

    public init() {}

    private static func digest(_ hash: PasswordHash, _ password: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array(hash.description.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(password.utf8))
        return Array(hasher.finalize())
    }

    func contains(identity: String, hash: PasswordHash, password: String) -> Bool {
        let digest = Self.digest(hash, password)
        return entries.withLockedValue { $0[identity] } == digest
    }

    func insert(identity: String, hash: PasswordHash, password: String) {
        let digest = Self.digest(hash, password)
        entries.withLockedValue { $0[identity] = digest }
    }
}

/// HTTP Basic credentials (RFC 7617).
package enum BasicCredentials {
    /// The user and password of a `Basic` Authorization header.
    package static func parse(_ authorization: String?) -> (user: String, password: String)? {
        guard let authorization, authorization.lowercased().hasPrefix("basic ") else { return nil }
        let encoded = authorization.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8),
            let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// A `Basic` Authorization header value.
    package static func header(user: String, password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }
}
