import ArgumentParser
import OCPP
import OCPPTransport
import Relay
import RelayConfig

struct RoutesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "Check the routes of a configuration and see which one a charger takes.",
        subcommands: [Check.self, Which.self]
    )

    static func load(_ path: String) throws -> RelayConfiguration {
        do {
            return try RelaySettings.load(path: path).resolve()
        } catch {
            throw ValidationError(error.message)
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and list its routes in order."
        )

        @Argument(help: "The YAML configuration file.")
        var config: String

        func run() throws {
            let configuration = try RoutesCommand.load(config)
            for (index, route) in configuration.routes.enumerated() {
                print(
                    "\(index + 1). \(route.name): \(route.chargers) → \(route.upstream) (\(route.upstreamVersion?.shortName ?? "passthrough"))"
                )
            }
            print("default: \(configuration.upstream) (\(configuration.upstreamVersion?.shortName ?? "passthrough"))")
        }
    }

    struct Which: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say which upstream a charger is relayed to, and why."
        )

        @Argument(help: "The charge point identity.")
        var charger: String

        @Option(help: "The YAML configuration file.")
        var config: String

        func run() throws {
            let configuration = try RoutesCommand.load(config)
            let choice = configuration.route(for: charger)
            let version = choice.upstreamVersion?.shortName ?? "passthrough"
            let identity: ChargePointIdentity
            do {
                identity = try ChargePointIdentity(charger)
            } catch {
                throw ValidationError(error.message)
            }
            guard configuration.access.isAllowed(charger) else {
                print("\(charger) is not on the allow-list: refused with 404")
                return
            }
            print("\(charger) → \(choice.upstream.url(for: identity)) (\(version)) by \(choice.reason)")
            if let passwords = configuration.access.passwords {
                print(
                    passwords[charger] == nil
                        ? "no password is configured for \(charger): refused with 401"
                        : "the relay checks \(charger)'s password"
                )
            }
            if choice.upstreamPassword != nil {
                print("the relay logs in upstream as \(charger) with the configured upstream password")
            }
            for mirror in choice.mirrors {
                let mirrorIdentity = mirror.identity(for: identity)
                let commands = mirror.commands.sorted().joined(separator: ", ")
                print(
                    "mirrored to \(mirror.name): \(mirror.upstream.url(for: mirrorIdentity)) "
                        + "(\(mirror.upstreamVersion?.shortName ?? "the upstream's version"), \(mirror.mode.rawValue)"
                        + (mirror.mode == .secondary ? ", may send \(commands.isEmpty ? "nothing" : commands)" : "")
                        + ")"
                )
            }
        }
    }
}
