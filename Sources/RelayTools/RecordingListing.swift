import Foundation
import RelayRecording

/// The table `ocpp-relay recordings list` prints: one line per recorded connection.
public enum RecordingListing {
    public static func render(_ connections: [ConnectionSummary]) -> String {
        // INVALID: frames the relay judged invalid (`-`: not judged, `validation.verdicts`).
        var rows: [[String]] = [["CHARGER", "START", "END", "FRAMES", "BYTES", "VERSION", "INVALID", "CONNECTION"]]
        for c in connections {
            let end: String
            if let e = c.end {
                end = Timestamp.rfc3339(e)
            } else {
                end = "open/last " + Timestamp.rfc3339(c.lastSeen)
            }
            rows.append([
                c.charger.isEmpty ? "(invalid)" : c.charger, Timestamp.rfc3339(c.start), end, String(c.frames),
                String(c.diskBytes),
                c.subprotocol ?? "-", c.invalid.map(String.init) ?? "-", c.key,
            ])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

extension RecordingListing {
    /// The totals `ocpp-relay recordings stats` prints: how much traffic, how much disk, the ratio.
    public static func stats(_ connections: [ConnectionSummary], segmentBytes: Int, segments: Int) -> String {
        let messages = connections.map(\.messages).reduce(0, +)
        let text = connections.map(\.textBytes).reduce(0, +)
        let frames = connections.map(\.frames).reduce(0, +)
        let ratio = segmentBytes > 0 ? Double(text) / Double(segmentBytes) : 0
        let perMessage = messages > 0 ? Double(segmentBytes) / Double(messages) : 0
        return """
            connections       \(connections.count)
            messages          \(messages) (\(frames) frames on both legs)
            message text      \(text) bytes
            on disk           \(segmentBytes) bytes in \(segments) segment(s)
            compression       \(String(format: "%.1f", ratio))× against the message text (each message once)
            per message       \(String(format: "%.1f", perMessage)) bytes on disk
            """
    }
}
