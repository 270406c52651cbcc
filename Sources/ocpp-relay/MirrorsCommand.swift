import ArgumentParser
import Foundation
import RelayRecording
import RelayTools

struct MirrorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirrors",
        abstract: "How mirrors answered compared with the primary backend.",
        subcommands: [Report.self]
    )

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Per mirror and action: messages, matched, diverged, unanswered, dropped, and the fields that differ most (the go/no-go for a cutover)."
        )

        @Argument(help: "Recordings folders or segment files (several relays' folders are merged).")
        var paths: [String] = ["Recordings"]

        @Option(help: "Only this mirror.")
        var mirror: String?

        @Option(help: "Only this charger.")
        var charger: String?

        @Option(help: "Only from this time on (RFC 3339, e.g. 2026-11-27T06:00:00Z).")
        var since: String?

        @Option(help: "text or jsonl.")
        var format: String = "text"

        func run() throws {
            guard ["text", "jsonl"].contains(format) else { throw ValidationError("--format must be text or jsonl") }
            var sinceMicros: UInt64?
            if let since {
                guard let micros = Timestamp.parse(rfc3339: since) else {
                    throw ValidationError("--since must be an RFC 3339 UTC time like 2026-11-27T06:00:00Z")
                }
                sinceMicros = micros
            }
            let (report, problems) = try MirrorReport.read(
                paths: paths,
                filter: MirrorReport.Filter(mirror: mirror, charger: charger, since: sinceMicros)
            )
            for problem in problems { FileHandle.standardError.write(Data("warning: \(problem)\n".utf8)) }
            if format == "jsonl" {
                for line in report.jsonLines { print(line) }
            } else {
                print(report.text)
            }
        }
    }
}
