/// What a writer knows while the file system refuses its writes: since when, why, what it dropped meanwhile, and
/// when to try again (a backoff from 0.1 s doubling to 5 s). Pure: the writer says what happened and asks what to
/// do; nothing here touches a file or a clock.
struct WriteOutage: Sendable, Equatable {
    /// Microseconds before the first retry, and the most the wait grows to.
    static let firstBackoff: UInt64 = 100_000
    static let maximumBackoff: UInt64 = 5_000_000

    /// When writing first failed, and why it failed last.
    private(set) var since: UInt64
    private(set) var error: String
    /// Frames and records dropped so far.
    private(set) var frames = 0
    private(set) var records = 0
    private var firstLost: UInt64?
    private var lastLost: UInt64?
    private var retryAt: UInt64
    private var backoff: UInt64

    /// Writing failed at `now`.
    init(error: String, now: UInt64) {
        since = now
        self.error = error
        backoff = Self.firstBackoff
        retryAt = now + backoff
    }

    /// A retry failed too: wait twice as long, at most ``maximumBackoff``.
    mutating func failedAgain(error: String, now: UInt64) {
        self.error = error
        backoff = min(backoff * 2, Self.maximumBackoff)
        retryAt = now + backoff
    }

    /// Whether the next write may try the file again.
    func retryIsDue(now: UInt64) -> Bool { now >= retryAt }

    /// The next write tries at once (the writer is finishing).
    mutating func retryNow() { retryAt = 0 }

    /// Records that could not be written: the first of them from `oldest`, dropped at `now`.
    mutating func dropped(frames: Int, records: Int, oldest: UInt64, now: UInt64) {
        guard records > 0 else { return }
        self.frames += frames
        self.records += records
        if firstLost == nil { firstLost = oldest }
        lastLost = now
    }

    /// What to record once writing works again at `now`: nil when nothing was lost.
    func gap(now: UInt64) -> RecordingGap? {
        guard records > 0, let firstLost, let lastLost else { return nil }
        return RecordingGap(time: now, from: firstLost, to: lastLost, frames: frames, records: records, error: error)
    }
}
