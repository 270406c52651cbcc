import Foundation
import OCPP
import OCPPTranslation
import Testing

@Suite("Mapping tables")
struct MappingTablesTests {
    private func files(messages: String) -> [String: String] {
        [
            "messages.yaml": messages, "enums.yaml": "a:\n  values: {X: Y}\n", "configuration-keys.yaml": "keys: []\n",
            "tokens.yaml": "default: ISO14443\n", "topology.yaml": "default: per_connector\n",
        ]
    }

    @Test("mistakes are reported with file and line, and make the tables unusable")
    func mistakes() {
        let tables = MappingTables(
            files: files(
                messages: """
                    charger:
                      Heartbeat:
                        action: Heartbeat
                        transform: noSuchTransform
                      Authorize:
                        request: {idToken.idToken: idTag}
                      DataTransfer:
                        action: DataTransfer
                        request:
                          vendorId: {from: vendorId, enum: missing_enum}
                        bogus: 1
                    backend:
                      Reset:
                        answer: {status: Rejected}
                        error: NotSupported
                    """
            )
        )
        #expect(!tables.isUsable)
        let messages = tables.diagnostics.map(\.description)
        #expect(
            messages.contains(
                "messages.yaml:4: error: Heartbeat: unknown transform 'noSuchTransform' (known: authorize, bootNotification, dataTransfer, diagnosticsStatusNotification, firmwareStatusNotification, meterValues, startTransaction, statusNotification, stopTransaction)"
            )
        )
        #expect(messages.contains("messages.yaml:5: error: Authorize: 'action' (the message it becomes) is missing"))
        #expect(
            messages.contains(
                "messages.yaml:11: error: DataTransfer: unknown key 'bogus' (action, transform, request, response, answer, error, lossy)"
            )
        )
        #expect(
            messages.contains("messages.yaml: error: DataTransfer: field vendorId names unknown enum 'missing_enum'")
        )
        #expect(
            messages.contains(
                "messages.yaml:13: error: Reset: give exactly one of transform, request/response, answer, error"
            )
        )
    }

    @Test("a missing file is an error; the shipped files are complete")
    func missing() {
        var incomplete = files(messages: "charger: {}\n")
        incomplete["tokens.yaml"] = nil
        #expect(MappingTables(files: incomplete).diagnostics.map(\.description).contains("tokens.yaml: error: missing"))
    }

    @Test("overrides replace single entries and leave the rest")
    func overrides() {
        let split = MappingTables.overrides(
            fromYAML:
                "enums.yaml:\n  reset_type_201_to_16:\n    values: {Immediate: Hard}\ntokens.yaml:\n  default: Central\n"
        )
        #expect(split.diagnostics.isEmpty)
        let shipped = Repository.tables()
        let tables = MappingTables(files: MappingTables.builtInFiles, overrides: split.overrides)
        #expect(tables.isUsable)
        #expect(tables.enumMap(.resetType201To16).map("Immediate") == "Hard")
        #expect(tables.enumMap(.resetType201To16).map("OnIdle") == shipped.enumMap(.resetType201To16).map("OnIdle"))
        #expect(tables.enumMap(.unit16To201) == shipped.enumMap(.unit16To201))
        #expect(tables.tokenTypes.fallback == "Central")
    }

    @Test("every enum map the translation names must be in the tables: a missing one is a load error")
    func requiredEnumMaps() {
        var incomplete = MappingTables.builtInFiles
        incomplete["enums.yaml"] = incomplete["enums.yaml"]!.replacingOccurrences(
            of: "unlock_status_16_to_201:",
            with: "unlock_status_16_to_201_renamed:"
        )
        let tables = MappingTables(files: incomplete)
        #expect(!tables.isUsable)
        #expect(
            tables.diagnostics.map(\.description).contains {
                $0.hasPrefix("enums.yaml:")
                    && $0.hasSuffix("error: unlock_status_16_to_201 is missing: the translation uses it")
            },
            "\(tables.diagnostics.map(\.description))"
        )
        #expect(MappingTables(files: MappingTables.builtInFiles).isUsable)
        #expect(Set(EnumMapName.allCases.map(\.rawValue)).isSubset(of: Set(Repository.tables().enums.keys)))
    }

    @Test("every transform is reached by the shipped tables; edited tables that bypass one are warned about")
    func everyTransformReached() {
        let shipped = MappingTables(files: MappingTables.builtInFiles)
        #expect(shipped.diagnostics.isEmpty, "\(shipped.diagnostics.map(\.description))")
        var edited = MappingTables.builtInFiles
        edited["messages.yaml"] = edited["messages.yaml"]!.replacingOccurrences(
            of: "transform: meterValues",
            with: "error: NotSupported"
        )
        let tables = MappingTables(files: edited)
        #expect(tables.isUsable, "a warning, not an error: the operator may mean it")
        #expect(
            tables.diagnostics.map(\.description).contains {
                $0.contains("warning: no message names transform 'meterValues'")
            },
            "\(tables.diagnostics.map(\.description))"
        )
    }

    @Test("token types: the table's patterns, then the default")
    func tokens() {
        let tables = Repository.tables()
        #expect(tables.tokenTypes.type(of: "04A2B3C4") == "ISO14443")
        #expect(tables.tokenTypes.type(of: "04A2B3C4D5E6F7") == "ISO14443")
        #expect(tables.tokenTypes.type(of: "E004010203040506") == "ISO15693")
        #expect(tables.tokenTypes.type(of: "NL-TNM-012345678-X") == "eMAID")
        #expect(tables.tokenTypes.type(of: "hello") == "ISO14443")
    }

    @Test("the binary carries the tables of Mappings/ as they are in the repository")
    func builtIn() throws {
        #expect(Set(MappingTables.builtInFiles.keys) == Set(MappingTables.fileNames))
        for name in MappingTables.fileNames {
            let onDisk = try String(
                contentsOf: Repository.root.appendingPathComponent("Mappings").appendingPathComponent(name),
                encoding: .utf8
            )
            #expect(MappingTables.builtInFiles[name] == onDisk, "\(name) differs from Mappings/\(name)")
        }
        let tables = MappingTables(files: MappingTables.builtInFiles)
        #expect(tables.isUsable)
    }
}
