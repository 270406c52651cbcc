import Foundation
import OCPP
import RelayRecording

/// The cutover report: per mirror and action, how many charger messages each mirror got, and how its answers
/// compared with the primary's (`ocpp-relay mirrors report`), read from the recordings' mirror outcomes.
public struct MirrorReport: Sendable {
    /// One mirror's figures for one action.
    public struct Row: Sendable, Equatable {
        public var mirror: String
        public var action: String
        public var matched = 0
        public var diverged = 0
        public var unanswered = 0
        public var dropped = 0
        /// Differing fields, most frequent first, with how often and one example.
        public var fields: [Field] = []

        public var messages: Int { matched + diverged + unanswered + dropped }
    }

    public struct Field: Sendable, Equatable {
        public var path: String
        public var count: Int
        public var example: MirrorOutcome.Difference
    }

    public struct Filter: Sendable {
        public var mirror: String?
        public var charger: String?
        /// Microseconds since the epoch.
        public var since: UInt64?

        public init(mirror: String? = nil, charger: String? = nil, since: UInt64? = nil) {
            self.mirror = mirror
            self.charger = charger
            self.since = since
        }
    }

    public private(set) var rows: [Row] = []

    /// Reads the recordings at `path` (a folder or a segment file).
    /// - Returns: the report and the problems met (damaged segments), which do not stop it.
    public static func read(path: String, filter: Filter) throws -> (MirrorReport, [String]) {
        try read(paths: [path], filter: filter)
    }

    /// Reads the recordings of several relays.
    public static func read(paths: [String], filter: Filter) throws -> (MirrorReport, [String]) {
        let catalog = try RecordingCatalog(paths: paths)
        let segments = filter.charger.map { catalog.segments(forCharger: $0) } ?? catalog.segments
        var report = MirrorReport()
        var problems: [String] = []
        for segment in segments {
            var chargers: [UInt64: String] = [:]
            do {
                let outcome = try SegmentReader(path: segment).forEach { record in
                    switch record {
                    case .open(let open): chargers[open.connection] = open.charger
                    case .mirror(let outcome):
                        if let mirror = filter.mirror, mirror != outcome.mirror { return }
                        if let charger = filter.charger, chargers[outcome.connection] != charger { return }
                        if let since = filter.since, outcome.time < since { return }
                        report.add(outcome)
                    default: break
                    }
                }
                if let damage = outcome.damage { problems.append("\(segment): read up to a damaged record: \(damage)") }
            } catch {
                problems.append("\(segment): \(error)")
            }
        }
        report.rows.sort { ($0.mirror, $0.action) < ($1.mirror, $1.action) }
        for index in report.rows.indices {
            report.rows[index].fields.sort { ($1.count, $0.path) < ($0.count, $1.path) }
        }
        return (report, problems)
    }

    mutating func add(_ outcome: MirrorOutcome) {
        let index: Int
        if let found = rows.firstIndex(where: { $0.mirror == outcome.mirror && $0.action == outcome.action }) {
            index = found
        } else {
            rows.append(Row(mirror: outcome.mirror, action: outcome.action))
            index = rows.count - 1
        }
        switch outcome.kind {
        case .matched: rows[index].matched += 1
        case .diverged: rows[index].diverged += 1
        case .unanswered: rows[index].unanswered += 1
        case .dropped: rows[index].dropped += 1
        }
        for difference in outcome.differences {
            if let field = rows[index].fields.firstIndex(where: { $0.path == difference.path }) {
                rows[index].fields[field].count += 1
            } else {
                rows[index].fields.append(Field(path: difference.path, count: 1, example: difference))
            }
        }
    }

    /// One JSON object per mirror and action.
    public var jsonLines: [String] {
        rows.map { row in
            JSONValue.object([
                (key: "mirror", value: .string(row.mirror)), (key: "action", value: .string(row.action)),
                (key: "messages", value: .number(String(row.messages))),
                (key: "matched", value: .number(String(row.matched))),
                (key: "diverged", value: .number(String(row.diverged))),
                (key: "unanswered", value: .number(String(row.unanswered))),
                (key: "dropped", value: .number(String(row.dropped))),
                (
                    key: "fields",
                    value: .array(
                        row.fields.map { field in
                            .object([
                                (key: "path", value: .string(field.path)),
                                (key: "count", value: .number(String(field.count))),
                                (key: "primary", value: .string(field.example.primary)),
                                (key: "mirror", value: .string(field.example.mirror)),
                            ])
                        }
                    )
                ),
            ]).jsonText
        }
    }

    /// A table per mirror, with the differing fields under each action.
    public var text: String {
        guard !rows.isEmpty else { return "no mirror traffic recorded" }
        var lines: [String] = []
        for mirror in Set(rows.map(\.mirror)).sorted() {
            let mine = rows.filter { $0.mirror == mirror }
            let total = mine.reduce(0) { $0 + $1.messages }
            let matched = mine.reduce(0) { $0 + $1.matched }
            let share = total == 0 ? 0 : Double(matched) / Double(total) * 100
            lines.append("mirror \(mirror): \(total) messages, \(matched) matched (\(Self.percent(share)))")
            lines.append(
                "  "
                    + ["action", "messages", "matched", "diverged", "unanswered", "dropped"].enumerated().map {
                        $0.offset == 0
                            ? $0.element.padding(toLength: 28, withPad: " ", startingAt: 0) : Self.right($0.element)
                    }.joined()
            )
            for row in mine {
                lines.append(
                    "  " + row.action.padding(toLength: 28, withPad: " ", startingAt: 0)
                        + [row.messages, row.matched, row.diverged, row.unanswered, row.dropped].map {
                            Self.right(String($0))
                        }.joined()
                )
                for field in row.fields.prefix(5) {
                    lines.append(
                        "      \(field.path.isEmpty ? "(message)" : field.path) ×\(field.count): primary "
                            + "\(field.example.primary), mirror \(field.example.mirror)"
                    )
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func right(_ text: String) -> String {
        String(repeating: " ", count: max(1, 11 - text.count)) + text
    }

    private static func percent(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }
}
