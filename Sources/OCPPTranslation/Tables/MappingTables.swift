import OCPP
import Yams

/// How one action is translated (`Mappings/messages.yaml`).
public struct ActionMapping: Sendable, Hashable {
    /// The action on the other side, if any.
    public var action: String?
    /// A named stateful transform written in Swift.
    public var transform: Transform?
    /// Field rules for the request and the response (generic mapper).
    public var request: [FieldRule]?
    public var response: [FieldRule]?
    /// The relay answers this request itself with this payload…
    public var answer: JSONValue?
    /// …or with a CALLERROR of this code.
    public var error: String?
    /// What the translation loses, for documentation and `mappings show`.
    public var lossy: [String]
    /// The line of the entry in messages.yaml.
    public var line: Int?
}

/// One field rule: `target: source`, or with an enum map, a default, a constant, a length limit.
public struct FieldRule: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable { case string }

    public var target: String
    public var source: String?
    public var constant: JSONValue?
    public var enumName: String?
    public var defaultValue: JSONValue?
    public var maxLength: Int?
    public var format: Format?
}

/// One 1.6 configuration key and the 2.0.1 variable it is (`Mappings/configuration-keys.yaml`).
public struct ConfigurationKeyMapping: Sendable, Hashable {
    public var key: String
    public var component: String
    public var variable: String
    public var variableInstance: String?
    /// 1.6 → 2.0.1 values, item by item for comma-separated lists.
    public var values: [String: String]
    /// `maxLimit`: the key is a characteristic of the variable, not its value.
    public var characteristic: String?
    public var readOnly: Bool
    /// `encoding: hex`: the 1.6 value is the hex of the 2.0.1 value's bytes (AuthorizationKey).
    public var hexEncoded = false
}

/// A variable the relay reports itself for 1.6 chargers.
public struct SyntheticVariable: Sendable, Hashable {
    public var component: String
    public var variable: String
    public var value: String
}

/// 1.6 connectors ↔ 2.0.1 EVSEs (`Mappings/topology.yaml`).
public enum Topology: String, Sendable, Hashable {
    /// Connector n is EVSE n, connector 1.
    case perConnector = "per_connector"
    /// Connector n is EVSE 1, connector n.
    case singleEVSE = "single_evse"

    /// The 2.0.1 EVSE and connector of a 1.6 connector (0 stays the whole station).
    public func evse(forConnector connector: Int) -> (evseId: Int, connectorId: Int) {
        guard connector > 0 else { return (0, 0) }
        return self == .perConnector ? (connector, 1) : (1, connector)
    }

    /// The 1.6 connector of a 2.0.1 EVSE (and connector, when given).
    public func connector(evseId: Int, connectorId: Int?) -> Int {
        guard evseId > 0 else { return 0 }
        return self == .perConnector ? evseId : (connectorId ?? 1)
    }
}

/// Rules giving a 1.6 idTag its 2.0.1 token type (`Mappings/tokens.yaml`).
public struct TokenTypeRules: Sendable {
    public var rules: [(pattern: String, type: String)]
    public var fallback: String
    private let compiled: CompiledPatterns

    init(rules: [(pattern: String, type: String)], fallback: String) {
        self.rules = rules
        self.fallback = fallback
        self.compiled = CompiledPatterns(rules.map { (try? Regex($0.pattern)).map(SendableRegex.init) })
    }

    /// The type for a token nobody typed before.
    public func type(of token: String) -> String {
        for (index, rule) in rules.enumerated() {
            if let regex = compiled.patterns[index]?.regex, (try? regex.wholeMatch(in: token)) != nil {
                return rule.type
            }
        }
        return fallback
    }
}

/// Compiled regular expressions are immutable once built.
struct SendableRegex: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
}

final class CompiledPatterns: Sendable {
    let patterns: [SendableRegex?]

    init(_ patterns: [SendableRegex?]) {
        self.patterns = patterns
    }
}

/// Every mapping table, loaded from the YAML files in `Mappings/`.
///
/// The format of these files is part of the relay's stable interface. Loading never throws: problems are
/// collected as ``TableDiagnostic``s naming file and line; ``isUsable`` says whether errors were found.
public struct MappingTables: Sendable {
    /// 1.6 chargers on 2.0.1 backends (`messages.yaml`): the charger's CALLs, the backend's CALLs.
    public var charger: [String: ActionMapping] = [:]
    public var backend: [String: ActionMapping] = [:]
    /// 2.0.1 chargers on 1.6 backends (`messages-201-on-16.yaml`): the charger's CALLs, the backend's CALLs.
    public var reverseCharger: [String: ActionMapping] = [:]
    public var reverseBackend: [String: ActionMapping] = [:]
    public var enums: [String: EnumMap] = [:]
    public var configurationKeys: [ConfigurationKeyMapping] = []
    public var legacyComponent = "OCPP16LegacyCtrlr"
    public var syntheticVariables: [SyntheticVariable] = []
    public var tokenTypes = TokenTypeRules(rules: [], fallback: "ISO14443")
    /// The 1.6 idTag of a 2.0.1 charger's transaction started without a token (NoAuthorization); none by default:
    /// such a transaction then never reaches a 1.6 backend (`tokens.yaml` free_vend_id_tag).
    public var freeVendIdTag: String?
    public var topology: Topology = .perConnector
    /// The OCPP 2.1 ↔ 2.0.1 step (`messages-21-on-201.yaml`).
    public var step21 = StepTable()
    public internal(set) var diagnostics: [TableDiagnostic] = []

    /// The files the tables are read from, in `Mappings/`.
    public static let fileNames = [
        "messages.yaml", MessageTable.reverse.fileName, "enums.yaml", "configuration-keys.yaml", "tokens.yaml",
        "topology.yaml", StepTable.fileName,
    ]

    /// Adds a problem found outside the table files (an unreadable overrides file).
    public mutating func addDiagnostic(_ diagnostic: TableDiagnostic) {
        diagnostics.append(diagnostic)
    }

    /// Transforms the relay answers itself (no message on the other side).
    /// No errors (warnings allowed).
    public var isUsable: Bool { !diagnostics.contains { $0.severity == .error } }

    /// Parses the table files; `files` maps a file name from ``fileNames`` to its text.
    /// - Parameter overrides: per file name, YAML laid over that file (operators' changes kept apart from
    ///   the shipped tables, e.g. `reset_type_201_to_16: {values: {Immediate: Hard}}` for enums.yaml).
    public init(files: [String: String], overrides: [String: String] = [:]) {
        for name in Self.fileNames where files[name] == nil {
            diagnostics.append(TableDiagnostic(.error, file: name, line: nil, "missing"))
        }
        for name in overrides.keys where !Self.fileNames.contains(name) {
            diagnostics.append(TableDiagnostic(.error, file: name, line: nil, "overrides name an unknown table file"))
        }
        func source(_ name: String) -> TableSource? {
            files[name].map { TableSource(file: name, text: $0, override: overrides[name]) }
        }
        if let s = source("enums.yaml") { parseEnums(s) }
        if let s = source("messages.yaml") { parseMessages(s, .forward) }
        if let s = source(MessageTable.reverse.fileName) { parseMessages(s, .reverse) }
        if let s = source("configuration-keys.yaml") { parseConfigurationKeys(s) }
        if let s = source("tokens.yaml") { parseTokens(s) }
        if let s = source("topology.yaml") { parseTopology(s) }
        if let s = source(StepTable.fileName) { parseStep(s) }
    }

    /// Splits an overrides document (top-level keys are table file names) into per-file YAML.
    public static func overrides(fromYAML text: String) -> (overrides: [String: String], diagnostics: [TableDiagnostic])
    {
        var source = TableSource(file: "overrides", text: text)
        var result: [String: String] = [:]
        for (name, _, value) in source.members(source.root, "overrides") {
            if let yaml = try? Yams.serialize(node: value) { result[name] = yaml }
        }
        return (result, source.diagnostics)
    }

    /// The enum map a transform uses. Tables without it do not load (``isUsable`` is false); should such tables
    /// be used anyway, the map is empty and maps nothing.
    public func enumMap(_ name: EnumMapName) -> EnumMap {
        enums[name.rawValue] ?? EnumMap()
    }

    /// A string member's value through an enum map; what has no counterpart (or is no string) makes the message
    /// untranslatable, saying `why`.
    func map(_ value: JSONValue?, through name: EnumMapName, or why: String) throws(Untranslatable) -> String {
        guard let text = value?.stringValue, let mapped = enumMap(name).map(text) else {
            throw Untranslatable(message: why)
        }
        return mapped
    }

    /// The mapping of a configuration key, or the legacy-component one for keys the table does not list.
    public func configurationKey(_ key: String) -> ConfigurationKeyMapping {
        configurationKeys.first { $0.key == key && $0.characteristic == nil }
            ?? ConfigurationKeyMapping(
                key: key,
                component: legacyComponent,
                variable: key,
                variableInstance: nil,
                values: [:],
                characteristic: nil,
                readOnly: false
            )
    }

    /// The configuration key of a 2.0.1 variable, if it has one.
    public func configurationKey(component: String, variable: String, instance: String?) -> ConfigurationKeyMapping? {
        if let known = configurationKeys.first(where: {
            $0.component == component && $0.variable == variable && $0.variableInstance == instance
                && $0.characteristic == nil
        }) {
            return known
        }
        if component == legacyComponent && instance == nil {
            return configurationKey(variable)
        }
        return nil
    }

    // MARK: Parsing

    private mutating func parseEnums(_ source: TableSource) {
        var source = source
        for (name, nameNode, body) in source.members(source.root, "enums.yaml") {
            var map = EnumMap()
            map.line = nameNode.mark?.line
            for (key, keyNode, value) in source.members(body, "enum \(name)") {
                switch key {
                case "source": map.source = TableSource.string(value)
                case "target": map.target = TableSource.string(value)
                case "values":
                    for (from, _, to) in source.members(value, "enum \(name).values") {
                        map.values[from] = .some(TableSource.string(to))
                    }
                case "passthrough": map.passthrough = value.bool ?? false
                case "default": map.fallback = TableSource.string(value)
                default:
                    source.error(
                        keyNode,
                        "enum \(name): unknown key '\(key)' (values, passthrough, default, source, target)"
                    )
                }
            }
            enums[name] = map
        }
        for name in EnumMapName.allCases where enums[name.rawValue] == nil {
            source.error(source.root, "\(name.rawValue) is missing: the translation uses it")
        }
        diagnostics += source.diagnostics
    }

    private mutating func parseMessages(_ source: TableSource, _ table: MessageTable) {
        var source = source
        var parsed: [String: [String: ActionMapping]] = ["charger": [:], "backend": [:]]
        for (direction, directionNode, body) in source.members(source.root, table.fileName) {
            guard direction == "charger" || direction == "backend" else {
                source.error(directionNode, "unknown section '\(direction)' (charger, backend)")
                continue
            }
            let fromCharger = direction == "charger"
            for (action, actionNode, entry) in source.members(body, direction) {
                var mapping = ActionMapping(lossy: [], line: actionNode.mark?.line)
                var namesTransform = false
                for (key, keyNode, value) in source.members(entry, action) {
                    switch key {
                    case "action": mapping.action = TableSource.string(value)
                    case "transform":
                        namesTransform = true
                        let name = TableSource.string(value) ?? ""
                        mapping.transform = Transform(name, table: table, fromCharger: fromCharger)
                        if mapping.transform == nil {
                            let known = Transform.names(table: table, fromCharger: fromCharger)
                            source.error(
                                value,
                                "\(action): unknown transform '\(name)' (known: \(known.sorted().joined(separator: ", ")))"
                            )
                        }
                    case "request": mapping.request = parseRules(&source, value, "\(action).request")
                    case "response": mapping.response = parseRules(&source, value, "\(action).response")
                    case "answer": mapping.answer = TableSource.json(value)
                    case "error": mapping.error = TableSource.string(value)
                    case "lossy": mapping.lossy = value.sequence?.compactMap { TableSource.string($0) } ?? []
                    default:
                        source.error(
                            keyNode,
                            "\(action): unknown key '\(key)' (action, transform, request, response, answer, error, lossy)"
                        )
                    }
                }
                // A transform may carry field rules for the messages it passes on unchanged in shape (a DataTransfer
                // that is not Plug & Charge).
                let ways = [
                    namesTransform || mapping.request != nil || mapping.response != nil, mapping.answer != nil,
                    mapping.error != nil,
                ]
                if ways.filter({ $0 }).count != 1 {
                    source.error(
                        actionNode,
                        "\(action): give exactly one of transform, request/response, answer, error"
                    )
                }
                if (mapping.transform != nil || mapping.request != nil) && mapping.action == nil
                    && mapping.transform?.isLocal != true
                {
                    source.error(actionNode, "\(action): 'action' (the message it becomes) is missing")
                }
                parsed[direction, default: [:]][action] = mapping
            }
        }
        let (chargerTable, backendTable) = (parsed["charger"] ?? [:], parsed["backend"] ?? [:])
        switch table {
        case .forward: (charger, backend) = (chargerTable, backendTable)
        case .reverse: (reverseCharger, reverseBackend) = (chargerTable, backendTable)
        case .same: break
        }
        // Every step written in Swift is reached by some message; one that is not means its message is no
        // longer translated the way the relay needs (an override replaced it).
        let named = Set((chargerTable.values.compactMap(\.transform)) + backendTable.values.compactMap(\.transform))
        for transform in Transform.all(table: table) where !named.contains(transform) {
            source.warning(
                nil,
                "no message names transform '\(transform)': the message it translates is not translated by it"
            )
        }
        // Enum names used by field rules must exist.
        for (action, mapping) in chargerTable.merging(backendTable, uniquingKeysWith: { a, _ in a }) {
            for rule in (mapping.request ?? []) + (mapping.response ?? []) {
                if let name = rule.enumName, enums[name] == nil {
                    source.error(nil, "\(action): field \(rule.target) names unknown enum '\(name)'")
                }
            }
        }
        diagnostics += source.diagnostics
    }

    private func parseRules(_ source: inout TableSource, _ node: Node, _ what: String) -> [FieldRule] {
        var rules: [FieldRule] = []
        for (target, _, value) in source.members(node, what) {
            var rule = FieldRule(target: target)
            if value.mapping == nil {
                rule.source = TableSource.string(value)
                if rule.source == nil { source.error(value, "\(what).\(target): give a source path") }
            } else {
                for (key, keyNode, detail) in source.members(value, "\(what).\(target)") {
                    switch key {
                    case "from": rule.source = TableSource.string(detail)
                    case "value": rule.constant = TableSource.json(detail)
                    case "enum": rule.enumName = TableSource.string(detail)
                    case "default": rule.defaultValue = TableSource.json(detail)
                    case "maxLength": rule.maxLength = detail.int
                    case "format":
                        rule.format = TableSource.string(detail).flatMap(FieldRule.Format.init)
                        if rule.format == nil { source.error(detail, "\(what).\(target): format must be 'string'") }
                    default:
                        source.error(
                            keyNode,
                            "\(what).\(target): unknown key '\(key)' (from, value, enum, default, maxLength, format)"
                        )
                    }
                }
                if rule.source == nil && rule.constant == nil {
                    source.error(value, "\(what).\(target): give 'from' or 'value'")
                }
            }
            rules.append(rule)
        }
        return rules
    }

    private mutating func parseConfigurationKeys(_ source: TableSource) {
        var source = source
        for (key, keyNode, value) in source.members(source.root, "configuration-keys.yaml") {
            switch key {
            case "legacy_component": legacyComponent = TableSource.string(value) ?? legacyComponent
            case "keys":
                var seen: Set<String> = []
                for item in value.sequence ?? [] {
                    var entry = ConfigurationKeyMapping(
                        key: "",
                        component: "",
                        variable: "",
                        values: [:],
                        readOnly: false
                    )
                    for (field, fieldNode, detail) in source.members(item, "keys entry") {
                        switch field {
                        case "key": entry.key = TableSource.string(detail) ?? ""
                        case "component": entry.component = TableSource.string(detail) ?? ""
                        case "variable": entry.variable = TableSource.string(detail) ?? ""
                        case "variable_instance": entry.variableInstance = TableSource.string(detail)
                        case "characteristic": entry.characteristic = TableSource.string(detail)
                        case "read_only": entry.readOnly = detail.bool ?? false
                        case "encoding":
                            guard TableSource.string(detail) == "hex" else {
                                source.error(fieldNode, "encoding must be hex")
                                continue
                            }
                            entry.hexEncoded = true
                        case "values":
                            for (from, _, to) in source.members(detail, "values") {
                                entry.values[from] = TableSource.string(to) ?? ""
                            }
                        default: source.error(fieldNode, "unknown key '\(field)'")
                        }
                    }
                    if entry.key.isEmpty || entry.component.isEmpty || entry.variable.isEmpty {
                        source.error(item, "each key needs key, component and variable")
                        continue
                    }
                    if !seen.insert(entry.key).inserted { source.error(item, "duplicate mapping for key \(entry.key)") }
                    if let c = entry.characteristic, c != "maxLimit" {
                        source.error(item, "\(entry.key): characteristic must be maxLimit")
                    }
                    configurationKeys.append(entry)
                }
            case "synthetic":
                for item in value.sequence ?? [] {
                    let fields = Dictionary(
                        source.members(item, "synthetic entry").map { ($0.key, TableSource.string($0.value) ?? "") },
                        uniquingKeysWith: { a, _ in a }
                    )
                    guard let component = fields["component"], let variable = fields["variable"],
                        let v = fields["value"]
                    else {
                        source.error(item, "each synthetic variable needs component, variable and value")
                        continue
                    }
                    syntheticVariables.append(SyntheticVariable(component: component, variable: variable, value: v))
                }
            default: source.error(keyNode, "unknown key '\(key)' (legacy_component, keys, synthetic)")
            }
        }
        diagnostics += source.diagnostics
    }

    private mutating func parseTokens(_ source: TableSource) {
        var source = source
        var rules: [(String, String)] = []
        var fallback = "ISO14443"
        let types: Set<String> = [
            "Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress", "NoAuthorization",
        ]
        for (key, keyNode, value) in source.members(source.root, "tokens.yaml") {
            switch key {
            case "rules":
                for item in value.sequence ?? [] {
                    let fields = Dictionary(
                        source.members(item, "rule").map { ($0.key, TableSource.string($0.value) ?? "") },
                        uniquingKeysWith: { a, _ in a }
                    )
                    guard let pattern = fields["pattern"], let type = fields["type"] else {
                        source.error(item, "each rule needs pattern and type")
                        continue
                    }
                    if (try? Regex(pattern)) == nil { source.error(item, "invalid pattern \(pattern)") }
                    if !types.contains(type) {
                        source.error(item, "unknown token type \(type) (\(types.sorted().joined(separator: ", ")))")
                    }
                    rules.append((pattern, type))
                }
            case "default":
                fallback = TableSource.string(value) ?? fallback
                if !types.contains(fallback) { source.error(value, "unknown token type \(fallback)") }
            case "free_vend_id_tag":
                freeVendIdTag = TableSource.string(value)
                if let tag = freeVendIdTag, tag.isEmpty || tag.count > 20 {
                    source.error(value, "free_vend_id_tag must be 1 to 20 characters (a 1.6 idTag)")
                }
            default: source.error(keyNode, "unknown key '\(key)' (rules, default, free_vend_id_tag)")
            }
        }
        tokenTypes = TokenTypeRules(rules: rules.map { (pattern: $0.0, type: $0.1) }, fallback: fallback)
        diagnostics += source.diagnostics
    }

    private mutating func parseTopology(_ source: TableSource) {
        var source = source
        for (key, keyNode, value) in source.members(source.root, "topology.yaml") {
            if key == "default", let name = TableSource.string(value), let parsed = Topology(rawValue: name) {
                topology = parsed
            } else {
                source.error(keyNode, "topology.yaml: expected 'default: per_connector' or 'default: single_evse'")
            }
        }
        diagnostics += source.diagnostics
    }
}
