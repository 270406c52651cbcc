import Foundation
import OCPP
import OCPPTranslation
import Testing

/// The repository's mapping tables, as shipped.
enum Repository {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url
    }()

    static func tables() -> MappingTables {
        var files: [String: String] = [:]
        for name in MappingTables.fileNames {
            files[name] = try? String(
                contentsOf: root.appendingPathComponent("Mappings").appendingPathComponent(name),
                encoding: .utf8
            )
        }
        return MappingTables(files: files)
    }

    static let goldenFolder = root.appendingPathComponent("Tests/OCPPTranslationTests/Golden")

    /// The golden files. A folder that cannot be read yields no cases here; `goldenFolderIsRead` then fails.
    static var goldenCases: [String] {
        ((try? goldenFiles()) ?? [])
    }

    static func goldenFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: goldenFolder.path).filter { $0.hasSuffix(".json") }.sorted()
    }
}

/// Deterministic ids and clock for golden files: ids are id-1, id-2, …; now is 2026-11-27T06:00:00Z;
/// the monotonic clock moves only with `tick` steps.
final class IDs: @unchecked Sendable {
    private var next = 0
    private let lock = NSLock()
    var uptime = 0.0

    func make() -> String {
        lock.lock()
        defer { lock.unlock() }
        next += 1
        return "id-\(next)"
    }
}

extension JSONValue {
    /// Members sorted, recursively: golden files compare content, not member order.
    var canonical: JSONValue {
        switch self {
        case .object(let members):
            return .object(members.map { (key: $0.key, value: $0.value.canonical) }.sorted { $0.key < $1.key })
        case .array(let elements):
            return .array(elements.map(\.canonical))
        case .number(let text):
            // An integer stays as written: 1 and 1.0 differ (a strict validator refuses 1.0 for an integer
            // field). Numbers with a fraction or an exponent compare by value (1.50 is 1.5).
            if text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let value = Double(text) {
                return .number(String(value))
            }
            return self
        default:
            return self
        }
    }
}

/// Golden files: each is a conversation, step by step: a frame from one side, and exactly the frames the
/// relay must send in answer. `state` seeds the persisted state (a relay restarted mid-transaction);
/// `finalState` lists members the state must have at the end.
@Suite("Translation golden files")
struct GoldenTests {
    @Test("the shipped mapping tables load without errors")
    func tablesLoad() {
        let tables = Repository.tables()
        #expect(tables.diagnostics.filter { $0.severity == .error }.map(\.description) == [])
        #expect(tables.charger.count >= 10 && tables.backend.count >= 20)
    }

    @Test("the golden folder is read and holds every conversation")
    func goldenFolderIsRead() throws {
        let files = try Repository.goldenFiles()
        #expect(files.count >= 15, "golden files: \(files)")
    }

    /// The members a golden file and each of its steps may have: a misspelt key fails instead of being ignored.
    static let documentKeys: Set<String> = ["description", "direction", "options", "state", "steps", "finalState"]
    static let stepKeys: Set<String> = ["note", "from", "frame", "tick", "start", "expect", "diagnostics"]

    @Test("golden conversation", arguments: Repository.goldenCases)
    func golden(_ name: String) throws {
        let url = Repository.goldenFolder.appendingPathComponent(name)
        let document = try JSONParser.parse(Array(try Data(contentsOf: url)))
        let unknown = Set(document.objectMembersForTests.map(\.key)).subtracting(Self.documentKeys)
        #expect(unknown.isEmpty, "\(name): unknown keys \(unknown.sorted())")
        let steps = try #require(document["steps"]?.arrayValue, "\(name) has no steps")
        #expect(!steps.isEmpty, "\(name) has no steps")
        var state = ChargerState()
        if let seeded = document["state"] {
            state = try JSONDecoder().decode(ChargerState.self, from: Data(seeded.jsonText.utf8))
        }
        let ids = IDs()
        // "CHARGER-on-UPSTREAM" ("2.0.1-on-1.6", "2.1-on-2.0.1", …); absent: a 1.6 charger on a 2.0.1 backend.
        let direction = (document["direction"]?.stringValue ?? "1.6-on-2.0.1").components(separatedBy: "-on-")
        let charger = try #require(direction.first.flatMap(OCPPVersion.init(name:)), "\(name): direction")
        let upstream = try #require(direction.last.flatMap(OCPPVersion.init(name:)), "\(name): direction")
        #expect(direction.count == 2 && charger != upstream, "\(name): direction is CHARGER-on-UPSTREAM")
        // What the peers implement beyond the core protocol, and the early StartTransaction answer.
        let options = TranslationOptions(
            upstreamSecurity: document.value(at: "options.upstreamSecurity")?.boolValue ?? false,
            upstreamPlugAndCharge: document.value(at: "options.upstreamPlugAndCharge")?.boolValue ?? false,
            answerStartEarly: document.value(at: "options.answerStartEarly")?.boolValue ?? false
        )
        var session = Driven(charger: charger, upstream: upstream, state: state, ids: ids, options: options)
        for (index, step) in steps.enumerated() {
            let keys = Set(step.objectMembersForTests.map(\.key))
            #expect(
                keys.isSubset(of: Self.stepKeys),
                "\(name) step \(index + 1): unknown keys \(keys.subtracting(Self.stepKeys).sorted())"
            )
            #expect(
                [step["tick"], step["frame"], step["start"]].compactMap { $0 }.count == 1,
                "\(name) step \(index + 1): a step is a tick, a frame or the start of a connection"
            )
            if step["frame"] != nil {
                #expect(
                    ["charger", "upstream"].contains(step["from"]?.stringValue ?? ""),
                    "\(name) step \(index + 1): from must be charger or upstream"
                )
            }
            let expected = try #require(
                step["expect"]?.arrayValue,
                "\(name) step \(index + 1): expect is missing (write [] for a step the relay does not answer)"
            )
            let outputs: [TranslationOutput]
            if let seconds = step["tick"]?.doubleValue {
                ids.uptime += seconds
                outputs = session.tick()
            } else if step["start"] != nil {
                outputs = session.started()
            } else {
                let frame = try #require(step["frame"]).jsonText
                outputs =
                    step["from"]?.stringValue == "charger" ? session.fromCharger(frame) : session.fromUpstream(frame)
            }
            let sent: [JSONValue] = try outputs.compactMap { output in
                switch output {
                case .toUpstream(let text):
                    .object([
                        (key: "to", value: .string("upstream")), (key: "frame", value: try JSONParser.parse(text)),
                    ])
                case .toCharger(let text):
                    .object([(key: "to", value: .string("charger")), (key: "frame", value: try JSONParser.parse(text))])
                case .passwordChanged(let password):
                    .object([(key: "to", value: .string("relay")), (key: "passwordChanged", value: .string(password))])
                case .diagnostic, .persist: nil
                }
            }
            #expect(
                sent.map(\.canonical) == expected.map(\.canonical),
                "\(name) step \(index + 1) (\(step["note"]?.stringValue ?? "")):\n got      \(JSONValue.array(sent).jsonText)\n expected \(JSONValue.array(expected).jsonText)"
            )
            if let diagnostics = step["diagnostics"]?.arrayValue {
                let got = outputs.compactMap { output -> String? in
                    if case .diagnostic(let d) = output { return d.kind.rawValue } else { return nil }
                }
                #expect(got == diagnostics.compactMap(\.stringValue), "\(name) step \(index + 1) diagnostics")
            }
        }
        if let final = document["finalState"] {
            let actual = try JSONParser.parse(Array(try JSONEncoder().encode(session.state)))
            for member in final.objectMembersForTests {
                #expect(
                    (actual[member.key] ?? .null).canonical == member.value.canonical,
                    "\(name): final state \(member.key) is \(actual[member.key]?.jsonText ?? "absent")"
                )
            }
        }
    }
}

extension JSONValue {
    var objectMembersForTests: [(key: String, value: JSONValue)] {
        if case .object(let members) = self { return members }
        return []
    }
}
