import OCPP
import Yams

/// A problem in a mapping table, located by file and line.
public struct TableDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    public let severity: Severity
    public let file: String
    public let line: Int?
    public let message: String

    public init(_ severity: Severity, file: String, line: Int?, _ message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(severity.rawValue): \(message)"
    }
}

/// Reads one YAML table file, remembering where each value came from for diagnostics.
struct TableSource {
    let file: String
    let root: Node?
    var diagnostics: [TableDiagnostic] = []

    /// - Parameter override: YAML whose entries replace the file's, merged mapping by mapping
    ///   (an override of `backend: {Reset: …}` replaces only Reset).
    init(file: String, text: String, override: String? = nil) {
        self.file = file
        var root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            diagnostics.append(TableDiagnostic(.error, file: file, line: nil, "not valid YAML: \(error)"))
        }
        if let override {
            do {
                if let patch = try Yams.compose(yaml: override) {
                    root = root.map { Self.merge($0, patch) } ?? patch
                }
            } catch {
                diagnostics.append(
                    TableDiagnostic(.error, file: file, line: nil, "the override is not valid YAML: \(error)")
                )
            }
        }
        self.root = root
    }

    /// `patch` laid over `base`: mappings merge key by key, anything else is replaced.
    static func merge(_ base: Node, _ patch: Node) -> Node {
        guard let baseMapping = base.mapping, let patchMapping = patch.mapping else { return patch }
        var pairs = Array(baseMapping)
        for (key, value) in patchMapping {
            if let index = pairs.firstIndex(where: { $0.key == key }) {
                pairs[index].value = merge(pairs[index].value, value)
            } else {
                pairs.append((key: key, value: value))
            }
        }
        return .mapping(
            Node.Mapping(pairs.map { ($0.key, $0.value) }, baseMapping.tag, baseMapping.style, baseMapping.mark)
        )
    }

    mutating func error(_ node: Node?, _ message: String) {
        diagnostics.append(TableDiagnostic(.error, file: file, line: node?.mark?.line, message))
    }

    mutating func warning(_ node: Node?, _ message: String) {
        diagnostics.append(TableDiagnostic(.warning, file: file, line: node?.mark?.line, message))
    }

    /// The members of a mapping node, in order; reports anything else.
    mutating func members(_ node: Node?, _ what: String) -> [(key: String, keyNode: Node, value: Node)] {
        guard let node else { return [] }
        guard let mapping = node.mapping else {
            error(node, "\(what) must be a mapping")
            return []
        }
        var result: [(String, Node, Node)] = []
        var seen: Set<String> = []
        for (key, value) in mapping {
            guard let name = key.string else {
                error(key, "\(what): keys must be strings")
                continue
            }
            if !seen.insert(name).inserted { error(key, "\(what): duplicate key '\(name)'") }
            result.append((name, key, value))
        }
        return result.map { (key: $0.0, keyNode: $0.1, value: $0.2) }
    }

    /// A scalar as a string (plain `null`/`~` is nil).
    static func string(_ node: Node?) -> String? {
        guard let scalar = node?.scalar else { return nil }
        if scalar.style == .plain && ["null", "~", ""].contains(scalar.string) { return nil }
        return scalar.string
    }

    /// A YAML value as JSON: plain scalars that read as numbers, booleans or null become those.
    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain else { return .string(scalar.string) }
            switch scalar.string {
            case "null", "~": return .null
            case "true": return .bool(true)
            case "false": return .bool(false)
            default:
                if Int(scalar.string) != nil || (Double(scalar.string) != nil && scalar.string.contains(".")) {
                    return .number(scalar.string)
                }
                return .string(scalar.string)
            }
        case .mapping(let mapping):
            return .object(mapping.map { (key: $0.key.string ?? "", value: json($0.value)) })
        case .sequence(let sequence):
            return .array(sequence.map(json))
        case .alias:
            return .null
        }
    }
}
