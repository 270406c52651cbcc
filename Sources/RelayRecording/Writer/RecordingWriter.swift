import Foundation

/// Records one event loop's connections: records are encoded as they happen and, at ``flush()`` (once per loop
/// tick, before anything of the tick is forwarded), handed on as one batch.
///
/// With a write-ahead journal (the default), the batch is copied into the loop's memory-mapped ``Journal``, which
/// survives `kill -9` as a `write(2)` would, and a ``JournalCompressor`` thread compresses what accumulates into the
/// segments off the loop. Without one (`journalBytes` 0, or a journal that could not be reserved), the batch is
/// compressed with a sync flush and written with `write(2)` on the loop, by the same ``SegmentWriter``.
///
/// Not thread-safe: one writer per event loop, used only from that loop.
public final class RecordingWriter {
    public let configuration: RecordingConfiguration
    public let loop: Int
    public let runID: String
    public let relayVersion: String
    /// Where the writer reads the time (records without one, outages, segment names).
    public let clock: RelayClock
    /// Why there is no journal although one was configured (the writer then compresses on the loop).
    public let journalProblem: String?

    private enum Mode {
        case onLoop(SegmentWriter)
        case journaled(JournalCompressor)
    }
    private let mode: Mode
    private var pending: [UInt8] = []
    /// Records the journal could not take, not yet reported to the compressor, and the ends of connections among
    /// them (which still count).
    private var overflow: RecordingGap?
    private var overflowEnds: [UInt8] = []
    /// How long the loop waits for room in a full journal before it drops a batch.
    private static let roomTimeout: TimeInterval = 2

    public init(
        configuration: RecordingConfiguration,
        loop: Int,
        runID: String,
        relayVersion: String,
        clock: RelayClock = .system,
        observer: (any FrameObserver)? = nil
    ) {
        self.configuration = configuration
        self.loop = loop
        self.runID = runID
        self.relayVersion = relayVersion
        self.clock = clock
        pending.reserveCapacity(64 * 1024)
        let segments = SegmentWriter(
            configuration: configuration,
            loop: loop,
            runID: runID,
            relayVersion: relayVersion,
            clock: clock
        )
        segments.observer = observer
        guard configuration.journalBytes > 0 else {
            mode = .onLoop(segments)
            journalProblem = nil
            return
        }
        do {
            let journal = try Journal.create(
                directory: configuration.journalDirectory,
                runID: runID,
                loop: loop,
                capacity: configuration.journalBytes
            )
            let compressor = JournalCompressor(journal: journal, segments: segments)
            compressor.start(name: "recording-l\(loop)")
            mode = .journaled(compressor)
            journalProblem = nil
        } catch {
            mode = .onLoop(segments)
            journalProblem = "\(error)"
        }
    }

    /// Whether records are waiting for ``flush()``.
    public var hasPending: Bool { !pending.isEmpty }
    /// Whether a journal takes the records (rather than the loop compressing them).
    public var isJournaled: Bool {
        if case .journaled = mode { return true }
        return false
    }

    // MARK: Records

    /// Records a connection opening (or a refusal, followed by ``close(_:final:)``).
    public func open(_ record: ConnectionOpen) {
        RecordFormat.append(.open(record), to: &pending)
    }

    /// Records a frame; `payload` is copied.
    public func frame(
        connection: UInt64,
        leg: Leg,
        direction: Direction,
        opcode: UInt8,
        forwardedUnchanged: Bool,
        payload: UnsafeRawBufferPointer,
        time: UInt64? = nil
    ) {
        RecordFormat.appendFrame(
            to: &pending,
            connection: connection,
            time: time ?? clock.wall(),
            leg: leg,
            direction: direction,
            opcode: opcode,
            forwardedUnchanged: forwardedUnchanged,
            payload: payload
        )
    }

    /// Records a close or refusal; with `final` the connection is over (see ``endConnection(_:time:)``).
    public func close(_ record: ConnectionClose, final: Bool) {
        RecordFormat.append(.close(record), to: &pending)
        if final { endConnection(record.connection, time: record.time) }
    }

    /// The connection is over: its counters go to the index and it is no longer restated in new segments.
    public func endConnection(_ connection: UInt64, time: UInt64? = nil) {
        RecordFormat.appendEndConnection(connection, time: time ?? clock.wall(), to: &pending)
    }

    /// Records an error event.
    public func error(_ record: ConnectionErrorEvent) {
        RecordFormat.append(.error(record), to: &pending)
    }

    /// Records a frame of a mirror's leg; `payload` is copied.
    public func mirrorFrame(
        connection: UInt64,
        mirror: String,
        direction: Direction,
        opcode: UInt8,
        payload: UnsafeRawBufferPointer
    ) {
        RecordFormat.appendMirrorFrame(
            to: &pending,
            connection: connection,
            time: clock.wall(),
            mirror: mirror,
            direction: direction,
            opcode: opcode,
            payload: payload
        )
    }

    /// Records how a message fared on a mirror.
    public func mirrorOutcome(_ outcome: MirrorOutcome) {
        RecordFormat.append(.mirror(outcome), to: &pending)
    }

    // MARK: Flushing

    /// Hands the tick's records on: into the journal, or compressed into the segment file. Once this returns they
    /// survive the process. Throws when the segment file refuses them (on the loop only: the journal's thread
    /// reports through ``failure``).
    public func flush() throws {
        defer { pending.removeAll(keepingCapacity: true) }
        switch mode {
        case .onLoop(let segments):
            try pending.withUnsafeBytes { try segments.write($0) }
        case .journaled(let compressor):
            guard !pending.isEmpty else { return }
            journal(compressor)
            // While writing fails, the thread drops what it takes: wait for it, so that the counts are exact when the
            // tick's frames reach their peers.
            if compressor.figures.failure != nil { compressor.waitUntilTaken(timeout: Self.roomTimeout) }
        }
    }

    /// Copies the pending records into the journal, in pieces of at most half its size; a piece that finds no room
    /// within ``roomTimeout`` is counted as lost and reported when there is room again.
    private func journal(_ compressor: JournalCompressor) {
        let journal = compressor.journal
        if let gap = overflow {
            var record: [UInt8] = []
            RecordFormat.appendOverflow(gap, to: &record)
            record += overflowEnds
            if record.withUnsafeBytes({ journal.append($0) }) {
                overflow = nil
                overflowEnds.removeAll()
            }
        }
        pending.withUnsafeBytes { all in
            let limit = journal.capacity / 2
            var start = 0
            var end = 0
            var scan = RecordScan(all)
            func put(_ range: Range<Int>) {
                let piece = UnsafeRawBufferPointer(rebasing: all[range])
                if overflow == nil
                    && (journal.append(piece)
                        || (compressor.waitForRoom(piece.count, timeout: Self.roomTimeout) && journal.append(piece)))
                {
                    return
                }
                lost(piece)
            }
            // The common tick fits in one piece: no need to walk its records.
            guard all.count > limit else { return put(0..<all.count) }
            while let record = scan.next() {
                if record.range.upperBound - start > limit && end > start {
                    put(start..<end)
                    start = end
                }
                end = record.range.upperBound
            }
            if end > start { put(start..<end) }
        }
        compressor.committed()
    }

    /// Counts records the journal could not take.
    private func lost(_ piece: UnsafeRawBufferPointer) {
        let now = clock.wall()
        var gap =
            overflow
            ?? RecordingGap(
                time: now,
                from: now,
                to: now,
                frames: 0,
                records: 0,
                error: "the write-ahead journal (\(configuration.journalBytes) bytes) was full"
            )
        var scan = RecordScan(piece)
        while let record = scan.next() {
            guard !record.isJournalOnly else {
                overflowEnds += UnsafeRawBufferPointer(rebasing: piece[record.range])
                continue
            }
            gap.records += 1
            if record.isFrame { gap.frames += 1 }
            gap.from = min(gap.from, record.time)
        }
        gap.to = now
        gap.time = now
        overflow = gap
    }

    // MARK: Figures

    /// What the writer has done so far (read once per report: through the journal's thread, a copy under a lock).
    public var figures: RecordingFigures {
        switch mode {
        case .onLoop(let segments): segments.figures
        case .journaled(let compressor): compressor.figures
        }
    }

    /// The path of the segment being written, if any.
    public var currentSegmentPath: String? { figures.currentSegmentPath }

    // MARK: Maintenance

    /// Rolls the segment when it is too old even without traffic (the journal's thread does this itself). The relay
    /// calls this from a timer (and ``Retention`` off the event loop).
    public func maintenance(now: UInt64? = nil) {
        if case .onLoop(let segments) = mode { segments.maintenance(now: now) }
    }

    /// Finishes the current segment now; the next record starts a new one that restates the open connections.
    public func roll() throws {
        try flush()
        switch mode {
        case .onLoop(let segments): try segments.roll()
        case .journaled(let compressor): compressor.requestRoll()
        }
    }

    /// Writes everything and finishes the current segment; for shutdown. The journal, emptied, is removed.
    public func finish() {
        try? flush()
        switch mode {
        case .onLoop(let segments): segments.finish()
        case .journaled(let compressor): compressor.finish()
        }
    }
}
