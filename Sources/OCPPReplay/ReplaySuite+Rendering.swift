import OCPP

extension ReplaySuiteReport {
    /// The lines a terminal shows after the runs: each failed run with its differences (one run: every exchange),
    /// then the figures per action and a summary.
    public func text(color: Bool = false) -> String {
        func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        var lines: [String] = []
        if results.count == 1, let report = results[0].report {
            lines.append(report.text(color: color))
        } else {
            for result in results where !result.passed || result.report?.mismatches.isEmpty == false {
                guard let report = result.report else {
                    lines.append(paint("✗", "31") + " \(result.name): could not run: \(result.couldNotRun ?? "?")")
                    continue
                }
                let mark = report.passed ? paint("!", "33") : paint("✗", "31")
                lines.append("\(mark) \(result.name)")
                for m in report.mismatches { lines.append("    \(m.severity == .warn ? "warning: " : "")\(m)") }
            }
        }
        if results.count == 1, let why = results[0].couldNotRun { lines.append("could not run: \(why)") }
        let figures = statistics
        if results.count > 1 || figures.actions.values.contains(where: { !$0.answerTimes.isEmpty }) {
            lines.append(Self.table(figures))
        }
        let warnings = results.compactMap(\.report).flatMap(\.mismatches).filter { $0.severity == .warn }.count
        var summary =
            "\(figures.runs) run(s): \(figures.passed) passed, \(figures.runs - figures.passed - figures.couldNotRun) "
            + "failed, \(figures.couldNotRun) could not run; \(figures.roundTrips) round trips, "
            + "\(figures.differences) differences (\(warnings) warnings) in \(Self.seconds(seconds))"
        summary = exitCode == 0 ? paint(summary, "32") : paint(summary, "31")
        lines.append(summary)
        return lines.joined(separator: "\n")
    }

    private static func seconds(_ value: Double) -> String {
        value < 10 ? "\(Double(Int(value * 100)) / 100) s" : "\(Int(value.rounded())) s"
    }

    private static func millis(_ micros: Int64?) -> String {
        guard let micros else { return "-" }
        return micros < 10_000 ? "\(Double(micros / 10) / 100)" : "\(micros / 1000)"
    }

    /// Per action: round trips, the live peer's answer times (ms), differences, unanswered CALLs, CALLERRORs.
    static func table(_ figures: ReplayStatistics) -> String {
        let header = ["action", "round trips", "p50 ms", "p95 ms", "p99 ms", "differences", "errors", "CALLERRORs"]
        var rows = [header]
        for (action, f) in figures.actions.sorted(by: { $0.key < $1.key }) {
            let p = f.percentiles([50, 95, 99])
            rows.append([
                action, "\(f.roundTrips)", millis(p[0]), millis(p[1]), millis(p[2]),
                "\(f.differences.values.reduce(0, +))", "\(f.errors)", "\(f.callErrors)",
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// JUnit XML for CI: one test case per run (fixture and charger), its failing differences as the failure, its
    /// warnings as output.
    public func junitXML(suite: String) -> String {
        let failures = results.filter { $0.report != nil && !$0.passed }.count
        let errors = results.filter { $0.report == nil }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml +=
            "<testsuites tests=\"\(results.count)\" failures=\"\(failures)\" errors=\"\(errors)\" time=\"\(seconds)\">\n"
        xml += "  <testsuite name=\"\(Self.escape(suite))\" tests=\"\(results.count)\" failures=\"\(failures)\""
        xml += " errors=\"\(errors)\" time=\"\(seconds)\">\n"
        for result in results {
            xml += "    <testcase classname=\"\(Self.escape(suite))\" name=\"\(Self.escape(result.name))\""
            xml += " time=\"\(result.seconds)\">\n"
            if let report = result.report {
                let failing = report.mismatches.filter { $0.severity == .fail }
                if let first = failing.first {
                    let body = failing.map(\.description).joined(separator: "\n")
                    xml +=
                        "      <failure message=\"\(Self.escape(first.description))\">\(Self.escape(body))</failure>\n"
                }
                let warnings = report.mismatches.filter { $0.severity == .warn }
                let out = ["\(report.exchanges.count) exchanges"] + warnings.map { "warning: \($0)" }
                xml += "      <system-out>\(Self.escape(out.joined(separator: "\n")))</system-out>\n"
            } else {
                let why = result.couldNotRun ?? "could not run"
                xml += "      <error message=\"\(Self.escape(why))\">\(Self.escape(why))</error>\n"
            }
            xml += "    </testcase>\n"
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    static func escape(_ s: String) -> String {
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

    /// The report as JSON: a summary, the figures per action (answer times in ms), each run with its differences.
    public var json: JSONValue {
        let figures = statistics
        func kinds(_ counts: [Mismatch.Kind: Int]) -> JSONValue {
            .object(
                counts.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.rawValue, .number("\($0.value)")) }
            )
        }
        func ms(_ micros: Int64?) -> JSONValue { micros.map { .number("\(Double($0) / 1000)") } ?? .null }
        let actions: [(key: String, value: JSONValue)] = figures.actions.sorted { $0.key < $1.key }.map {
            action,
            f in
            let p = f.percentiles([50, 95, 99])
            return (
                action,
                .object([
                    ("roundTrips", .number("\(f.roundTrips)")),
                    (
                        "answerTimeMs",
                        .object([
                            ("p50", ms(p[0])), ("p95", ms(p[1])), ("p99", ms(p[2])),
                        ])
                    ),
                    ("differences", kinds(f.differences)),
                    ("errors", .number("\(f.errors)")),
                    ("callErrors", .number("\(f.callErrors)")),
                ])
            )
        }
        let runs: [JSONValue] = results.map { result in
            var members: [(key: String, value: JSONValue)] = [
                ("name", .string(result.name)), ("charger", .string(result.charger)),
                ("passed", .bool(result.passed)), ("seconds", .number("\(result.seconds)")),
            ]
            if let report = result.report {
                members.append(("exchanges", .number("\(report.exchanges.count)")))
                members.append(
                    (
                        "differences",
                        .array(
                            report.mismatches.map { m in
                                .object([
                                    ("action", .string(m.action)), ("path", .string(m.path)),
                                    ("expected", .string(m.expected)), ("got", .string(m.got)),
                                    ("kind", .string(m.kind.rawValue)), ("severity", .string(m.severity.rawValue)),
                                ])
                            }
                        )
                    )
                )
            } else {
                members.append(("couldNotRun", .string(result.couldNotRun ?? "")))
            }
            return .object(members)
        }
        return .object([
            (
                "summary",
                .object([
                    ("runs", .number("\(figures.runs)")), ("passed", .number("\(figures.passed)")),
                    ("couldNotRun", .number("\(figures.couldNotRun)")),
                    ("roundTrips", .number("\(figures.roundTrips)")),
                    ("differences", .number("\(figures.differences)")), ("errors", .number("\(figures.errors)")),
                    ("otherDifferences", kinds(figures.otherDifferences)),
                    ("seconds", .number("\(seconds)")), ("exitCode", .number("\(exitCode)")),
                ])
            ),
            ("actions", .object(actions)),
            ("runs", .array(runs)),
        ])
    }
}
