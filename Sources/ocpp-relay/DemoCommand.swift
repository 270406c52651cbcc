import ArgumentParser
import Foundation
import OCPPPeers
import RelayDemo

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Run the relay between a built-in backend and three scripted chargers (1.6, 2.0.1, and 1.6 translated to "
            + "2.0.1), then print the recording."
    )

    @Option(help: "Folder for the demo's recordings (default: a new temporary folder).")
    var recordings: String?

    func run() async throws {
        let folder =
            recordings ?? NSTemporaryDirectory() + "ocpp-relay-demo-"
            + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let color = isatty(1) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        try await Demo.run(Demo.Options(recordings: folder, color: color)) { print($0) }
    }
}
