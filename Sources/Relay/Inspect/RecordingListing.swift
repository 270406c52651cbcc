import Foundation
import RelayRecording

/// The table `ocpp-relay recordings list` prints: one line per recorded connection.
public enum RecordingListing {
    public static func render(_ connections: [ConnectionSummary]) -> String {
        var rows: [[String]] = [["CHARGER", "START", "END", "FRAMES", "BYTES", "VERSION", "CONNECTION"]]
        for c in connections {
            let end: String
            if let e = c.end {
                end = Timestamp.rfc3339(e)
            } else {
                end = "open/last " + Timestamp.rfc3339(c.lastSeen)
            }
            rows.append([
                c.charger.isEmpty ? "(invalid)" : c.charger, Timestamp.rfc3339(c.start), end, String(c.frames), String(c.diskBytes),
                c.subprotocol ?? "-", c.key,
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
