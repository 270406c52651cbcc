import Foundation
import Testing

@testable import Relay
@testable import RelayConfig

@Suite("Charger access")
struct ChargerAccessTests {
    static let hash = PasswordHash.make(password: "correct-horse-battery-staple", rounds: PasswordHash.minimumRounds)

    func basic(_ user: String, _ password: String) -> String {
        BasicCredentials.header(user: user, password: password)
    }

    @Test("a hash verifies its password only, and survives its printed form")
    func hashes() throws {
        let parsed = try PasswordHash(parsing: Self.hash.description)
        #expect(parsed == Self.hash)
        #expect(parsed.verify("correct-horse-battery-staple"))
        #expect(!parsed.verify("correct-horse-battery-stapl"))
        #expect(!parsed.verify(""))
        // Two hashes of one password differ (random salt).
        #expect(PasswordHash.make(password: "x", rounds: PasswordHash.minimumRounds).salt != Self.hash.salt)
    }

    @Test(
        "malformed hashes are configuration errors",
        arguments: [
            "plain-password", "pbkdf2-sha256$100$c2FsdHNhbHQ=$" + String(repeating: "A", count: 44),
            "md5$210000$c2FsdHNhbHQ=$" + String(repeating: "A", count: 44), "pbkdf2-sha256$210000$!!$AAAA",
        ]
    )
    func malformed(text: String) {
        #expect(throws: ConfigurationError.self) { try PasswordHash(parsing: text) }
    }

    @Test("decisions: user must be the identity, password must match, unknown chargers are refused")
    func decisions() {
        let access = ChargerAccess(passwords: ["CP-1": Self.hash])
        let good = "correct-horse-battery-staple"
        #expect(access.authenticate("CP-1", authorization: basic("CP-1", good)) == .allowed)
        #expect(access.authenticate("CP-1", authorization: basic("CP-1", "nope")) == .unauthorized("wrong password"))
        #expect(
            access.authenticate("CP-1", authorization: basic("CP-2", good))
                == .unauthorized("the user name is not the charger's identity")
        )
        #expect(access.authenticate("CP-1", authorization: nil) == .unauthorized("no credentials"))
        #expect(
            access.authenticate("CP-1", authorization: "Bearer abc")
                == .unauthorized("credentials are not HTTP Basic")
        )
        #expect(
            access.authenticate("CP-9", authorization: basic("CP-9", good))
                == .unauthorized("no password is configured for this charger")
        )
        // Without passwords the relay does not check (the upstream may).
        #expect(ChargerAccess().authenticate("CP-9", authorization: nil) == .allowed)
    }

    @Test("accepted credentials are remembered per password hash; a wrong password is never cached")
    func cache() throws {
        let cache = VerifiedCredentials()
        let access = ChargerAccess(passwords: ["CP-1": Self.hash])
        let good = basic("CP-1", "correct-horse-battery-staple")
        // A wrong password is refused, and refused again: it never enters the cache.
        for _ in 0..<2 {
            #expect(
                access.authenticate("CP-1", authorization: basic("CP-1", "wrong-horse"), cache: cache)
                    == .unauthorized("wrong password")
            )
            #expect(!cache.contains(identity: "CP-1", hash: Self.hash, password: "wrong-horse"))
        }
        #expect(access.authenticate("CP-1", authorization: good, cache: cache) == .allowed)
        #expect(cache.contains(identity: "CP-1", hash: Self.hash, password: "correct-horse-battery-staple"))
        #expect(!cache.contains(identity: "CP-1", hash: Self.hash, password: "other"))
        // A new password in the configuration invalidates what was remembered.
        let rotated = PasswordHash.make(password: "new-password-0123456", rounds: PasswordHash.minimumRounds)
        #expect(!cache.contains(identity: "CP-1", hash: rotated, password: "correct-horse-battery-staple"))
        let after = ChargerAccess(passwords: ["CP-1": rotated])
        #expect(after.authenticate("CP-1", authorization: good, cache: cache) == .unauthorized("wrong password"))
    }

    @Test("the allow-list takes ids and patterns")
    func allowList() throws {
        let access = ChargerAccess(allowed: try ChargerMatcher(["CP-1", "glob:PILOT-*", "regex:^T[0-9]+$"]))
        #expect(access.isAllowed("CP-1") && access.isAllowed("PILOT-42") && access.isAllowed("T7"))
        #expect(!access.isAllowed("CP-2") && !access.isAllowed("pilot-42") && !access.isAllowed("T7x"))
        #expect(ChargerAccess().isAllowed("anyone"))
    }
}
