extension ReplayReport {
    /// A readable report: one line per exchange, the differences under it, a summary.
    public func text(color: Bool = false) -> String {
        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        var lines: [String] = []
        for exchange in exchanges {
            let mark = exchange.mismatches.isEmpty ? paint("✓", "32") : paint("✗", "31")
            lines.append("\(mark) \(exchange.name)")
            for m in exchange.mismatches {
                lines.append(
                    "    \(m.action) \(m.path.isEmpty ? "" : m.path + ": ")expected \(m.expected), got \(m.got)"
                )
            }
        }
        for m in other {
            lines.append(paint("✗", "31") + " \(m)")
        }
        let failed = exchanges.filter { !$0.mismatches.isEmpty }.count + other.count
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

    /// JUnit XML for CI: one test case per exchange.
    public func junitXML(suite: String, seconds: Double) -> String {
        func escape(_ s: String) -> String {
            var out = ""
            for c in s.unicodeScalars {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case _ where c.value < 0x20 && c != "\n" && c != "\t": out += " "
                default: out.unicodeScalars.append(c)
                }
            }
            return out
        }
        let cases = exchanges.map { ($0.name, $0.mismatches) } + other.map { ("unexpected: \($0.action)", [$0]) }
        let failures = cases.filter { !$0.1.isEmpty }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites tests=\"\(cases.count)\" failures=\"\(failures)\" time=\"\(seconds)\">\n"
        xml +=
            "  <testsuite name=\"\(escape(suite))\" tests=\"\(cases.count)\" failures=\"\(failures)\" time=\"\(seconds)\">\n"
        for (name, mismatches) in cases {
            xml += "    <testcase classname=\"\(escape(suite))\" name=\"\(escape(name))\""
            if mismatches.isEmpty {
                xml += "/>\n"
            } else {
                let message = mismatches.map(\.description).joined(separator: "\n")
                xml +=
                    ">\n      <failure message=\"\(escape(mismatches[0].description))\">\(escape(message))</failure>\n    </testcase>\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }
}
