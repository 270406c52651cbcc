import OCPP
import OCPPSchema

extension MappingTables {
    /// Checks the tables against the official schemas' facts (built into the binary): every action exists, every
    /// field a rule reads or writes exists, answers and enum maps use values the schemas allow. Problems name file
    /// and line.
    public func checkAgainstSchemas() -> [TableDiagnostic] {
        let schemas = SchemaFacts.self
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
                guard let sourceRequest = schemas.of(from).request(action) else {
                    report(file, line, "\(direction).\(action): OCPP \(from.shortName) has no such message")
                    continue
                }
                if let answer = mapping.answer, let responseSchema = schemas.of(from).response(action) {
                    for (key, value) in answer.objectMembersForCheck {
                        guard let field = responseSchema.node(at: key) else {
                            report(
                                file,
                                line,
                                "\(action).answer: \(key) is not a field of \(action)Response"
                            )
                            continue
                        }
                        if let allowed = field.enumeration, let text = value.stringValue, !field.allows(text) {
                            report(
                                file,
                                line,
                                "\(action).answer: \(key) \(text) is not one of \(allowed.joined(separator: ", "))"
                            )
                        }
                    }
                }
                guard let target = mapping.action else { continue }
                guard let targetRequest = schemas.of(to).request(target) else {
                    report(file, line, "\(action): OCPP \(to.shortName) has no message \(target)")
                    continue
                }
                func name(_ version: OCPPVersion, _ action: String, response: Bool) -> String {
                    "\(version.shortName) \(action)\(response ? "Response" : (version == .v201 ? "Request" : ""))"
                }
                let pairs:
                    [(
                        rules: [FieldRule]?, source: SchemaNode?, target: SchemaNode?, sourceName: String,
                        targetName: String, what: String
                    )] = [
                        (
                            mapping.request, sourceRequest, targetRequest, name(from, action, response: false),
                            name(to, target, response: false), "request"
                        ),
                        (
                            mapping.response, schemas.of(to).response(target),
                            schemas.of(from).response(action),
                            name(to, target, response: true), name(from, action, response: true), "response"
                        ),
                    ]
                for (rules, sourceSchema, targetSchema, sourceName, targetName, what) in pairs {
                    guard let rules, let sourceSchema, let targetSchema else { continue }
                    for rule in rules {
                        if targetSchema.node(at: rule.target) == nil {
                            report(
                                file,
                                line,
                                "\(action).\(what): \(rule.target) is not a field of \(targetName)"
                            )
                        }
                        if let path = rule.source, sourceSchema.node(at: path) == nil {
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
                guard let field = Self.message(parts[1], of: version)?.node(at: parts[2]), field.enumeration != nil
                else {
                    report("enums.yaml", map.line, "\(name).\(end): \(reference) is not an enumerated field")
                    continue
                }
                for value in Set(values).sorted() where !field.allows(value) {
                    report("enums.yaml", map.line, "\(name): \(value) is not a \(reference) value")
                }
            }
        }
        problems += step21.checkAgainstSchemas()
        return problems
    }

    /// A message's facts by its schema's name: `StatusNotificationRequest` or `…Response` (2.x), `StatusNotification`
    /// or `…Response` (1.6).
    /// With `path`, `name` is `Message field.path` and the field's facts are returned.
    static func message(_ name: String, of version: OCPPVersion, path: Bool) -> SchemaNode? {
        let parts = name.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        return message(parts[0], of: version)?.node(at: parts[1])
    }

    static func message(_ name: String, of version: OCPPVersion) -> SchemaNode? {
        let facts = SchemaFacts.of(version)
        if name.hasSuffix("Response") { return facts.response(String(name.dropLast(8))) }
        if name.hasSuffix("Request") { return facts.request(String(name.dropLast(7))) }
        return facts.request(name)
    }
}

extension JSONValue {
    var objectMembersForCheck: [(key: String, value: JSONValue)] {
        if case .object(let members) = self { return members }
        return []
    }
}

extension StepTable {
    /// The 2.1 ↔ 2.0.1 step against both versions' facts: its 2.1-only messages are 2.1's alone and its answers valid
    /// 2.1 answers; each enum map reads 2.1 values where 2.0.1's enumeration does not have them and gives 2.0.1 ones;
    /// each filled member is one 2.1 requires, with a value it allows.
    func checkAgainstSchemas() -> [TableDiagnostic] {
        var problems: [TableDiagnostic] = []
        func report(_ line: Int?, _ message: String) {
            problems.append(TableDiagnostic(.error, file: Self.fileName, line: line, message))
        }
        for (direction, entries) in [("charger", charger), ("backend", backend)] {
            for (action, entry) in entries.sorted(by: { $0.key < $1.key }) {
                if SchemaFacts.ocpp21.request(action) == nil {
                    report(entry.line, "\(direction).\(action): OCPP 2.1 has no such message")
                } else if SchemaFacts.ocpp201.request(action) != nil {
                    report(entry.line, "\(direction).\(action): OCPP 2.0.1 has it too; it crosses as itself")
                }
                if let answer = entry.answer, let schema = SchemaFacts.ocpp21.response(action) {
                    for violation in schema.violations(in: answer) {
                        report(entry.line, "\(direction).\(action).answer: \(violation)")
                    }
                }
            }
        }
        for (name, places, map) in enumLocations {
            for place in places {
                guard let newer = MappingTables.message(place, of: .v21, path: true),
                    let older = MappingTables.message(place, of: .v201, path: true),
                    newer.enumeration != nil, older.enumeration != nil
                else {
                    report(map.line, "enums.\(name): \(place) is not an enumerated field of both 2.1 and 2.0.1")
                    continue
                }
                for (from, to) in map.values.sorted(by: { $0.key < $1.key }) {
                    if !newer.allows(from) || older.allows(from) {
                        report(map.line, "enums.\(name): \(from) is not a 2.1-only value of \(place)")
                    }
                    if let to, !older.allows(to) {
                        report(map.line, "enums.\(name): \(to) is not a 2.0.1 value of \(place)")
                    }
                }
            }
        }
        for (place, value) in fill.sorted(by: { $0.key < $1.key }) {
            guard let field = MappingTables.message(place, of: .v21, path: true) else {
                report(nil, "fill: \(place) is not a field of OCPP 2.1")
                continue
            }
            for violation in field.violations(in: value) {
                report(nil, "fill: \(place): \(violation)")
            }
        }
        return problems
    }
}
