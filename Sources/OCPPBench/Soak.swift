import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OCPPTransport

/// A soak: N chargers with a charger's traffic through the relay (a process) for a given time, the backend restarted
/// on a schedule, and what a user checks printed as it goes and at the end: round trips and errors, transactions
/// started and stopped on both sides (none lost, none doubled), charger reconnections, the relay's RSS and CPU.
public struct Soak: Sendable {
    public struct Options: Sendable {
        public var relayBinary: String
        public var chargers = 1000
        public var duration: Duration = .seconds(600)
        public var ramp: Duration = .seconds(60)
        /// 0: the backend is never restarted.
        public var restartEvery: Duration = .seconds(600)
        public var restartPause: Duration = .seconds(5)
        public var restartKind = "close"
        /// `timeouts.reconnect_grace` of the relay (0: off).
        public var grace: Duration = .seconds(30)
        /// `limits.redial_rate` of the relay; `nil`: its default.
        public var redialRate: Double?
        /// 1.6 chargers on a 2.0.1 backend; else passed through to a 1.6 backend.
        public var translate = true
        public var sampleEvery: Duration = .seconds(60)
        public var meterInterval: Duration = .seconds(30)
        public var meterValues = 10
        public var heartbeat: Duration = .seconds(120)
        public var pause: Duration = .seconds(60)

        public init(relayBinary: String) {
            self.relayBinary = relayBinary
        }
    }

    /// One line of the printout.
    public struct Sample: Sendable, Codable {
        public var seconds: Int
        public var connected: Int
        public var roundTrips: Int
        public var perSecond: Double
        public var p50Milliseconds: Double
        public var p99Milliseconds: Double
        public var errors: Int
        public var reconnections: Int
        public var restarts: Int
        public var relayRSSMiB: Double
        public var relayCPUPercent: Double
    }

    /// The verdict: transactions on both sides, and what a user would call a failure.
    public struct Summary: Sendable, Codable {
        public var chargers: Int
        public var seconds: Int
        public var restarts: Int
        public var roundTrips: Int
        public var errors: Int
        public var reconnections: Int
        public var startsAnswered: Int
        public var stopsAnswered: Int
        public var startsAtBackend: Int
        public var stopsAtBackend: Int
        /// Transactions the charger saw started (or stopped) that the backend never got.
        public var lostStarts: Int
        public var lostStops: Int
        /// Starts or stops the backend got more than once.
        public var doubledStarts: Int
        public var doubledStops: Int
        /// The relay's RSS after the warm-up (the first sample after the ramp) and at the end.
        public var rssAfterWarmUpMiB: Double
        public var rssAtEndMiB: Double
        public var samples: [Sample]
    }

    let options: Options

    public init(_ options: Options) {
        self.options = options
    }

    public func run(print say: @escaping @Sendable (String) -> Void) async throws -> Summary {
        let o = options
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await SoakBackend.start(group: group)
        let grace = o.grace.components.seconds
        let relay = try ProxyProcess.relay(
            binary: o.relayBinary,
            backendPort: backend.port,
            translate: o.translate,
            mappings: nil,
            extraYAML: "timeouts:\n  reconnect_grace: \(grace)s\n  ping: 30s\n",
            extraLimits: o.redialRate.map { "  redial_rate: \($0)\n" } ?? ""
        )
        defer { relay.stop() }
        let totals = NIOLockedValueBox(SoakChargerTotals())
        var traffic = SoakTraffic()
        traffic.meterInterval = TimeAmount(o.meterInterval)
        traffic.meterValues = o.meterValues
        traffic.heartbeat = TimeAmount(o.heartbeat)
        traffic.pause = TimeAmount(o.pause)
        let chargers = (0..<o.chargers).map { n in
            let identity = String(format: "SOAK-%05d", n)
            return SoakCharger(
                identity: identity,
                dial: WebSocketDial(
                    host: "127.0.0.1",
                    port: relay.port,
                    path: "/ocpp/\(identity)",
                    subprotocols: ["ocpp1.6"]
                ),
                traffic: traffic,
                totals: totals,
                eventLoop: group.next()
            )
        }
        say(
            "soak: \(o.chargers) chargers (1.6\(o.translate ? " translated to 2.0.1" : ", passed through")), "
                + "\(o.duration.seconds) s, backend restart (\(o.restartKind)) every \(o.restartEvery.seconds) s, "
                + "reconnect grace \(grace) s"
        )
        let began = ContinuousClock.now
        // The ramp: chargers connect evenly over it.
        let gap = o.ramp / max(1, o.chargers)
        for (n, charger) in chargers.enumerated() {
            try await charger.start().get()
            if n % 100 == 99 { try await Task.sleep(until: began + gap * (n + 1)) }
        }
        say("all \(o.chargers) connected after \(String(format: "%.1f", (ContinuousClock.now - began).seconds)) s")

        let restarts = NIOLockedValueBox(0)
        let restarter = Task {
            guard o.restartEvery > .zero else { return }
            while !Task.isCancelled {
                try await Task.sleep(for: o.restartEvery)
                say("backend restart (\(o.restartKind), \(o.restartPause.seconds) s down)")
                try await backend.restart(SoakBackend.Restart(rawValue: o.restartKind) ?? .close, pause: o.restartPause)
                restarts.withLockedValue { $0 += 1 }
            }
        }
        var samples: [Sample] = []
        var lastCPU = relay.cpuSeconds
        var lastTime = ContinuousClock.now
        var lastRoundTrips = 0
        say("  time  connected   round trips    rt/s   p50 ms   p99 ms  errors  reconnects  restarts  RSS MiB  CPU %")
        while ContinuousClock.now - began < o.duration {
            let remaining = o.duration - (ContinuousClock.now - began)
            try await Task.sleep(for: min(o.sampleEvery, remaining))
            let now = ContinuousClock.now
            let cpu = relay.cpuSeconds
            let (snapshot, latencies) = totals.withLockedValue { totals -> (SoakChargerTotals, [UInt32]) in
                defer { totals.latencies.removeAll(keepingCapacity: true) }
                var copy = totals
                copy.started = []
                copy.stopped = []
                return (copy, totals.latencies.sorted())
            }
            let elapsed = (now - lastTime).seconds
            let sample = Sample(
                seconds: Int((now - began).seconds.rounded()),
                connected: snapshot.connected,
                roundTrips: snapshot.roundTrips,
                perSecond: Double(snapshot.roundTrips - lastRoundTrips) / elapsed,
                p50Milliseconds: Self.percentile(latencies, 0.50),
                p99Milliseconds: Self.percentile(latencies, 0.99),
                errors: snapshot.errors,
                reconnections: snapshot.reconnections,
                restarts: restarts.withLockedValue { $0 },
                relayRSSMiB: Double(relay.residentKiB) / 1024,
                relayCPUPercent: (cpu - lastCPU) / elapsed * 100
            )
            samples.append(sample)
            say(Self.line(sample))
            lastCPU = cpu
            lastTime = now
            lastRoundTrips = snapshot.roundTrips
        }
        restarter.cancel()
        say("finishing: every charger stops its transaction and closes")
        // All at once (each finishes its transaction): a charger waiting for a backend that is still restarting
        // must not hold the others up.
        let finishing = chargers.map { $0.finish() }
        for future in finishing { try? await future.get() }
        try await Task.sleep(for: .seconds(1))
        let ended = ContinuousClock.now
        let chargerSide = totals.withLockedValue { $0 }
        let backendSide = backend.ledger.withLockedValue { $0 }
        await backend.stop()
        try? await group.shutdownGracefully()
        let warm = samples.first { Double($0.seconds) >= o.ramp.seconds + 60 } ?? samples.first
        return Summary(
            chargers: o.chargers,
            seconds: Int((ended - began).seconds),
            restarts: restarts.withLockedValue { $0 },
            roundTrips: chargerSide.roundTrips,
            errors: chargerSide.errors,
            reconnections: chargerSide.reconnections,
            startsAnswered: chargerSide.started.count,
            stopsAnswered: chargerSide.stopped.count,
            startsAtBackend: backendSide.started.values.reduce(0, +),
            stopsAtBackend: backendSide.ended.values.reduce(0, +),
            lostStarts: chargerSide.started.filter { backendSide.started[$0] == nil }.count,
            lostStops: chargerSide.stopped.filter { backendSide.ended[$0] == nil }.count,
            doubledStarts: backendSide.started.values.filter { $0 > 1 }.count,
            doubledStops: backendSide.ended.values.filter { $0 > 1 }.count,
            rssAfterWarmUpMiB: warm?.relayRSSMiB ?? 0,
            rssAtEndMiB: samples.last?.relayRSSMiB ?? 0,
            samples: samples
        )
    }

    static func percentile(_ sorted: [UInt32], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
    }

    static func line(_ s: Sample) -> String {
        String(
            format: "%6d %10d %13d %7.1f %8.2f %8.2f %7d %11d %9d %8.1f %6.1f",
            s.seconds,
            s.connected,
            s.roundTrips,
            s.perSecond,
            s.p50Milliseconds,
            s.p99Milliseconds,
            s.errors,
            s.reconnections,
            s.restarts,
            s.relayRSSMiB,
            s.relayCPUPercent
        )
    }

    /// The printout's end: the verdict a user reads first.
    public static func verdict(_ s: Summary) -> String {
        """
        soak over: \(s.chargers) chargers, \(s.seconds) s, \(s.restarts) backend restart(s)
          round trips \(s.roundTrips), errors \(s.errors), charger reconnections \(s.reconnections)
          transactions started: \(s.startsAnswered) answered to chargers, \(s.startsAtBackend) at the backend; \
        lost \(s.lostStarts), doubled \(s.doubledStarts)
          transactions stopped: \(s.stopsAnswered) answered to chargers, \(s.stopsAtBackend) at the backend; \
        lost \(s.lostStops), doubled \(s.doubledStops)
          relay RSS \(String(format: "%.1f", s.rssAfterWarmUpMiB)) MiB after warm-up, \
        \(String(format: "%.1f", s.rssAtEndMiB)) MiB at the end
        """
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
