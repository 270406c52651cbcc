import NIOConcurrencyHelpers

/// The relay's Prometheus figures over the last hour, for the relay page's charts: every family of the exposition
/// summed over its labels, sampled every ``interval`` seconds (histogram buckets left out).
final class MetricsSampler: Sendable {
    struct Series: Codable, Sendable {
        /// `counter` or `gauge`, as the exposition declares it.
        var type: String
        var help: String
        /// Seconds since the Unix epoch and the value then.
        var points: [[Double]]
    }

    static let interval = 5.0
    static let kept = Int(3600 / interval)

    private let series = NIOLockedValueBox<[String: Series]>([:])

    /// Adds one sample of the exposition `text`, taken at `time`.
    func sample(_ text: String, time: Double) {
        let sums = Self.parse(text)
        series.withLockedValue { series in
            for (name, sample) in sums {
                var entry = series[name] ?? Series(type: sample.type, help: sample.help, points: [])
                entry.points.append([time, sample.value])
                if entry.points.count > Self.kept { entry.points.removeFirst(entry.points.count - Self.kept) }
                series[name] = entry
            }
        }
    }

    /// The series so far, each ending with the value in `text` now (not kept: the stored samples stay evenly spaced).
    func all(now text: String, time: Double) -> [String: Series] {
        var result = series.withLockedValue { $0 }
        for (name, sample) in Self.parse(text) {
            result[name, default: Series(type: sample.type, help: sample.help, points: [])].points.append([
                time, sample.value,
            ])
        }
        return result
    }

    /// Every family of an exposition summed over its labels, with its type and help.
    private static func parse(_ text: String) -> [String: (value: Double, type: String, help: String)] {
        var types: [String: String] = [:]
        var helps: [String: String] = [:]
        var sums: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count >= 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("# HELP ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1)
                if parts.count == 2 { helps[String(parts[0])] = String(parts[1]) }
                continue
            }
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "),
                let value = Double(line[space...].dropFirst())
            else { continue }
            let name = String(line[..<(line.firstIndex(where: { $0 == "{" || $0 == " " }) ?? space)])
            guard !name.hasSuffix("_bucket") else { continue }
            sums[name, default: 0] += value
        }
        var result: [String: (value: Double, type: String, help: String)] = [:]
        for (name, value) in sums {
            let family =
                name.hasSuffix("_sum")
                ? String(name.dropLast(4)) : name.hasSuffix("_count") ? String(name.dropLast(6)) : name
            let type = types[name] ?? (types[family] == "histogram" ? "counter" : types[family] ?? "gauge")
            result[name] = (value, type, helps[name] ?? helps[family] ?? "")
        }
        return result
    }
}
