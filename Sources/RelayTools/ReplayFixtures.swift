import Foundation
import OCPPReplay
import RelayRecording

/// Finds the fixtures a replay's arguments name: fixture files, folders of fixture files, recordings.
public enum ReplayFixtures {
    /// The fixtures of `paths`, each with its name in reports.
    ///
    /// - a fixture file is one fixture, named by its file;
    /// - a folder of fixture files (`*.jsonl`) is every one of them, in name order;
    /// - a recording (a folder of segments, or one segment) is `charger`'s first connection, or with
    ///   `everyConnection` every connection of every charger (of `charger` alone when given), in order of time.
    public static func collect(
        _ paths: [String],
        charger: String?,
        everyConnection: Bool
    ) throws -> [(name: String, fixture: Fixture)] {
        var found: [(name: String, fixture: Fixture)] = []
        for path in paths {
            found += try collect(path, charger: charger, everyConnection: everyConnection)
        }
        guard !found.isEmpty else { throw FixtureError("no fixtures in \(paths.joined(separator: ", "))") }
        return found
    }

    private static func collect(
        _ path: String,
        charger: String?,
        everyConnection: Bool
    ) throws -> [(name: String, fixture: Fixture)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FixtureError("\(path) does not exist")
        }
        let files = isDirectory.boolValue ? try FileManager.default.contentsOfDirectory(atPath: path).sorted() : []
        let isRecording =
            path.hasSuffix(RecordingConfiguration.segmentSuffix)
            || files.contains { $0.hasSuffix(RecordingConfiguration.segmentSuffix) }
        if isRecording {
            if everyConnection {
                let fixtures = try FixtureBuilder.fixtures(from: [path], charger: charger)
                var seen: [String: Int] = [:]
                return fixtures.map { fixture in
                    let charger = fixture.header.charger
                    seen[charger, default: 0] += 1
                    return (seen[charger]! > 1 ? "\(charger) #\(seen[charger]!)" : charger, fixture)
                }
            }
            let fixture = try FixtureBuilder.fixture(from: path, selection: .init(charger: charger))
            return [(fixture.header.charger, fixture)]
        }
        if isDirectory.boolValue {
            return try files.filter { $0.hasSuffix(".jsonl") }.map { file in
                (String(file.dropLast(".jsonl".count)), try read((path as NSString).appendingPathComponent(file)))
            }
        }
        let name = (path as NSString).lastPathComponent
        return [(name.hasSuffix(".jsonl") ? String(name.dropLast(".jsonl".count)) : name, try read(path))]
    }

    /// A fixture file.
    public static func read(_ path: String) throws -> Fixture {
        guard let data = FileManager.default.contents(atPath: path) else { throw FixtureError("cannot read \(path)") }
        do {
            return try Fixture.parse(String(decoding: data, as: UTF8.self))
        } catch {
            throw FixtureError("\(path): \(error.message)")
        }
    }
}
