extension ReplayReport {
    /// A readable report: one line per exchange, the differences under it, a summary.
    public func text(color: Bool = false) -> String {
        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        var lines: [String] = []
        for exchange in exchanges {
            let mark =
                exchange.mismatches.isEmpty
                ? paint("✓", "32")
                : exchange.mismatches.contains { $0.severity == .fail } ? paint("✗", "31") : paint("!", "33")
            lines.append("\(mark) \(exchange.name)")
            for m in exchange.mismatches {
                lines.append(
                    "    \(m.severity == .warn ? "warning: " : "")\(m.action) \(m.path.isEmpty ? "" : m.path + ": ")"
                        + "expected \(m.expected), got \(m.got)"
                )
            }
        }
        for m in other {
            lines.append((m.severity == .warn ? paint("!", "33") + " warning:" : paint("✗", "31")) + " \(m)")
        }
        let failed =
            exchanges.filter { $0.mismatches.contains { $0.severity == .fail } }.count
            + other.filter { $0.severity == .fail }.count
        lines.append(
            failed == 0
                ? paint("replay passed: \(exchanges.count) exchanges matched", "32")
                : paint(
                    "replay failed: \(failed) of \(exchanges.count + other.count) exchanges differ (\(mismatches.count) differences)",
                    "31"
                )
        )
        return lines.joined(separator: "\n")
    }
}
