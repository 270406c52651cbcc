import ArgumentParser
import Foundation
import OCPPTranslation
import Relay
import RelayConfig
import RelayTools

struct MappingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mappings",
        abstract: "Check, show and export the OCPP 1.6 ↔ 2.0.1 mapping tables.",
        subcommands: [Check.self, Show.self, Export.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Validate the tables, against the official OCPP JSON schemas too (their facts are built in). Exit 1 on errors."
        )

        @Argument(help: "A folder of tables (default: the tables built into the binary).")
        var directory: String?

        @Option(help: "A YAML overrides file to lay over the tables.")
        var overrides: String?

        @Option(
            help: ArgumentHelp(
                "Not needed any more: the facts of the schemas of the pinned `ocpp` package are built in.",
                visibility: .hidden
            )
        )
        var schemas: String?

        func run() throws {
            if schemas != nil {
                FileHandle.standardError.write(
                    Data("note: --schemas is not read: the official schemas' facts are built into the binary\n".utf8)
                )
            }
            let tables = MappingTables.load(directory: directory, overrides: overrides)
            var problems = tables.diagnostics
            if tables.isUsable { problems += tables.checkAgainstSchemas() }
            for problem in problems { print(problem) }
            let errors = problems.filter { $0.severity == .error }.count
            print(
                errors == 0
                    ? "mappings OK (1.6 chargers on 2.0.1 backends: \(tables.charger.count) charger and "
                        + "\(tables.backend.count) backend messages; 2.0.1 chargers on 1.6 backends: "
                        + "\(tables.reverseCharger.count) charger and \(tables.reverseBackend.count) backend messages; "
                        + "the 2.1 step: \(tables.step21.charger.count + tables.step21.backend.count) 2.1-only messages, "
                        + "\(tables.step21.enums.count) enum fields)"
                    : "\(errors) error(s)"
            )
            if errors > 0 { throw ExitCode(1) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print what each message becomes, the enum maps and the key table."
        )

        @Argument(help: "A folder of tables (default: the tables built into the binary).")
        var directory: String?

        @Option(help: "A YAML overrides file to lay over the tables.")
        var overrides: String?

        func run() throws {
            let tables = MappingTables.load(directory: directory, overrides: overrides)
            for problem in tables.diagnostics {
                FileHandle.standardError.write(Data("\(problem)\n".utf8))
            }
            print(tables.summary)
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the tables built into the binary to a folder, to edit them (then translation.mappings).",
        )

        @Argument(help: "The folder to write (created if needed).")
        var directory: String

        @Flag(help: "Replace tables that are already there.")
        var force = false

        func run() throws {
            do {
                for path in try MappingTables.exportBuiltIn(to: directory, replace: force) { print(path) }
            } catch {
                throw ValidationError(error.message)
            }
        }
    }
}
