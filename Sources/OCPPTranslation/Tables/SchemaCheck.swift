import OCPP

/// The official JSON schemas of both versions (as shipped in the `ocpp` package: `v16/schemas/X.json`,
/// `v201/schemas/XRequest.json`), keyed by file name without `.json`.
public struct SchemaCatalog: Sendable {
    public var v16: [String: JSONValue]
    public var v201: [String: JSONValue]

    public init(v16: [String: JSONValue], v201: [String: JSONValue]) {
        self.v16 = v16
        self.v201 = v201
    }

    /// The request or response schema of an action.
    func schema(_ version: OCPPVersion, _ action: String, response: Bool) -> JSONValue? {
        switch version {
        case .v16: v16[response ? "\(action)Response" : action]
        case .v201: v201[action + (response ? "Response" : "Request")]
        }
    }

    /// The schema node at a dotted path, following `$ref`s and array items; nil when the schema has no such field.
    static func node(at path: String, in schema: JSONValue) -> JSONValue? {
        func resolve(_ node: JSONValue) -> JSONValue {
            var current = node
            while let ref = current["$ref"]?.stringValue, ref.hasPrefix("#/definitions/") {
                guard let target = schema["definitions"]?[String(ref.dropFirst(14))] else { break }
                current = target
            }
            if current["type"]?.stringValue == "array", let items = current["items"] { return resolve(items) }
            return current
        }
        var current = resolve(schema)
        for key in path.split(separator: ".") {
            guard let next = current["properties"]?[String(key)] else { return nil }
            current = resolve(next)
        }
        return current
    }
}

extension MappingTables {
    /// Checks the tables against the official schemas: every action exists, every field a rule reads or
    /// writes exists, answers and enum maps use values the schemas allow. Problems name file and line.
    public func check(against schemas: SchemaCatalog) -> [TableDiagnostic] {
        var problems: [TableDiagnostic] = []
        func report(_ file: String, _ line: Int?, _ message: String) {
            problems.append(TableDiagnostic(.error, file: file, line: line, message))
        }
        for (file, direction, table, from, to) in [
            ("messages.yaml", "charger", charger, OCPPVersion.v16, OCPPVersion.v201),
            ("messages.yaml", "backend", backend, .v201, .v16),
            (MessageTable.reverse.fileName, "charger", reverseCharger, .v201, .v16),
            (MessageTable.reverse.fileName, "backend", reverseBackend, .v16, .v201),
        ] {
            for (action, mapping) in table.sorted(by: { $0.key < $1.key }) {
                let line = mapping.line
                guard let sourceRequest = schemas.schema(from, action, response: false) else {
                    report(file, line, "\(direction).\(action): OCPP \(from.shortName) has no such message")
                    continue
                }
                if let answer = mapping.answer, let responseSchema = schemas.schema(from, action, response: true) {
                    for (key, value) in answer.objectMembersForCheck {
                        guard let field = SchemaCatalog.node(at: key, in: responseSchema) else {
                            report(
                                file,
                                line,
                                "\(action).answer: \(key) is not a field of \(action)Response"
                            )
                            continue
                        }
                        if let allowed = field["enum"]?.arrayValue, let text = value.stringValue,
                            !allowed.contains(.string(text))
                        {
                            report(
                                file,
                                line,
                                "\(action).answer: \(key) \(text) is not one of \(allowed.compactMap(\.stringValue).joined(separator: ", "))"
                            )
                        }
                    }
                }
                guard let target = mapping.action else { continue }
                guard let targetRequest = schemas.schema(to, target, response: false) else {
                    report(file, line, "\(action): OCPP \(to.shortName) has no message \(target)")
                    continue
                }
                func name(_ version: OCPPVersion, _ action: String, response: Bool) -> String {
                    "\(version.shortName) \(action)\(response ? "Response" : (version == .v201 ? "Request" : ""))"
                }
                let pairs:
                    [(
                        rules: [FieldRule]?, source: JSONValue?, target: JSONValue?, sourceName: String,
                        targetName: String, what: String
                    )] = [
                        (
                            mapping.request, sourceRequest, targetRequest, name(from, action, response: false),
                            name(to, target, response: false), "request"
                        ),
                        (
                            mapping.response, schemas.schema(to, target, response: true),
                            schemas.schema(from, action, response: true),
                            name(to, target, response: true), name(from, action, response: true), "response"
                        ),
                    ]
                for (rules, sourceSchema, targetSchema, sourceName, targetName, what) in pairs {
                    guard let rules, let sourceSchema, let targetSchema else { continue }
                    for rule in rules {
                        if SchemaCatalog.node(at: rule.target, in: targetSchema) == nil {
                            report(
                                file,
                                line,
                                "\(action).\(what): \(rule.target) is not a field of \(targetName)"
                            )
                        }
                        if let path = rule.source, SchemaCatalog.node(at: path, in: sourceSchema) == nil {
                            report(file, line, "\(action).\(what): \(path) is not a field of \(sourceName)")
                        }
                    }
                }
            }
        }
        for (name, map) in enums.sorted(by: { $0.key < $1.key }) {
            for (end, reference, values) in [
                ("source", map.source, Array(map.values.keys)),
                ("target", map.target, map.values.values.compactMap { $0 } + [map.fallback].compactMap { $0 }),
            ] {
                guard let reference else { continue }
                let parts = reference.split(separator: " ").map(String.init)
                guard parts.count == 3, let version = OCPPVersion(name: parts[0]) else {
                    report(
                        "enums.yaml",
                        map.line,
                        "\(name).\(end): write 'VERSION Message field.path', e.g. '2.0.1 StatusNotificationRequest connectorStatus'"
                    )
                    continue
                }
                let schema = version == .v16 ? schemas.v16[parts[1]] : schemas.v201[parts[1]]
                guard let schema, let allowed = SchemaCatalog.node(at: parts[2], in: schema)?["enum"]?.arrayValue else {
                    report("enums.yaml", map.line, "\(name).\(end): \(reference) is not an enumerated field")
                    continue
                }
                for value in Set(values).sorted() where !allowed.contains(.string(value)) {
                    report("enums.yaml", map.line, "\(name): \(value) is not a \(reference) value")
                }
            }
        }
        return problems
    }
}

extension JSONValue {
    var objectMembersForCheck: [(key: String, value: JSONValue)] {
        if case .object(let members) = self { return members }
        return []
    }
}
