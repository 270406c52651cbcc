import ArgumentParser
import Foundation
import OCPPReplay
import Relay
import RelayRecording
import RelayTools

struct RecordingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recordings",
        abstract: "List and show recordings.",
        subcommands: [List.self, Show.self, Stats.self, Verdicts.self, Cut.self, Redact.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per recorded connection.")

        @Argument(help: "Recordings folders or segment files (several relays' folders are merged by time).")
        var paths: [String] = ["Recordings"]

        func run() throws {
            let connections = try RecordingCatalog(paths: paths).connections { problem in
                FileHandle.standardError.write(Data("warning: \(problem)\n".utf8))
            }
            print(RecordingListing.render(connections))
        }
    }

    struct Cut: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Cut one charger's connection, a time window or one transaction into a self-contained fixture file."
        )

        @Argument(help: "Recordings folders or segment files (several relays' folders are merged by time).")
        var paths: [String]

        @Option(help: "The charger.")
        var charger: String?

        @Option(help: "The connection (as recordings list shows it); default: the charger's first.")
        var connection: String?

        @Option(help: "Only from this time on (RFC 3339, e.g. 2026-11-27T06:00:00Z).")
        var from: String?

        @Option(help: "Only up to this time (RFC 3339).")
        var to: String?

        @Option(help: "Only this transaction (1.6 transactionId or 2.0.1 transaction id), after the boot exchange.")
        var transaction: String?

        @Option(name: .shortAndLong, help: "The fixture file to write (default: standard output).")
        var output: String?

        func run() throws {
            func time(_ text: String?, _ name: String) throws -> UInt64? {
                guard let text else { return nil }
                guard let micros = Timestamp.parse(rfc3339: text) else {
                    throw ValidationError("--\(name) must be an RFC 3339 UTC time like 2026-11-27T06:00:00Z")
                }
                return micros
            }
            let fixture: Fixture
            do {
                guard !paths.isEmpty else { throw ValidationError("name a recordings folder or segment file") }
                fixture = try FixtureBuilder.fixture(
                    from: paths,
                    selection: .init(
                        charger: charger,
                        connection: connection,
                        from: try time(from, "from"),
                        to: try time(to, "to"),
                        transaction: transaction
                    )
                )
            } catch let error as ValidationError {
                throw error
            } catch {
                throw fail("cannot cut \(paths.joined(separator: ", ")): \(error)", code: 2)
            }
            try RecordingsCommand.write(fixture.text, to: output)
        }
    }

    struct Redact: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Replace idTags/idTokens with keyed pseudonyms (same length and kind) and remove secrets from a fixture."
        )

        @Argument(help: "The fixture file.")
        var fixture: String

        @Option(
            help: "The pseudonym key (or OCPP_RELAY_REDACT_KEY, or --key-file). The same key gives the same pseudonyms."
        )
        var key: String?

        @Option(help: "A file holding the pseudonym key.")
        var keyFile: String?

        @Option(name: .shortAndLong, help: "The redacted fixture to write (default: standard output).")
        var output: String?

        func run() throws {
            var secret = key ?? ProcessInfo.processInfo.environment["OCPP_RELAY_REDACT_KEY"]
            if let keyFile {
                guard let data = FileManager.default.contents(atPath: keyFile) else {
                    throw ValidationError("cannot read the key file \(keyFile)")
                }
                secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let secret, !secret.isEmpty else {
                throw ValidationError(
                    "give a key: --key, --key-file or OCPP_RELAY_REDACT_KEY (there is no default on purpose)"
                )
            }
            let input: Fixture
            do {
                let found = try ReplayFixtures.collect([fixture], charger: nil, everyConnection: false)
                guard found.count == 1 else {
                    throw FixtureError("\(found.count) fixtures in \(fixture); redact one file at a time")
                }
                input = found[0].fixture
            } catch {
                throw fail("cannot read \(fixture): \(error)", code: 2)
            }
            try RecordingsCommand.write(try Redactor(key: secret).redact(input).text, to: output)
        }
    }

    static func write(_ text: String, to output: String?) throws {
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            print(text, terminator: "")
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Totals: messages, bytes on disk, compression ratio.")

        @Argument(help: "Recordings folders or segment files.")
        var paths: [String] = ["Recordings"]

        func run() throws {
            let catalog = try RecordingCatalog(paths: paths)
            let connections = try catalog.connections { problem in
                FileHandle.standardError.write(Data("warning: \(problem)\n".utf8))
            }
            let bytes = catalog.segments.compactMap {
                try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int
            }
            print(RecordingListing.stats(connections, segmentBytes: bytes.reduce(0, +), segments: bytes.count))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the frames and events of a recording.")

        @Argument(help: "Recordings folders or segment files (several relays' folders are merged by time).")
        var paths: [String]

        @Option(help: "Only this charger's connections.")
        var charger: String?

        @Option(help: "text (for people) or jsonl (one JSON object per line, a stable interface).")
        var format: String = "text"

        @Option(help: "Colour text output: auto, always, never.")
        var color: String = "auto"

        func run() throws {
            guard let format = RecordingPrinter.Format(rawValue: format) else {
                throw ValidationError("--format must be text or jsonl")
            }
            let colored: Bool
            switch color {
            case "always": colored = true
            case "never": colored = false
            case "auto":
                colored = format == .text && isatty(1) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
            default: throw ValidationError("--color must be auto, always or never")
            }
            var printer = RecordingPrinter(format: format, charger: charger, color: colored)
            guard !paths.isEmpty else { throw ValidationError("name a recordings folder or segment file") }
            let problems = try printer.print(paths: paths) { print($0) }
            for problem in problems {
                FileHandle.standardError.write(Data("warning: \(problem)\n".utf8))
            }
        }
    }

    struct Verdicts: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Judge every frame chargers and backends sent against its version's schema: invalid frames by "
                + "vendor, model and firmware and by action, with the most frequent reasons and an example each."
        )

        @Argument(help: "Recordings folders or segment files (several relays' folders are merged by time).")
        var paths: [String]

        @Option(help: "text (for people) or jsonl (one JSON object per group and action).")
        var format: String = "text"

        @Option(help: "Reasons shown per action in text.")
        var reasons = 3

        func run() throws {
            guard ["text", "jsonl"].contains(format) else { throw ValidationError("--format must be text or jsonl") }
            guard !paths.isEmpty else { throw ValidationError("name a recordings folder or segment file") }
            var report = VerdictReport()
            try report.read(paths: paths)
            for problem in report.problems {
                FileHandle.standardError.write(Data("warning: \(problem)\n".utf8))
            }
            if format == "jsonl" {
                for line in report.jsonLines() { print(line) }
            } else {
                print(report.text(reasons: reasons))
            }
        }
    }
}
