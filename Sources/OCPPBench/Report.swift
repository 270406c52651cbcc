import Foundation

extension Benchmark {
    /// The figures of one run, as a table with ratios and as JSON.
    struct Report {
        var machine: String
        var date: String
        var targets: [Target]
        var latency: [Target: [Percentiles]]
        var cpuClosed: [Target: [Double]]
        var cpuPaced: [Target: [Double]]
        var transactions: TransactionFigures
        var memory: [Target: [Int: Double]]
        var storms: [Target: Storm]
        var compression: Compression
        var replayer: BenchReplayer.Figures?
        var options: Options

        static func median(_ values: [Double]) -> Double? {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted()
            return sorted[sorted.count / 2]
        }

        func p50(_ t: Target) -> Double? { Self.median(latency[t]?.map(\.p50) ?? []) }
        func p90(_ t: Target) -> Double? { Self.median(latency[t]?.map(\.p90) ?? []) }
        func p99(_ t: Target) -> Double? { Self.median(latency[t]?.map(\.p99) ?? []) }
        func closed(_ t: Target) -> Double? { Self.median(cpuClosed[t] ?? []) }
        func paced(_ t: Target) -> Double? { Self.median(cpuPaced[t] ?? []) }
        func txClosed(_ t: Target) -> Double? { Self.median(transactions.closed[t] ?? []) }
        func txPaced(_ t: Target) -> Double? { Self.median(transactions.paced[t] ?? []) }
        func txPerSecond(_ t: Target) -> Double? { Self.median(transactions.perSecond[t] ?? []) }

        func spread(_ values: [Double]?) -> String {
            guard let values, let lo = values.min(), let hi = values.max() else { return "–" }
            return "\(fmt(lo))–\(fmt(hi))"
        }

        func cell(_ value: Double?) -> String { value.map(fmt) ?? "–" }

        func ratio(_ a: Double?, _ b: Double?) -> Double? {
            guard let a, let b, b > 0 else { return nil }
            return a / b
        }

        var ratios: [(String, Double?, String)] {
            let direct = p50(.direct)
            let addedRelay = p50(.relay).flatMap { r in direct.map { r - $0 } }
            let addedNginx = p50(.nginx).flatMap { n in direct.map { n - $0 } }
            let largest = options.idleCounts.max() ?? 0
            // The mirrored relay is measured only where three sockets per charger fit the open-file limit.
            let mirroredCount = memory[.relayMirrored]?.keys.max() ?? largest
            return [
                ("relay/nginx CPU per round trip, closed loops", ratio(closed(.relay), closed(.nginx)), "≤ 1.3"),
                ("relay/nginx CPU per round trip, paced", ratio(paced(.relay), paced(.nginx)), "≤ 1.5"),
                (
                    "translating relay/nginx CPU per round trip, closed loops",
                    ratio(closed(.relayTranslating), closed(.nginx)), "≤ 3"
                ),
                (
                    "relay/nginx CPU per MeterValues round trip in a transaction, closed loops",
                    ratio(txClosed(.relay), txClosed(.nginx)), "≤ 1.3"
                ),
                (
                    "translating relay/nginx CPU per MeterValues round trip in a transaction, closed loops",
                    ratio(txClosed(.relayTranslating), txClosed(.nginx)), "≤ 3"
                ),
                (
                    "translating relay/nginx CPU per MeterValues round trip in a transaction, paced",
                    ratio(txPaced(.relayTranslating), txPaced(.nginx)), ""
                ),
                (
                    "translated MeterValues per CPU second (one event loop, 1e6 / CPU µs per round trip)",
                    txClosed(.relayTranslating).map { 1e6 / $0 }, "≥ 5000"
                ),
                (
                    "relay added p50 minus nginx added p50 (µs)", addedRelay.flatMap { r in addedNginx.map { r - $0 } },
                    "≤ 15"
                ),
                ("relay/direct p50", ratio(p50(.relay), direct), ""),
                (
                    "relay/nginx memory per idle connection at \(largest)",
                    ratio(memory[.relay]?[largest], memory[.nginx]?[largest]), "≤ 1"
                ),
                (
                    "relay/nginx reconnect storm of \(largest)",
                    ratio(storms[.relay]?.seconds, storms[.nginx]?.seconds), "≤ 2, 0 errors"
                ),
                (
                    "mirrored relay/relay CPU per heartbeat round trip, closed loops",
                    ratio(closed(.relayMirrored), closed(.relay)), "≤ 1.6"
                ),
                (
                    "mirrored relay/relay CPU per MeterValues round trip in a transaction, closed loops",
                    ratio(txClosed(.relayMirrored), txClosed(.relay)), "≤ 1.6"
                ),
                (
                    "mirrored relay/relay CPU per MeterValues round trip in a transaction, paced",
                    ratio(txPaced(.relayMirrored), txPaced(.relay)), ""
                ),
                (
                    "mirrored relay p50 minus relay p50 (µs; the primary path's added latency)",
                    p50(.relayMirrored).flatMap { m in p50(.relay).map { m - $0 } }, "≈ 0"
                ),
                (
                    "mirrored relay/relay memory per idle connection at \(mirroredCount)",
                    ratio(memory[.relayMirrored]?[mirroredCount], memory[.relay]?[mirroredCount]), "≤ 2"
                ),
                (
                    "reverse relay/nginx CPU per 2.0.1 TransactionEvent (meter values) round trip, closed loops",
                    ratio(txClosed(.relayReverse), txClosed(.nginx201)), "≤ 3"
                ),
                (
                    "reverse relay/nginx CPU per 2.0.1 TransactionEvent (meter values) round trip, paced",
                    ratio(txPaced(.relayReverse), txPaced(.nginx201)), ""
                ),
                (
                    "reverse relay/nginx CPU per 2.0.1 heartbeat round trip, closed loops",
                    ratio(closed(.relayReverse), closed(.nginx201)), ""
                ),
                (
                    "translating relay with PostgreSQL state/nginx CPU per MeterValues round trip in a transaction, closed loops",
                    ratio(txClosed(.relayTranslatingPG), txClosed(.nginx)), "≤ 3"
                ),
                (
                    "PostgreSQL's CPU per translated MeterValues round trip (µs; beside the relay's)",
                    Self.median(transactions.databaseClosed[.relayTranslatingPG] ?? []), ""
                ),
                (
                    "translated MeterValues per CPU second with PostgreSQL state (one event loop, 1e6 / relay CPU µs)",
                    txClosed(.relayTranslatingPG).map { 1e6 / $0 }, "≥ 5000"
                ),
                ("recording: frame text / bytes on disk", compression.ratio, "≥ 8"),
                (
                    "relay with the write-ahead journal/relay compressing on the loop, CPU per MeterValues round trip, closed loops",
                    ratio(txClosed(.relay), txClosed(.relayOnLoop)), ""
                ),
                (
                    "relay with the write-ahead journal/relay compressing on the loop, CPU per MeterValues round trip, paced",
                    ratio(txPaced(.relay), txPaced(.relayOnLoop)), ""
                ),
                (
                    "translating relay with the journal/compressing on the loop, CPU per MeterValues round trip, closed loops",
                    ratio(txClosed(.relayTranslating), txClosed(.relayTranslatingOnLoop)), ""
                ),
                (
                    "relay judging every frame/relay judging none (validation.verdicts 0), CPU per MeterValues round trip, closed loops",
                    ratio(txClosed(.relay), txClosed(.relayUnjudged)), "≤ 1.1"
                ),
                (
                    "relay judging every frame/relay judging none, CPU per MeterValues round trip, paced",
                    ratio(txPaced(.relay), txPaced(.relayUnjudged)), "≤ 1.1"
                ),
                (
                    "translating relay judging every frame/judging none, CPU per MeterValues round trip, closed loops",
                    ratio(txClosed(.relayTranslating), txClosed(.relayTranslatingUnjudged)), "≤ 1.1"
                ),
                (
                    "relay with the journal p50 minus relay compressing on the loop p50 (µs)",
                    p50(.relay).flatMap { a in p50(.relayOnLoop).map { a - $0 } }, ""
                ),
            ] + baselineRatios + pairRatios
        }

        /// The pairs with an OCPP 2.1 peer, each against nginx carrying the same chargers' traffic.
        var pairRatios: [(String, Double?, String)] {
            [Target.relay21On201, .relay21On16, .relay16On21, .relay201On21].filter(targets.contains).flatMap {
                pair -> [(String, Double?, String)] in
                let what = pair.chargerSubprotocol == "ocpp1.6" ? "MeterValues" : "TransactionEvent (meter values)"
                let name = "\(pair.rawValue)/\(pair.nginxBaseline.rawValue) CPU per \(what) round trip"
                return [
                    ("\(name), closed loops", ratio(txClosed(pair), txClosed(pair.nginxBaseline)), "≤ 3"),
                    ("\(name), paced", ratio(txPaced(pair), txPaced(pair.nginxBaseline)), ""),
                ]
            }
        }

        /// With `--baseline`: this build's translating relays against the baseline build's, in the same rounds.
        var baselineRatios: [(String, Double?, String)] {
            guard targets.contains(.baselineTranslating) else { return [] }
            return [
                (
                    "translating relay/baseline CPU per MeterValues round trip, closed loops",
                    ratio(txClosed(.relayTranslating), txClosed(.baselineTranslating)), "≤ 1"
                ),
                (
                    "translating relay/baseline CPU per MeterValues round trip, paced",
                    ratio(txPaced(.relayTranslating), txPaced(.baselineTranslating)), ""
                ),
                (
                    "reverse relay/baseline CPU per TransactionEvent round trip, closed loops",
                    ratio(txClosed(.relayReverse), txClosed(.baselineReverse)), "≤ 1"
                ),
                (
                    "reverse relay/baseline CPU per TransactionEvent round trip, paced",
                    ratio(txPaced(.relayReverse), txPaced(.baselineReverse)), ""
                ),
            ]
        }

        var table: String {
            var lines = ["", "ocpp-relay benchmark, \(date), \(machine)"]
            let counts = Set(memory.values.flatMap(\.keys)).sorted()
            let header =
                ["target", "p50 µs", "p90", "p99", "p50 spread", "CPU µs/rt closed", "spread", "paced"]
                + ["MeterValues closed", "spread", "paced", "rt/s"]
                + counts.map { "KiB/conn @\($0)" } + ["storm s", "errors"]
            var rows = [header]
            for t in targets {
                var row = [
                    t.rawValue, cell(p50(t)), cell(p90(t)), cell(p99(t)), spread(latency[t]?.map(\.p50)),
                    cell(closed(t)), spread(cpuClosed[t]), cell(paced(t)),
                    cell(txClosed(t)), spread(transactions.closed[t]), cell(txPaced(t)), cell(txPerSecond(t)),
                ]
                row += counts.map { cell(memory[t]?[$0]) }
                row += [cell(storms[t]?.seconds), storms[t].map { String($0.errors) } ?? "–"]
                rows.append(row)
            }
            var widths = [Int](repeating: 0, count: header.count)
            for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
            for row in rows {
                lines.append(
                    row.enumerated().map { i, c in
                        i == 0
                            ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                            : String(repeating: " ", count: widths[i] - c.count) + c
                    }.joined(separator: "  ")
                )
            }
            lines.append("")
            for (name, value, target) in ratios {
                lines.append(
                    "\(name): \(value.map { String(format: "%.2f", $0) } ?? "–")\(target.isEmpty ? "" : "  (target \(target))")"
                )
            }
            lines.append(
                "realistic session: \(compression.frames) messages, \(compression.textBytes) bytes of frame text, \(compression.diskBytes) on disk, \(fmt(compression.bytesPerFrame)) bytes per message"
            )
            if let r = replayer {
                let relay = txClosed(.relay)
                lines.append(
                    "replayer: \(r.chargers) chargers replaying a charger's day as fast as the backend answers: "
                        + "\(r.roundTrips) round trips in \(fmt(r.seconds)) s (\(fmt(r.roundTripsPerSecond)) rt/s), "
                        + "\(fmt(r.cpuMicrosPerRoundTrip)) µs CPU per round trip"
                        + (relay.map {
                            " (\(String(format: "%.2f", r.cpuMicrosPerRoundTrip / $0))× the relay's per MeterValues)"
                        } ?? "")
                        + ", \(fmt(r.residentMiB)) MiB resident, \(r.differences) differences"
                )
            }
            lines.append(
                "CPU µs per round trip: heartbeats, then MeterValues inside a transaction (energy, power, current and voltage per phase; for 2.0.1 chargers TransactionEvent Updated with the same sample); rt/s: MeterValues round trips per second of the closed loops"
            )
            lines.append("medians of \(options.rounds) interleaved rounds; spreads are min–max over the rounds")
            return lines.joined(separator: "\n")
        }

        var json: String {
            var document: [String: Any] = ["machine": machine, "date": date, "rounds": options.rounds]
            var perTarget: [String: Any] = [:]
            for t in targets {
                var entry: [String: Any] = [:]
                if let l = latency[t] {
                    entry["latency_us"] = [
                        "p50": p50(t) ?? 0, "p90": p90(t) ?? 0, "p99": p99(t) ?? 0, "p50_rounds": l.map(\.p50),
                    ]
                }
                if let c = cpuClosed[t] {
                    entry["cpu_us_per_round_trip_closed"] = ["median": closed(t) ?? 0, "rounds": c]
                }
                if let c = cpuPaced[t] {
                    entry["cpu_us_per_round_trip_paced"] = ["median": paced(t) ?? 0, "rounds": c]
                }
                if let c = transactions.closed[t], let p = transactions.paced[t], let r = transactions.perSecond[t] {
                    entry["meter_values_in_transaction"] = [
                        "cpu_us_per_round_trip_closed": ["median": txClosed(t) ?? 0, "rounds": c],
                        "cpu_us_per_round_trip_paced": ["median": txPaced(t) ?? 0, "rounds": p],
                        "round_trips_per_second_closed": ["median": txPerSecond(t) ?? 0, "rounds": r],
                    ]
                }
                if let d = transactions.databaseClosed[t] {
                    entry["database_cpu_us_per_meter_values_round_trip_closed"] = [
                        "median": Self.median(d) ?? 0, "rounds": d,
                    ]
                }
                if let m = memory[t] {
                    entry["kib_per_idle_connection"] = Dictionary(
                        uniqueKeysWithValues: m.map { (String($0.key), $0.value) }
                    )
                }
                if let s = storms[t] { entry["storm"] = ["seconds": s.seconds, "errors": s.errors] }
                perTarget[t.rawValue] = entry
            }
            document["targets"] = perTarget
            document["ratios"] = Dictionary(
                uniqueKeysWithValues: ratios.map { ($0.0, $0.1.map { $0 as Any } ?? NSNull()) }
            )
            document["compression"] = [
                "messages": compression.frames, "text_bytes": compression.textBytes,
                "disk_bytes": compression.diskBytes,
                "ratio": compression.ratio, "bytes_per_message": compression.bytesPerFrame,
            ]
            if let r = replayer {
                document["replayer"] = [
                    "chargers": r.chargers, "round_trips": r.roundTrips, "seconds": r.seconds,
                    "round_trips_per_second": r.roundTripsPerSecond, "cpu_us_per_round_trip": r.cpuMicrosPerRoundTrip,
                    "resident_mib": r.residentMiB, "differences": r.differences,
                ]
            }
            let data =
                (try? JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]))
                ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }
}
