import Foundation
import Synchronization

/// The thread that empties one loop's ``Journal`` into segments: every ``interval`` (or at once when the loop has
/// committed an eighth of the journal, or waits for room), it compresses everything committed as one block with one
/// sync flush and one `write(2)`, and frees its space. So a busy loop pays neither a wake-up nor a deflate block
/// per tick, and the segments lag the journal by at most about ``interval`` (what a reader sees of a live relay).
///
/// The loop and this thread share only the journal's offsets, a sleeping flag, and the figures the loop reports.
final class JournalCompressor: @unchecked Sendable {
    /// How long committed records may wait for the thread.
    static let interval: TimeInterval = 0.01

    let journal: Journal
    /// Used only on the thread (and by `finish` after it has stopped).
    private let segments: SegmentWriter
    private let condition = NSCondition()
    private let sleeping = Atomic<Bool>(false)
    private let room = NSCondition()
    private let waitingForRoom = Atomic<Bool>(false)
    /// Guarded by `condition`.
    private var stopping = false
    private var rollRequested = false
    private let published = Mutex(RecordingFigures())
    private var thread: Thread?
    private let stopped = NSCondition()
    private var hasStopped = false

    init(journal: Journal, segments: SegmentWriter) {
        self.journal = journal
        self.segments = segments
        segments.onSegmentStart = { [journal] path, sequence in journal.segmentStarted(path: path, sequence: sequence) }
    }

    func start(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    var figures: RecordingFigures { published.withLock { $0 } }

    // MARK: The loop's side

    /// Records were committed: wake the thread if it sleeps and an eighth of the journal waits (otherwise its
    /// timer comes soon enough).
    func committed() {
        guard journal.backlog >= journal.capacity / 8 else { return }
        wake()
    }

    private func wake() {
        guard sleeping.load(ordering: .sequentiallyConsistent) else { return }
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    /// Waits (on the loop: a full journal holds it, as a slow disk held a `write(2)`) until the journal has `bytes`
    /// free or `timeout` passes; false when it has not.
    func waitForRoom(_ bytes: Int, timeout: TimeInterval) -> Bool {
        waitOnThread(timeout: timeout) { journal.capacity - journal.backlog >= bytes }
    }

    /// Waits (on the loop) until the thread has taken everything committed, or `timeout` passes: while recording
    /// fails, so that what it drops is counted before the tick's frames are forwarded.
    func waitUntilTaken(timeout: TimeInterval) {
        _ = waitOnThread(timeout: timeout) { journal.backlog == 0 }
    }

    /// Wakes the thread and waits until `done` holds (the thread signals after each span it takes) or `timeout`
    /// passes; returns `done` at the end.
    private func waitOnThread(timeout: TimeInterval, until done: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        room.lock()
        defer { room.unlock() }
        waitingForRoom.store(true, ordering: .sequentiallyConsistent)
        defer { waitingForRoom.store(false, ordering: .sequentiallyConsistent) }
        while !done() {
            wake()
            guard room.wait(until: deadline) else { return done() }
        }
        return true
    }

    /// Asks the thread to finish the current segment now.
    func requestRoll() {
        condition.lock()
        rollRequested = true
        condition.signal()
        condition.unlock()
    }

    /// Stops the thread after it has written everything committed, then finishes the segment and removes the
    /// journal.
    func finish() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        stopped.lock()
        while !hasStopped { stopped.wait() }
        stopped.unlock()
        segments.finish()
        publish()
        if journal.backlog == 0 { journal.remove() }
    }

    // MARK: The thread

    private func run() {
        while true {
            condition.lock()
            sleeping.store(true, ordering: .sequentiallyConsistent)
            if !stopping && !rollRequested {
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.interval))
            }
            sleeping.store(false, ordering: .sequentiallyConsistent)
            let stop = stopping
            let roll = rollRequested
            rollRequested = false
            condition.unlock()
            drain()
            if roll { try? segments.roll() }
            segments.maintenance()
            publish()
            if stop && journal.nextSpan() == nil { break }
        }
        stopped.lock()
        hasStopped = true
        stopped.signal()
        stopped.unlock()
    }

    /// Compresses every committed span and frees its space.
    private func drain() {
        while let span = journal.nextSpan() {
            journal.willWrite(upTo: span.start + span.bytes.count)
            try? segments.write(span.bytes)
            journal.consumed(upTo: span.next)
            publish()
            if waitingForRoom.load(ordering: .sequentiallyConsistent) {
                room.lock()
                room.broadcast()
                room.unlock()
            }
        }
    }

    private func publish() {
        let figures = segments.figures
        published.withLock { $0 = figures }
    }
}
