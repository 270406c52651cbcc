import Foundation
import OCPP
import OCPPTransport

/// A second backend that sees a charger's traffic beside the primary upstream (`mirrors:`).
public struct MirrorSettings: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable {
        /// Its calls never reach the charger: the relay refuses them.
        case shadow
        /// The actions in ``MirrorSettings/commands`` reach the charger; others are refused.
        case secondary
    }

    /// `[a-z0-9-]+`: names it in recordings, logs and metrics.
    public var name: String
    public var upstream: UpstreamURL
    /// `nil`: the primary's (a 1.6 charger is translated for a 2.0.1 mirror alone).
    public var upstreamVersion: OCPPVersion?
    public var mode: Mode
    /// The actions a secondary may send to the charger.
    public var commands: Set<String>
    /// The identity the mirror sees, a template with `{id}` for the charger's.
    public var chargerID: String
    /// Basic credentials towards the mirror as `<its charger id>:<password>`; `nil`: no Authorization header (a
    /// charger's own password is never handed to a second backend).
    public var password: String?
    /// Messages held while the mirror is unreachable; beyond them, messages are dropped and counted.
    public var queue: Int
    /// Payload values the comparison ignores per action, as `replay --rules` (`*` for all actions).
    public var ignore: [String: [String]]

    public static let keys = [
        "name", "upstream", "upstream_version", "mode", "commands", "charger_id", "password_env", "queue", "ignore",
    ]

    /// The identity the mirror sees for `charger`.
    public func identity(for charger: ChargePointIdentity) -> ChargePointIdentity {
        let text = chargerID.replacingOccurrences(of: UpstreamURL.placeholder, with: charger.value)
        return (try? ChargePointIdentity(text)) ?? charger
    }
}

extension RelaySettings {
    /// Reads a `mirrors:` list (top level, or a route's, named `setting`).
    static func mirrors(_ value: SettingValue, setting: String) throws(ConfigurationError) -> [MirrorSettings] {
        guard case .list(let items) = value else { throw ConfigurationError("\(setting) must be a list") }
        var mirrors: [MirrorSettings] = []
        for (index, item) in items.enumerated() {
            let fields = try item.members("\(setting)[\(index + 1)]", allowed: MirrorSettings.keys)
            guard let name = try fields["name"]?.string("\(setting)[\(index + 1)].name") else {
                throw ConfigurationError("\(setting)[\(index + 1)] needs a name")
            }
            let key = "\(setting)[\(name)]"
            guard !name.isEmpty, name.utf8.count <= 64,
                name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
            else { throw ConfigurationError("\(key): a mirror's name is 1 to 64 of a-z, 0-9 and -") }
            guard !mirrors.contains(where: { $0.name == name }) else {
                throw ConfigurationError("\(key): two mirrors are named \(name)")
            }
            guard let upstream = try fields["upstream"]?.string("\(key).upstream") else {
                throw ConfigurationError("\(key) needs an upstream")
            }
            let modeText = try fields["mode"]?.string("\(key).mode") ?? "shadow"
            guard let mode = MirrorSettings.Mode(rawValue: modeText) else {
                throw ConfigurationError("\(key).mode must be shadow or secondary")
            }
            let commands = try fields["commands"]?.strings("\(key).commands") ?? []
            if mode == .shadow, !commands.isEmpty {
                throw ConfigurationError("\(key).commands: a shadow sends no commands (mode: secondary)")
            }
            for command in commands where !OCPPAction.all.contains(command) {
                throw ConfigurationError("\(key).commands: \(command) is not an OCPP action")
            }
            let chargerID = try fields["charger_id"]?.string("\(key).charger_id") ?? UpstreamURL.placeholder
            guard (try? ChargePointIdentity(chargerID)) != nil else {
                throw ConfigurationError("\(key).charger_id '\(chargerID)' is not a usable identity")
            }
            var ignore: [String: [String]] = [:]
            if let rules = fields["ignore"] {
                guard case .map(let members) = rules else {
                    throw ConfigurationError("\(key).ignore maps actions (or *) to payload paths")
                }
                for (action, paths) in members { ignore[action] = try paths.strings("\(key).ignore.\(action)") }
            }
            mirrors.append(
                MirrorSettings(
                    name: name,
                    upstream: try upstreamURL(upstream),
                    upstreamVersion: try fields["upstream_version"].flatMap { v throws(ConfigurationError) in
                        try version(try v.string("\(key).upstream_version"), name: "\(key).upstream_version")
                    },
                    mode: mode,
                    commands: Set(commands),
                    chargerID: chargerID,
                    password: try fields["password_env"].map { env throws(ConfigurationError) in
                        try secret(environment: try env.string("\(key).password_env"), setting: "\(key).password_env")
                    },
                    queue: try fields["queue"]?.int("\(key).queue", atLeast: 0) ?? 1000,
                    ignore: ignore
                )
            )
        }
        return mirrors
    }
}
