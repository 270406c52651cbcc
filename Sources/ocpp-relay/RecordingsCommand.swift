import ArgumentParser
import Foundation
import Relay
import RelayRecording

struct RecordingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recordings",
        abstract: "List and show recordings.",
        subcommands: [List.self, Show.self, Stats.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per recorded connection.")

        @Argument(help: "A recordings folder or segment file.")
        var path: String = "Recordings"

        func run() throws {
            let connections = try RecordingCatalog(path: path).connections { problem in
                FileHandle.standardError.write(Data("warning: \(problem)\n".utf8))
            }
            print(RecordingListing.render(connections))
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Totals: messages, bytes on disk, compression ratio.")

        @Argument(help: "A recordings folder or segment file.")
        var path: String = "Recordings"

        func run() throws {
            let catalog = try RecordingCatalog(path: path)
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

        @Argument(help: "A recordings folder or segment file.")
        var path: String

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
            let problems = try printer.print(path: path) { print($0) }
            for problem in problems {
                FileHandle.standardError.write(Data("warning: \(problem)\n".utf8))
            }
        }
    }
}
