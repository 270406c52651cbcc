#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where the relay reads the time: one clock, injected where time is read (the server, sessions, recorders, the
/// translation, the state store), so that they agree and a test can set it. Timers stay with the event loops.
public struct RelayClock: Sendable {
    /// Wall-clock microseconds since the Unix epoch: what records, logs and payload timestamps say.
    public let wall: @Sendable () -> UInt64
    /// Nanoseconds on a clock that never goes back: intervals (message budgets, call timeouts, caches).
    public let monotonic: @Sendable () -> UInt64

    public init(wall: @escaping @Sendable () -> UInt64, monotonic: @escaping @Sendable () -> UInt64) {
        self.wall = wall
        self.monotonic = monotonic
    }

    /// The system's clocks (CLOCK_REALTIME, CLOCK_MONOTONIC).
    public static let system = RelayClock(
        wall: Timestamp.now,
        monotonic: {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        }
    )

    /// The wall clock in seconds since the Unix epoch (the console's charts).
    public var wallSeconds: Double { Double(wall()) / 1_000_000 }

    /// The wall clock as RFC 3339 (payload timestamps the relay fills in).
    public var rfc3339: String { Timestamp.rfc3339(wall()) }
}
