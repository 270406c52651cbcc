import OCPP
import Yams

/// The OCPP 2.1 ↔ 2.0.1 step (`Mappings/messages-21-on-201.yaml`): what the relay does with the messages only 2.1
/// has, the 2.1 values of closed 2.0.1 enumerations, the idToken types 2.0.1 lacks, the texts it may cut and the
/// members 2.1 requires that 2.0.1 lacks. Everything else the step does follows from the two versions' schema facts.
public struct StepTable: Sendable {
    public static let fileName = "messages-21-on-201.yaml"

    /// 2.1-only messages from a 2.1 charger, and from a 2.1 backend (only `answer`, `error` and `lossy` are used).
    public var charger: [String: ActionMapping] = [:]
    public var backend: [String: ActionMapping] = [:]
    /// Enum maps by where they apply: `"TransactionEventRequest triggerReason"` → the map.
    public var enums: [String: EnumMap] = [:]
    /// The maps by name, for `mappings show` and `check`.
    public var enumLocations: [(name: String, at: [String], map: EnumMap)] = []
    public var idTokenTypes = EnumMap(fallback: "Central")
    /// Member paths (at any depth) whose texts may be cut to 2.0.1's length.
    public var truncate: Set<String> = []
    /// `"NotifyMonitoringReportRequest monitor.variableMonitoring.eventNotificationType"` → its value.
    public var fill: [String: JSONValue] = [:]

    public init() {}

    /// The entry for a 2.1-only message from the 2.1 peer on `side`.
    func only21(_ action: String, from side: Side) -> ActionMapping? {
        side == .charger ? charger[action] : backend[action]
    }

    /// Whether a text at `path` (dotted, arrays looked through) may be cut.
    func mayTruncate(_ path: String) -> Bool {
        truncate.contains { path == $0 || path.hasSuffix("." + $0) }
    }
}

extension MappingTables {
    mutating func parseStep(_ source: TableSource) {
        var source = source
        var table = StepTable()
        for (section, sectionNode, body) in source.members(source.root, StepTable.fileName) {
            switch section {
            case "charger", "backend":
                var entries: [String: ActionMapping] = [:]
                for (action, actionNode, entry) in source.members(body, section) {
                    var mapping = ActionMapping(lossy: [], line: actionNode.mark?.line)
                    for (key, keyNode, value) in source.members(entry, action) {
                        switch key {
                        case "answer": mapping.answer = TableSource.json(value)
                        case "error": mapping.error = TableSource.string(value)
                        case "lossy": mapping.lossy = value.sequence?.compactMap { TableSource.string($0) } ?? []
                        default: source.error(keyNode, "\(action): unknown key '\(key)' (answer, error, lossy)")
                        }
                    }
                    if (mapping.answer == nil) == (mapping.error == nil) {
                        source.error(actionNode, "\(action): give exactly one of answer, error")
                    }
                    entries[action] = mapping
                }
                if section == "charger" { table.charger = entries } else { table.backend = entries }
            case "enums":
                for (name, nameNode, entry) in source.members(body, "enums") {
                    var map = EnumMap()
                    map.line = nameNode.mark?.line
                    var places: [String] = []
                    for (key, keyNode, value) in source.members(entry, "enum \(name)") {
                        switch key {
                        case "at":
                            places = value.sequence?.compactMap { TableSource.string($0) } ?? []
                            if places.isEmpty { source.error(value, "enum \(name): 'at' lists where it applies") }
                        case "values":
                            for (from, _, to) in source.members(value, "enum \(name).values") {
                                map.values[from] = .some(TableSource.string(to))
                            }
                        default: source.error(keyNode, "enum \(name): unknown key '\(key)' (at, values)")
                        }
                    }
                    for place in places {
                        if table.enums[place] != nil { source.error(nameNode, "\(place) has two enum maps") }
                        table.enums[place] = map
                    }
                    table.enumLocations.append((name, places, map))
                }
            case "id_token_types":
                for (key, keyNode, value) in source.members(body, "id_token_types") {
                    switch key {
                    case "values":
                        for (from, _, to) in source.members(value, "id_token_types.values") {
                            table.idTokenTypes.values[from] = .some(TableSource.string(to))
                        }
                    case "default": table.idTokenTypes.fallback = TableSource.string(value)
                    default: source.error(keyNode, "id_token_types: unknown key '\(key)' (values, default)")
                    }
                }
            case "truncate":
                table.truncate = Set(body.sequence?.compactMap { TableSource.string($0) } ?? [])
            case "fill":
                for (place, _, value) in source.members(body, "fill") {
                    table.fill[place] = TableSource.json(value)
                }
            default:
                source.error(
                    sectionNode,
                    "unknown section '\(section)' (charger, backend, enums, id_token_types, truncate, fill)"
                )
            }
        }
        step21 = table
        diagnostics += source.diagnostics
    }
}
