import NIOConcurrencyHelpers

/// Spreads the redials of lost upstreams across the whole relay (`limits.redial_rate` per second), so that a
/// restarted backend meets a steady trickle of reconnections, not the fleet at once: each redial gets the next free
/// slot, `1/rate` after the previous one. Shared by every event loop.
final class RedialPacer: Sendable {
    /// The slots as a pure schedule: which moment (monotonic nanoseconds) the next redial may go.
    struct Schedule: Equatable, Sendable {
        /// Nanoseconds between two redials; 0: not paced.
        let interval: UInt64
        private(set) var next: UInt64 = 0
        /// Redials that took a slot so far.
        private(set) var taken: UInt64 = 0

        init(perSecond rate: Double) {
            interval = rate > 0 ? UInt64((1e9 / rate).rounded()) : 0
        }

        /// Takes the first free slot at or after `earliest`; returns it.
        mutating func take(earliest: UInt64) -> UInt64 {
            taken &+= 1
            guard interval > 0 else { return earliest }
            let slot = max(earliest, next)
            next = slot + interval
            return slot
        }
    }

    private let schedule: NIOLockedValueBox<Schedule>

    init(perSecond rate: Double) {
        schedule = NIOLockedValueBox(Schedule(perSecond: rate))
    }

    /// Redials scheduled so far (the relay's memory is given back after a burst of them, as after a burst of
    /// connections).
    var redials: UInt64 { schedule.withLockedValue { $0.taken } }

    /// How long a redial that would go `wait` nanoseconds after `now` waits for its slot, in all.
    func delay(now: UInt64, wait: UInt64) -> UInt64 {
        schedule.withLockedValue { $0.take(earliest: now + wait) } - now
    }
}
