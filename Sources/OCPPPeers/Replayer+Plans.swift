import Foundation
import NIOConcurrencyHelpers
import NIOCore
import OCPP
import OCPPReplay
import RelayRecording

/// Figures of runs in progress, for a live progress line (updated from every run's task).
public final class ReplayProgress: Sendable {
    public struct Figures: Sendable, Equatable {
        public var runs = 0
        public var connected = 0
        public var finished = 0
        public var roundTrips = 0
        public var differences = 0
        public var errors = 0
    }

    private let figures = NIOLockedValueBox(Figures())

    public init() {}

    public var current: Figures { figures.withLockedValue { $0 } }

    func update(_ change: (inout Figures) -> Void) { figures.withLockedValue(change) }

    /// `500 chargers: 480 connected, 12 finished; 6120 round trips, 3 differences, 0 unanswered`.
    public var line: String {
        let f = current
        return "\(f.runs) chargers: \(f.connected) connected, \(f.finished) finished; \(f.roundTrips) round trips, "
            + "\(f.differences) differences, \(f.errors) unanswered"
    }
}

extension Replayer {
    /// Replays every run of `plan` as a charger against the backend at `url` (`<url>/<identity>`): each at its
    /// start, at most `parallel` at once. A run that cannot connect is reported and the others go on.
    public static func run(
        _ plan: ReplayPlan,
        options: ReplayOptions,
        url: String,
        parallel: Int,
        group: any EventLoopGroup,
        progress: ReplayProgress? = nil
    ) async -> [ReplayRunResult] {
        progress?.update { $0.runs = plan.runs.count }
        let scripts = plan.scripts(options)
        let began = ContinuousClock.now
        let wallStart = Int64(Timestamp.now())
        var results = [ReplayRunResult?](repeating: nil, count: plan.runs.count)
        await withTaskGroup(of: (Int, ReplayRunResult).self) { tasks in
            var running = 0
            for (index, run) in plan.runs.enumerated() {
                if running >= max(parallel, 1), let (done, result) = await tasks.next() {
                    results[done] = result
                    running -= 1
                }
                try? await Task.sleep(until: began + .microseconds(run.startAfter))
                running += 1
                tasks.addTask {
                    let result = await runOne(run, script: scripts[run.source]!, options: options, progress: progress) {
                        session in
                        try await connect(url: url, identity: run.charger, session, group: group)
                    } start: { session, now in
                        session.start(at: now, origin: run.origin, scheduledStart: run.origin.map { _ in wallStart })
                    }
                    return (index, result)
                }
            }
            for await (done, result) in tasks { results[done] = result }
        }
        return results.map { $0! }
    }

    /// Serves every run of `plan` as the backend on `host:port`: a charger that connects gets the next run of its
    /// identity (one run: any charger). Runs whose charger did not connect within `acceptTimeout` seconds of the
    /// start are reported as not run.
    public static func serve(
        _ plan: ReplayPlan,
        options: ReplayOptions,
        host: String,
        port: Int,
        acceptTimeout: Double,
        group: any EventLoopGroup,
        progress: ReplayProgress? = nil,
        onListening: @Sendable (Int) -> Void
    ) async throws -> [ReplayRunResult] {
        progress?.update { $0.runs = plan.runs.count }
        let scripts = plan.scripts(options)
        let subprotocols = scripts.values.compactMap { try? $0.get().subprotocol }
        let listener = try await PeerTransport.listen(
            host: host,
            port: port,
            supported: Array(Set(subprotocols)).sorted(),
            group: group
        )
        onListening(listener.port)
        let book = NIOLockedValueBox(ServedRuns(plan))
        let watchdog = Task {
            try? await Task.sleep(for: .microseconds(Int64(acceptTimeout * 1e6)))
            if book.withLockedValue({ $0.waiting > 0 }) { listener.close() }
        }
        defer { watchdog.cancel() }
        try? await listener.serve { socket, path in
            let identity = path.split(separator: "/").last.flatMap { try? ChargePointIdentity(pathSegment: $0) }
            guard let (index, run) = book.withLockedValue({ $0.take(identity?.value) }) else {
                try? await socket.channel.channel.close()
                return
            }
            let result = await runOne(
                run,
                script: scripts[run.source]!,
                identity: identity?.value,
                options: options,
                progress: progress
            ) { _ in
                socket
            } start: { session, now in
                session.start(at: now)
            }
            if book.withLockedValue({ $0.finish(index, result) }) { listener.close() }
        }
        return book.withLockedValue { $0.results(notConnectedWithin: acceptTimeout) }
    }

    /// One run, from connecting to its report; never throws: what went wrong is the result.
    static func runOne(
        _ run: ReplayPlan.Run,
        script: Result<ReplayScript, FixtureError>,
        identity: String? = nil,
        options: ReplayOptions,
        progress: ReplayProgress?,
        socket: (ReplaySession) async throws -> PeerSocket,
        start: @escaping (inout ReplaySession, Int64) -> [ReplayAction]
    ) async -> ReplayRunResult {
        let began = ContinuousClock.now
        func seconds() -> Double {
            let elapsed = ContinuousClock.now - began
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        let charger = identity ?? run.charger
        do {
            var session = ReplaySession(script: try script.get(), options: options, identity: charger) {
                UUID().uuidString.lowercased()
            }
            let connected = try await socket(session)
            progress?.update { $0.connected += 1 }
            var seen = (exchanges: 0, other: 0)
            let report = try await drive(&session, on: connected, start: start) { report in
                guard let progress, report.exchanges.count != seen.exchanges || report.other.count != seen.other
                else { return }
                let new = report.exchanges[seen.exchanges...]
                let answered = new.filter { $0.answer != .none }.count
                let differences = new.reduce(report.other.count - seen.other) { $0 + $1.mismatches.count }
                progress.update {
                    $0.roundTrips += answered
                    $0.errors += new.count - answered
                    $0.differences += differences
                }
                seen = (report.exchanges.count, report.other.count)
            }
            progress?.update {
                $0.connected -= 1
                $0.finished += 1
            }
            return ReplayRunResult(name: run.name, charger: charger, report: report, seconds: seconds())
        } catch {
            progress?.update { $0.finished += 1 }
            return ReplayRunResult(
                name: run.name,
                charger: charger,
                report: nil,
                couldNotRun: "\(error)",
                seconds: seconds()
            )
        }
    }
}

/// The runs a served plan still waits for, by identity, and what the finished ones found.
struct ServedRuns: Sendable {
    private var runs: [ReplayPlan.Run]
    private var taken: [Bool]
    private var finished: [ReplayRunResult?]

    init(_ plan: ReplayPlan) {
        runs = plan.runs
        taken = Array(repeating: false, count: plan.runs.count)
        finished = Array(repeating: nil, count: plan.runs.count)
    }

    var waiting: Int { taken.filter { !$0 }.count }

    /// The next run for a charger of this identity (a plan of one run serves any charger).
    mutating func take(_ identity: String?) -> (Int, ReplayPlan.Run)? {
        let index =
            runs.count == 1
            ? (taken[0] ? nil : 0) : runs.indices.first { !taken[$0] && runs[$0].charger == identity }
        guard let index else { return nil }
        taken[index] = true
        return (index, runs[index])
    }

    /// Records a run's result; `true` once every run has finished.
    mutating func finish(_ index: Int, _ result: ReplayRunResult) -> Bool {
        finished[index] = result
        return !finished.contains { $0 == nil }
    }

    func results(notConnectedWithin seconds: Double) -> [ReplayRunResult] {
        runs.indices.map { index in
            finished[index]
                ?? ReplayRunResult(
                    name: runs[index].name,
                    charger: runs[index].charger,
                    report: nil,
                    // A plan of one run serves any charger; more are matched by identity.
                    couldNotRun: "no charger \(runs.count == 1 ? "" : runs[index].charger + " ")connected within "
                        + "\(Int(seconds)) s",
                    seconds: 0
                )
        }
    }
}
