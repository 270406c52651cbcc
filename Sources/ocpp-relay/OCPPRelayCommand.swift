import ArgumentParser
import Relay
import RelayRecording

@main
struct OCPPRelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocpp-relay",
        abstract: "Relay, record and inspect OCPP traffic between chargers and their backend.",
        version: RelayVersion.current,
        subcommands: [
            ServeCommand.self, RecordingsCommand.self, ReplayCommand.self, MappingsCommand.self, RoutesCommand.self,
            AuthCommand.self, BenchCommand.self, SoakCommand.self, MirrorsCommand.self,
            DemoCommand.self,
        ]
    )
}
