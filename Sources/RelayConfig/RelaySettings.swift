import Foundation
import OCPP
import OCPPTransport
import RelayRecording
import Yams

/// A setting's value as written: a scalar (sizes and durations with units: `64MiB`, `1h`), a list, or a map.
public indirect enum SettingValue: Sendable, Equatable, ExpressibleByStringLiteral {
    case scalar(String)
    case list([SettingValue])
    case map([String: SettingValue])

    public init(stringLiteral value: String) {
        self = .scalar(value)
    }
}

/// The settings as a user writes them, in the YAML file or as flags: values by key (`timeouts.upstream`), each key
/// one of ``declarations``, which say how it is read, what it sets and whether a reload applies it. ``resolve()``
/// checks the values and lays them over the defaults (``RelayConfiguration``'s).
///
/// The keys are part of the relay's stable interface; see `Config/relay.yaml`. An unknown key is an error.
public struct RelaySettings: Sendable, Equatable {
    public private(set) var values: [String: SettingValue]
    /// The file's values that flags replaced: never applied, but checked like the others, so that a mistake in the
    /// file does not hide behind a flag until the day the flag is dropped.
    public private(set) var shadowed: [String: SettingValue] = [:]

    /// Settings with these values; keys are checked by ``resolve()``.
    public init(_ values: [String: SettingValue] = [:]) {
        self.values = values
    }

    public subscript(key: String) -> SettingValue? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// These settings with every key `overrides` sets replaced by its value (flags over the file).
    public func overridden(by overrides: RelaySettings) -> RelaySettings {
        var result = RelaySettings(values.merging(overrides.values) { _, flag in flag })
        result.shadowed = shadowed
        for (key, value) in values where overrides.values[key] != nil { result.shadowed[key] = value }
        return result
    }

    /// `log_level`, which the command line reads before the relay starts.
    public var logLevel: String? {
        if case .scalar(let level) = values["log_level"] { return level }
        return nil
    }

    /// Reads a YAML settings file.
    public static func load(path: String) throws(ConfigurationError) -> RelaySettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read configuration file \(path)")
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), source: path)
    }

    /// Parses YAML settings text: every key must be a declared setting (or a group of them).
    public static func parse(yaml: String, source: String = "configuration") throws(ConfigurationError) -> RelaySettings
    {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigurationError("\(source): \(error)")
        }
        var settings = RelaySettings()
        // An empty file (or one of comments only) sets nothing.
        guard let root, root.scalar?.string.isEmpty != true else { return settings }
        guard let mapping = root.mapping else { throw ConfigurationError("\(source): expected a map of settings") }
        try collect(mapping, path: "", into: &settings.values, source: source)
        return settings
    }

    private static func collect(
        _ mapping: Node.Mapping,
        path: String,
        into values: inout [String: SettingValue],
        source: String
    ) throws(ConfigurationError) {
        for (keyNode, node) in mapping {
            let name = keyNode.string ?? "?"
            let key = path.isEmpty ? name : path + "." + name
            if node.null != nil { continue }
            if declared[key] != nil {
                values[key] = value(node)
            } else if groups.contains(key), let inner = node.mapping {
                try collect(inner, path: key, into: &values, source: source)
            } else if groups.contains(key) {
                throw ConfigurationError("\(source): \(key) holds settings (\(keys(in: key).joined(separator: ", ")))")
            } else {
                let line = keyNode.mark.map { ":\($0.line)" } ?? ""
                let siblings = keys(in: path)
                throw ConfigurationError(
                    "\(source)\(line): unknown setting '\(key)'"
                        + (siblings.isEmpty ? "" : " (known here: \(siblings.joined(separator: ", ")))")
                )
            }
        }
    }

    private static func value(_ node: Node) -> SettingValue {
        switch node {
        case .scalar(let scalar): .scalar(scalar.string)
        case .sequence(let sequence): .list(sequence.map(value))
        case .mapping(let mapping):
            .map(Dictionary(mapping.map { ($0.key.string ?? "?", value($0.value)) }, uniquingKeysWith: { _, b in b }))
        case .alias: .scalar("")
        }
    }

    /// The keys directly inside `group` (`""`: the top level).
    static func keys(in group: String) -> [String] {
        let prefix = group.isEmpty ? "" : group + "."
        let names = (Array(declared.keys) + Array(groups)).filter { $0.hasPrefix(prefix) }.map {
            String($0.dropFirst(prefix.count).prefix { $0 != "." })
        }
        return Array(Set(names)).sorted()
    }

    // MARK: Resolving

    /// Checks the settings and turns them into a configuration with defaults filled in.
    public func resolve() throws(ConfigurationError) -> RelayConfiguration {
        for key in values.keys where Self.declared[key] == nil {
            throw ConfigurationError("unknown setting '\(key)'")
        }
        try checkShadowed()
        guard let upstream = values["upstream"] else {
            throw ConfigurationError(
                "no upstream: pass --upstream ws://HOST:PORT/PATH or set 'upstream' in the configuration file"
            )
        }
        var configuration = RelayConfiguration(upstream: try Self.upstreamURL(try upstream.string("upstream")))
        for declaration in Self.declarations {
            guard let value = values[declaration.key] else { continue }
            try declaration.apply(value, &configuration)
        }
        // Each mirror is one more socket per charger: the default connection limit leaves them room.
        let mirrors = ([configuration.mirrors.count] + configuration.routes.map(\.mirrors.count)).max() ?? 0
        if values["limits.max_connections"] == nil, mirrors > 0 {
            configuration.maxConnections = RelayConfiguration.descriptorBoundConnections(socketsPerCharger: 2 + mirrors)
        }
        // A plaintext listener beyond loopback only when asked for.
        let plaintext = try values["plaintext"]?.bool("plaintext") ?? false
        if configuration.listenerTLS == nil, !plaintext, !RelayConfiguration.isLoopback(configuration.listenHost) {
            throw ConfigurationError(
                "listening on \(configuration.listenHost) without TLS: configure tls (certificate, key), "
                    + "or set plaintext: true (--plaintext) when a proxy in front terminates TLS"
            )
        }
        if let console = configuration.console {
            try console.check()
            if configuration.listenerTLS == nil, !plaintext, !RelayConfiguration.isLoopback(console.host) {
                throw ConfigurationError(
                    "console.listen on \(console.host) without TLS: configure tls (the console serves the listener's "
                        + "certificate), or set plaintext: true when a proxy in front terminates TLS"
                )
            }
        }
        return configuration
    }

    /// Checks each file value a flag replaced as if it applied: a flag and a file key that meet are both checked.
    private func checkShadowed() throws(ConfigurationError) {
        for (key, value) in shadowed.sorted(by: { $0.key < $1.key }) {
            guard let declaration = Self.declared[key] else { throw ConfigurationError("unknown setting '\(key)'") }
            var scratch = RelayConfiguration(upstream: try Self.upstreamURL("ws://127.0.0.1:1"))
            do {
                try declaration.apply(value, &scratch)
            } catch {
                throw ConfigurationError("\(error.message) (in the configuration file; a flag overrides it)")
            }
        }
    }

    static func upstreamURL(_ text: String) throws(ConfigurationError) -> UpstreamURL {
        do {
            return try UpstreamURL(text)
        } catch {
            throw ConfigurationError(error.message)
        }
    }

    /// `1.6`, `2.0.1`, `2.1`, or `passthrough` (nil).
    static func version(_ text: String, name: String) throws(ConfigurationError) -> OCPPVersion? {
        if text.lowercased() == "passthrough" { return nil }
        guard let parsed = OCPPVersion(name: text) else {
            throw ConfigurationError("\(name) '\(text)' must be 1.6, 2.0.1, 2.1 or passthrough")
        }
        return parsed
    }

    /// `[security, pnc]`: what a 1.6 upstream implements beyond 1.6.
    static func extensions(_ value: SettingValue, setting: String) throws(ConfigurationError) -> Set<UpstreamExtension>
    {
        var result: Set<UpstreamExtension> = []
        for name in try value.strings(setting) {
            guard let known = UpstreamExtension(rawValue: name) else {
                let names = UpstreamExtension.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError("\(setting): unknown extension '\(name)' (known: \(names))")
            }
            result.insert(known)
        }
        return result
    }

    /// A secret from the environment (secrets do not belong in configuration files).
    static func secret(environment name: String, setting: String) throws(ConfigurationError) -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw ConfigurationError("\(setting): the environment variable \(name) is not set")
        }
        return value
    }
}

extension SettingValue {
    func string(_ key: String) throws(ConfigurationError) -> String {
        guard case .scalar(let text) = self else { throw ConfigurationError("\(key) must be a single value") }
        return text
    }

    func int(_ key: String) throws(ConfigurationError) -> Int {
        guard let number = Int(try string(key)) else { throw ConfigurationError("\(key) must be a whole number") }
        return number
    }

    func int(_ key: String, atLeast minimum: Int) throws(ConfigurationError) -> Int {
        let number = try int(key)
        guard number >= minimum else { throw ConfigurationError("\(key) must be at least \(minimum)") }
        return number
    }

    /// One of `choices`' words (case as written), as its value.
    func choice<Value>(_ key: String, _ choices: KeyValuePairs<String, Value>) throws(ConfigurationError) -> Value {
        let word = try string(key)
        guard let value = choices.first(where: { $0.key == word })?.value else {
            throw ConfigurationError("\(key) must be \(choices.map(\.key).joined(separator: " or ")), not \(word)")
        }
        return value
    }

    func double(_ key: String) throws(ConfigurationError) -> Double {
        guard let number = Double(try string(key)) else { throw ConfigurationError("\(key) must be a number") }
        return number
    }

    func bool(_ key: String) throws(ConfigurationError) -> Bool {
        switch try string(key).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw ConfigurationError("\(key) must be true or false")
        }
    }

    func quantity(_ key: String) throws(ConfigurationError) -> Quantity { Quantity(try string(key)) }

    func strings(_ key: String) throws(ConfigurationError) -> [String] {
        switch self {
        case .list(let items): return try items.map { item throws(ConfigurationError) in try item.string(key) }
        case .scalar(let text): return [text]
        case .map: throw ConfigurationError("\(key) must be a list")
        }
    }

    /// A map of user data (charger id → password hash).
    func stringMap(_ key: String) throws(ConfigurationError) -> [String: String] {
        guard case .map(let members) = self else { throw ConfigurationError("\(key) must be a map") }
        var result: [String: String] = [:]
        for (name, value) in members { result[name] = try value.string("\(key)[\(name)]") }
        return result
    }

    /// A map of settings with these keys (others are an error).
    func members(_ key: String, allowed: [String]) throws(ConfigurationError) -> [String: SettingValue] {
        guard case .map(let members) = self else {
            throw ConfigurationError("\(key) holds settings (\(allowed.joined(separator: ", ")))")
        }
        for name in members.keys where !allowed.contains(name) {
            throw ConfigurationError(
                "unknown setting '\(key).\(name)' (known here: \(allowed.joined(separator: ", ")))"
            )
        }
        return members
    }
}
extension RelaySettings {
    /// `translation.state` is the path of a SQLite file or a `postgresql://` URL; anything else is refused instead
    /// of becoming a file named after it in the working folder.
    static func statePath(_ text: String) throws(ConfigurationError) -> String {
        if let scheme = text.range(of: "://").map({ text[..<$0.lowerBound] }) {
            guard ["postgresql", "postgres"].contains(scheme) else {
                throw ConfigurationError(
                    "translation.state: \(scheme):// is not supported; give the path of a SQLite file or a postgresql:// URL"
                )
            }
            _ = try PostgresLocation(url: text)
            return text
        }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigurationError("translation.state is empty; give the path of a SQLite file")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: text, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ConfigurationError("translation.state: \(text) is a folder; give the path of a SQLite file")
        }
        return text
    }
}

/// A number with an optional unit, as written in settings: `1048576`, `1MiB`, `64 MB`, `90s`, `1h`, `30d`.
public struct Quantity: Sendable, Equatable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public var description: String { text }

    var isForever: Bool { ["forever", "never", "none"].contains(text.lowercased()) }

    private func split() -> (Double, String)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let numberPart = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(numberPart) else { return nil }
        return (value, trimmed.dropFirst(numberPart.count).trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// The value in bytes (units B, KB/KiB, MB/MiB, GB/GiB; powers of 1000 and 1024).
    public func bytes(name: String, minimum: Int) throws(ConfigurationError) -> Int {
        let units: [String: Double] = [
            "": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1_048_576, "mb": 1_000_000, "mib": 1_048_576,
            "g": 1_073_741_824, "gb": 1_000_000_000, "gib": 1_073_741_824,
        ]
        guard let (value, unit) = split(), let factor = units[unit] else {
            throw ConfigurationError("\(name): '\(text)' is not a size (examples: 1048576, 512KiB, 64MiB)")
        }
        let bytes = Int(value * factor)
        guard bytes >= minimum else {
            throw ConfigurationError("\(name): \(text) is below the minimum of \(minimum) bytes")
        }
        return bytes
    }

    /// The value as a duration (units ms, s, m/min, h, d; no unit means seconds), to the microsecond.
    public func duration(name: String, minimum: Duration) throws(ConfigurationError) -> Duration {
        let minimumSeconds = Double(minimum.components.seconds) + Double(minimum.components.attoseconds) / 1e18
        return .microseconds(Int64((try seconds(name: name, minimum: minimumSeconds) * 1e6).rounded()))
    }

    /// The value in seconds (units ms, s, m/min, h, d; no unit means seconds).
    public func seconds(name: String, minimum: Double) throws(ConfigurationError) -> Double {
        let units: [String: Double] = ["": 1, "ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400]
        guard let (value, unit) = split(), let factor = units[unit] else {
            throw ConfigurationError("\(name): '\(text)' is not a duration (examples: 500ms, 10s, 1h, 30d)")
        }
        let seconds = value * factor
        guard seconds >= minimum else {
            throw ConfigurationError("\(name): \(text) is below the minimum of \(minimum) s")
        }
        return seconds
    }
}
