import Foundation
import OCPP

#if canImport(Glibc)
    import Glibc
#endif

/// The replayer's own cost: `ocpp-relay replay` as a process, one realistic fixture (a charger's day: boot, three
/// transactions of 30 MeterValues each, heartbeats) played as many chargers against the bench's backend as fast as
/// it answers. Its CPU per round trip says how many load machines a test of a given rate needs.
enum BenchReplayer {
    struct Figures: Sendable {
        var chargers: Int
        var roundTrips: Int
        var differences: Int
        var seconds: Double
        var cpuMicrosPerRoundTrip: Double
        var residentMiB: Double

        var roundTripsPerSecond: Double { seconds > 0 ? Double(roundTrips) / seconds : 0 }
    }

    /// The realistic session as a fixture, answered as the bench's backend answers it.
    static func fixture() -> String {
        var lines = [#"{"fixture":1,"charger":"BENCH-REPLAY","version":"1.6","source":"ocpp-relay bench"}"#]
        var millis = 0
        var transactions = 0
        func entry(_ direction: String, _ text: String) {
            millis += 1
            let time = RFC3339.format(1_795_766_400_000_000 + Int64(millis) * 1000, fractionDigits: 3)
            lines.append(
                JSONValue.object([
                    ("time", .string(time)), ("charger", .string("BENCH-REPLAY")), ("leg", .string("charger")),
                    ("dir", .string(direction)), ("version", .string("1.6")), ("text", .string(text)),
                ]).jsonText
            )
        }
        for (n, frame) in RealisticSession.frames(charger: 1).enumerated() {
            let text = frame.replacingOccurrences(of: "\"ID\"", with: "\"\(n)\"")
            guard case .call(let call) = try? RPCFrame.parse(text) else { continue }
            if call.action == "StartTransaction" { transactions += 1 }
            entry("in", text)
            let answer = BackendHandler.answer(call.action, v201: false, transaction: transactions)
            entry("out", "[3,\"\(n)\",\(answer)]")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Runs `binary replay` as `chargers` chargers against the backend on `port`.
    static func measure(binary: String, backendPort: Int, chargers: Int) throws -> Figures {
        let directory = ProxyProcess.temporaryDirectory("replayer")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fixturePath = "\(directory)/day.jsonl"
        let report = "\(directory)/report.json"
        try fixture().write(toFile: fixturePath, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "replay", fixturePath, "--as", "charger", "--target", "ws://127.0.0.1:\(backendPort)/ocpp",
            "--chargers", "\(chargers)", "--id-template", "BENCH-REPLAY-{n}", "--report", "json", report,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        var before = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &before)
        let began = ContinuousClock.now
        try process.run()
        var peakKiB = 0
        while process.isRunning {
            peakKiB = max(peakKiB, ProcStat.residentKiB(process.processIdentifier))
            Thread.sleep(forTimeInterval: 0.1)
        }
        process.waitUntilExit()
        let elapsed = ContinuousClock.now - began
        var after = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &after)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        let cpu =
            seconds(after.ru_utime) + seconds(after.ru_stime) - seconds(before.ru_utime) - seconds(before.ru_stime)
        guard let data = FileManager.default.contents(atPath: report),
            let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)),
            let roundTrips = json.value(at: "summary.roundTrips")?.intValue
        else {
            throw ReplayerFailed(description: "the replayer wrote no report (exit \(process.terminationStatus))")
        }
        return Figures(
            chargers: chargers,
            roundTrips: roundTrips,
            differences: json.value(at: "summary.differences")?.intValue ?? 0,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            cpuMicrosPerRoundTrip: roundTrips > 0 ? cpu * 1e6 / Double(roundTrips) : 0,
            residentMiB: Double(peakKiB) / 1024
        )
    }

    struct ReplayerFailed: Error, CustomStringConvertible {
        let description: String
    }
}
