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
                "messages.yaml:4: error: Heartbeat: unknown transform 'noSuchTransform' (known: authorize, bootNotification, diagnosticsStatusNotification, firmwareStatusNotification, meterValues, startTransaction, statusNotification, stopTransaction)"
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
            fromYAML: "enums.yaml:\n  a:\n    values: {X: Z}\ntokens.yaml:\n  default: Central\n"
        )
        #expect(split.diagnostics.isEmpty)
        var base = files(messages: "charger: {}\nbackend: {}\n")
        base["enums.yaml"] = "a:\n  values: {X: Y, W: V}\nb:\n  passthrough: true\n"
        let tables = MappingTables(files: base, overrides: split.overrides)
        #expect(tables.isUsable)
        #expect(tables.enumMap("a").map("X") == "Z")
        #expect(tables.enumMap("a").map("W") == "V")
        #expect(tables.enums["b"]?.passthrough == true)
        #expect(tables.tokenTypes.fallback == "Central")
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
