import ArgumentParser
import Foundation
import Relay
import RelayConfig

struct AuthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract: "Charger credentials the relay checks itself.",
        subcommands: [Hash.self]
    )

    struct Hash: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hash a charger password for auth.passwords (reads the password from standard input).",
            discussion: """
                echo -n 'the charger password' | ocpp-relay auth hash
                Put the printed line under auth.passwords as `CHARGER-ID: "<hash>"`; the password itself is never stored.
                """
        )

        @Option(
            help: """
                PBKDF2-SHA256 rounds (OWASP's 210,000 by default; at least 10,000): more is slower to crack and to \
                check, which a reconnect storm after a restart pays once per charger.
                """
        )
        var rounds = PasswordHash.defaultRounds

        func run() throws {
            guard rounds >= PasswordHash.minimumRounds else {
                throw ValidationError("--rounds must be at least \(PasswordHash.minimumRounds)")
            }
            var password = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            if password.hasSuffix("\n") { password.removeLast() }
            if password.hasSuffix("\r") { password.removeLast() }
            guard !password.isEmpty else { throw ValidationError("no password on standard input") }
            print(PasswordHash.make(password: password, rounds: rounds))
        }
    }
}
