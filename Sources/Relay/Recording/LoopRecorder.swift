import Logging
import NIOCore
import NIOWebSocket
import RelayObservability
import RelayRecording

/// The recorder of one event loop: one shared recording stream for every connection on the loop.
///
/// Frames are recorded when they arrive; what they cause (forwarding them, closing the other leg) waits in
/// ``afterFlush(_:)`` until the end of the loop tick, when the writer copies every record of the tick into the
/// loop's write-ahead journal (a memory-mapped file: no system call, no compression on the loop). So nothing reaches
/// the other side before its record is in the kernel's page cache, where `kill -9` cannot take it.
///
/// Confined to its event loop.
final class LoopRecorder {
    let eventLoop: any EventLoop
    let writer: RecordingWriter
    /// Masking keys for the loop's upstream legs (per loop, like the recorder, to keep the frame path cheap).
    let maskingKeys = MaskingKeySource()
    /// The periodic checks of the loop's sessions.
    lazy var timers = LoopTimers(eventLoop: eventLoop)
    private let logger: Logger
    /// The relay's clock (the writer's).
    var clock: RelayClock { writer.clock }
    private var actions: [() -> Void] = []
    /// Actions that wait for `actions` as well: the mirrors' writes, so that the primary path's frames of a tick
    /// leave first.
    private var trailingActions: [() -> Void] = []
    private var flushScheduled = false
    private var lastErrorReport: UInt64 = 0
    /// Where masked payloads are unmasked for recording: one buffer for the loop, reused for every frame.
    private var scratch = ByteBuffer()

    private let metrics: RelayMetrics?
    private let health: RecordingHealth?
    private var countedBytes = 0
    private var countedErrors = 0
    private var countedLost = 0
    /// The failure `health` was last told of.
    private var reportedFailure: String?
    private var retryScheduled = false

    init(
        eventLoop: any EventLoop,
        writer: RecordingWriter,
        logger: Logger,
        metrics: RelayMetrics? = nil,
        health: RecordingHealth? = nil
    ) {
        self.eventLoop = eventLoop
        self.writer = writer
        self.logger = logger
        self.metrics = metrics
        self.health = health
    }

    /// Calls `body` with the payload's bytes, unmasked into the loop's scratch buffer when `key` is set (the
    /// bytes forwarded keep their mask).
    func withUnmasked<Result>(
        _ payload: ByteBuffer,
        key: WebSocketMaskingKey?,
        _ body: (UnsafeRawBufferPointer) -> Result
    ) -> Result {
        guard let key else { return payload.withUnsafeReadableBytes(body) }
        scratch.clear()
        scratch.writeImmutableBuffer(payload)
        scratch.withUnsafeMutableReadableBytes { WireFrame.applyMask(key, to: $0) }
        return scratch.withUnsafeReadableBytes(body)
    }

    /// Runs `action` once everything recorded so far has been written.
    func afterFlush(_ action: @escaping () -> Void) {
        actions.append(action)
        scheduleFlush()
    }

    /// Runs `action` once everything recorded so far has been written, after the tick's ``afterFlush(_:)``
    /// actions (work that must not delay the primary path: a mirror's frames).
    func afterFlushTrailing(_ action: @escaping () -> Void) {
        trailingActions.append(action)
        scheduleFlush()
    }

    /// Makes sure records written outside a frame path (events) reach the file this tick.
    func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolatedUnsafeUnchecked().execute { [self] in flushNow() }
    }

    func flushNow() {
        flushScheduled = false
        // A full disk must not take the fleet down: frames keep flowing, and ``report()`` says it loudly.
        try? writer.flush()
        report()
        // Actions may record and queue more; those run on the next flush.
        let ready = actions
        actions.removeAll(keepingCapacity: true)
        for action in ready { action() }
        guard !trailingActions.isEmpty else { return }
        let trailing = trailingActions
        trailingActions.removeAll(keepingCapacity: true)
        for action in trailing { action() }
    }

    /// The periodic roll and retention (and, while writing fails, one more retry).
    func maintenance() {
        writer.maintenance()
        report()
    }

    /// Counts what the writer did, and says when recording starts or stops failing; while it fails, a retry is
    /// scheduled even without traffic (the writer's backoff decides whether it writes).
    private func report() {
        let figures = writer.figures
        if let metrics,
            figures.bytesWritten != countedBytes || figures.writeErrors != countedErrors
                || figures.lostFrames != countedLost
        {
            metrics.recorded(
                bytes: figures.bytesWritten - countedBytes,
                errors: figures.writeErrors - countedErrors,
                lostFrames: figures.lostFrames - countedLost
            )
            countedBytes = figures.bytesWritten
            countedErrors = figures.writeErrors
            countedLost = figures.lostFrames
        }
        let failing = figures.failure
        if let failing, case let now = clock.wall(), now - lastErrorReport > 10_000_000 {
            lastErrorReport = now
            logger.error(
                "recording write failed; frames are still forwarded",
                metadata: ["error": "\(failing.error)", "write_errors": "\(figures.writeErrors)"]
            )
        }
        let failure = failing.map { "cannot write since \(Timestamp.rfc3339($0.since)): \($0.error)" }
        if failure != reportedFailure {
            if failure == nil, let gap = figures.lastGap {
                logger.notice(
                    "recording works again; the gap is recorded",
                    metadata: [
                        "frames_not_recorded": "\(gap.frames)", "from": "\(Timestamp.rfc3339(gap.from))",
                        "to": "\(Timestamp.rfc3339(gap.to))",
                    ]
                )
            }
            reportedFailure = failure
            health?.set(loop: writer.loop, failure: failure)
        }
        if failure != nil && !retryScheduled {
            retryScheduled = true
            eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .milliseconds(200)) { [self] in
                retryScheduled = false
                flushNow()
            }
        }
    }
}

/// Periodic checks of the sessions on one event loop (liveness pings, translated calls that expire): one timer per
/// interval for all of them, not one per session, so that an idle charger costs no timer of its own.
///
/// Confined to its event loop.
final class LoopTimers {
    private let eventLoop: any EventLoop
    private var groups: [Int64: Group] = [:]

    /// Unchecked `Sendable`: used on its event loop only.
    private final class Group: @unchecked Sendable {
        var task: RepeatedTask?
        var members: [ObjectIdentifier: () -> Void] = [:]
    }

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `action` every `interval` (give or take one interval for the first run) until ``remove(_:)``.
    func add(_ owner: ObjectIdentifier, every period: Duration, _ action: @escaping () -> Void) {
        let interval = TimeAmount(period)
        let group: Group
        if let existing = groups[interval.nanoseconds] {
            group = existing
        } else {
            group = Group()
            groups[interval.nanoseconds] = group
            group.task = eventLoop.scheduleRepeatedTask(
                initialDelay: interval,
                delay: interval
            ) { _ in
                for action in Array(group.members.values) { action() }
            }
        }
        group.members[owner] = action
    }

    /// Stops every check of `owner`; a timer nobody needs any more stops too.
    func remove(_ owner: ObjectIdentifier) {
        for (interval, group) in groups where group.members.removeValue(forKey: owner) != nil {
            if group.members.isEmpty {
                group.task?.cancel()
                groups[interval] = nil
            }
        }
    }
}
