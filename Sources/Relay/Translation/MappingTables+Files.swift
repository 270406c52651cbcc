import Foundation
import OCPP
import OCPPTranslation
import RelayConfig

extension MappingTables {
    /// Reads the tables from a folder (an edited copy of `Mappings/`), or takes those built into the binary when
    /// `directory` is nil, with an operator's overrides file laid over them.
    public static func load(directory: String?, overrides: String? = nil) -> MappingTables {
        var files = builtInFiles
        if let directory {
            files = [:]
            for name in fileNames {
                let path = (directory as NSString).appendingPathComponent(name)
                if let data = FileManager.default.contents(atPath: path) {
                    files[name] = String(decoding: data, as: UTF8.self)
                }
            }
        }
        guard let overrides else { return MappingTables(files: files) }
        guard let data = FileManager.default.contents(atPath: overrides) else {
            var tables = MappingTables(files: files)
            tables.addDiagnostic(TableDiagnostic(.error, file: overrides, line: nil, "cannot read the overrides file"))
            return tables
        }
        let (split, problems) = MappingTables.overrides(fromYAML: String(decoding: data, as: UTF8.self))
        var tables = MappingTables(files: files, overrides: split)
        for problem in problems { tables.addDiagnostic(problem) }
        return tables
    }

    /// Writes the built-in tables into `directory` (created if needed) for editing; existing files are kept
    /// unless `replace`. Returns the paths written.
    public static func exportBuiltIn(to directory: String, replace: Bool) throws(ConfigurationError) -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ConfigurationError("cannot create \(directory): \(error.localizedDescription)")
        }
        var written: [String] = []
        for (name, text) in builtInFiles.sorted(by: { $0.key < $1.key }) {
            let path = (directory as NSString).appendingPathComponent(name)
            if !replace && FileManager.default.fileExists(atPath: path) {
                throw ConfigurationError("\(path) exists; pass --force to replace it")
            }
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw ConfigurationError("cannot write \(path): \(error.localizedDescription)")
            }
            written.append(path)
        }
        return written
    }

    /// A readable summary of the tables (`ocpp-relay mappings show`).
    public var summary: String {
        var lines: [String] = []
        func describe(_ mapping: ActionMapping) -> String {
            if let answer = mapping.answer { return "answered by the relay: \(answer.jsonText)" }
            if let error = mapping.error { return "answered with CALLERROR \(error)" }
            let how = mapping.transform.map { "transform \($0)" } ?? "field rules"
            return "\(mapping.action ?? "-") (\(how))"
        }
        for (title, table) in [
            ("charger (1.6) → backend (2.0.1)", charger), ("backend (2.0.1) → charger (1.6)", backend),
            ("charger (2.0.1) → backend (1.6)", reverseCharger), ("backend (1.6) → charger (2.0.1)", reverseBackend),
        ] {
            lines.append(title)
            for (action, mapping) in table.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(action.padding(toLength: 30, withPad: " ", startingAt: 0)) → \(describe(mapping))")
                for loss in mapping.lossy { lines.append("      lossy: \(loss)") }
            }
        }
        for (title, table) in [
            ("charger (2.1) → older backend: 2.1-only messages", step21.charger),
            ("backend (2.1) → older charger: 2.1-only messages", step21.backend),
        ] {
            lines.append(title + " (every other message crosses as itself, lowered to 2.0.1)")
            for (action, mapping) in table.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(action.padding(toLength: 30, withPad: " ", startingAt: 0)) → \(describe(mapping))")
                for loss in mapping.lossy { lines.append("      lossy: \(loss)") }
            }
        }
        lines.append("2.1 → 2.0.1 values")
        for (name, places, map) in step21.enumLocations {
            let values = map.values.sorted { $0.key < $1.key }.map { "\($0.key)→\($0.value ?? "(dropped)")" }
            lines.append("  \(name) (\(places.joined(separator: ", "))): \(values.joined(separator: ", "))")
        }
        let types = step21.idTokenTypes.values.sorted { $0.key < $1.key }.map { "\($0.key)→\($0.value ?? "-")" }
        let otherTypes = step21.idTokenTypes.fallback ?? "-"
        lines.append("  2.1 token types: \(types.joined(separator: ", ")); others → \(otherTypes)")
        lines.append("enums")
        for (name, map) in enums.sorted(by: { $0.key < $1.key }) {
            let values = map.values.sorted { $0.key < $1.key }.map { "\($0.key)→\($0.value ?? "(dropped)")" }
            var extra = map.passthrough ? ", others unchanged" : ""
            if let fallback = map.fallback { extra += ", others → \(fallback)" }
            lines.append("  \(name): \(values.joined(separator: ", "))\(extra)")
        }
        lines.append("configuration keys (\(configurationKeys.count); others become \(legacyComponent).<key>)")
        for key in configurationKeys {
            let variable = key.variable + (key.variableInstance.map { "[\($0)]" } ?? "")
            let note =
                (key.characteristic.map { " (\($0))" } ?? "") + (key.readOnly ? " (read-only through the relay)" : "")
            lines.append(
                "  \(key.key.padding(toLength: 40, withPad: " ", startingAt: 0)) ↔ \(key.component).\(variable)\(note)"
            )
        }
        lines.append(
            "token types: \(tokenTypes.rules.map { "\($0.pattern) → \($0.type)" }.joined(separator: "; ")); otherwise \(tokenTypes.fallback)"
        )
        lines.append("topology: \(topology.rawValue)")
        return lines.joined(separator: "\n")
    }
}
