import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Appends records to rolling, gzip-compressed segment files: one stream shared by every connection
/// of one event loop, records tagged with their connection.
///
/// Records are buffered until ``flush()``, which compresses them with a sync flush and hands them to the
/// kernel with `write(2)`. The relay flushes once per event-loop tick and forwards frames only after that,
/// so a frame is on its way to disk before it reaches the other side, and `kill -9` loses nothing forwarded.
///
/// When the file system refuses writes (full, a file size limit), nothing forwarded waits for it: the segment
/// being written is kept (its compressed bytes that did not reach the file wait in memory) and retried with a
/// backoff, records that arrive meanwhile are counted and dropped, and no new file is opened. Once writing works
/// again the segment is finished, and the next one restates the open connections and starts with a
/// ``RecordingGap`` saying what is missing.
///
/// Not thread-safe: one writer per event loop, used only from that loop.
public final class RecordingWriter {
    public let configuration: RecordingConfiguration
    public let loop: Int
    public let runID: String
    public let relayVersion: String

    private struct Tracked {
        var open: ConnectionOpen
        var frames = 0
        var messages = 0
        var textBytes = 0
        var rawBytes = 0
        var diskBytes = 0.0
        /// The connection's first close record: how it ended.
        var firstClose: ConnectionClose?

        /// The index line that reports these counters.
        func entry(_ type: IndexEntry.Kind, time: UInt64) -> IndexEntry {
            IndexEntry(
                type: type,
                time: time,
                connection: open.connection,
                charger: open.charger,
                frames: frames,
                rawBytes: rawBytes,
                diskBytes: Int(diskBytes.rounded()),
                messages: messages,
                textBytes: textBytes,
                closedBy: type == .close ? firstClose?.initiator : nil,
                closeCode: type == .close ? firstClose?.code : nil,
                closeReason: type == .close ? firstClose?.reason : nil
            )
        }
    }

    private var pending: [UInt8] = []
    /// Frames and records in `pending`, for the gap count when they cannot be written.
    private var pendingFrames = 0
    private var pendingRecords = 0
    private var pendingSince: UInt64?
    private var batchRaw: [UInt64: Int] = [:]
    private var tracked: [UInt64: Tracked] = [:]
    private var segment: Segment?
    private var sequence = 0

    /// Bytes written to segment files by this writer (compressed), for metrics.
    public private(set) var bytesWritten = 0
    /// Write failures so far (each failed attempt, retries included).
    public private(set) var writeErrors = 0
    /// Frames not recorded because writing failed, so far.
    public private(set) var lostFrames = 0
    /// The gap recorded when writing last worked again.
    public private(set) var lastGap: RecordingGap?

    /// Set while writes fail.
    private var outage: WriteOutage?

    /// Why recording fails, and since when; nil while it works.
    public var failure: (since: UInt64, error: String)? { outage.map { ($0.since, $0.error) } }
    /// The path of the segment being written, if any.
    public var currentSegmentPath: String? { segment?.path }

    /// Where the writer reads the time (records without one, outages, segment names).
    public let clock: RelayClock

    public init(
        configuration: RecordingConfiguration,
        loop: Int,
        runID: String,
        relayVersion: String,
        clock: RelayClock = .system
    ) {
        self.clock = clock
        self.configuration = configuration
        self.loop = loop
        self.runID = runID
        self.relayVersion = relayVersion
        pending.reserveCapacity(64 * 1024)
    }

    /// Whether records are waiting for ``flush()``.
    public var hasPending: Bool { !pending.isEmpty }

    // MARK: Records

    /// Records a connection opening (or a refusal, followed by ``close(_:final:)``).
    public func open(_ record: ConnectionOpen) {
        if segment == nil && outage == nil {
            // Start the segment now, so that it restates only the connections opened before this one.
            do { try startSegment(now: record.time) } catch { begin(error, now: record.time) }
        }
        tracked[record.connection] = Tracked(open: record)
        append(.open(record), connection: record.connection)
        indexLine(
            IndexEntry(
                type: .open,
                time: record.time,
                connection: record.connection,
                charger: record.charger,
                subprotocol: record.subprotocol
            )
        )
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
        let time = time ?? clock.wall()
        let start = pending.count
        RecordFormat.appendFrame(
            to: &pending,
            connection: connection,
            time: time,
            leg: leg,
            direction: direction,
            opcode: opcode,
            forwardedUnchanged: forwardedUnchanged,
            payload: payload
        )
        counted(
            frames: forwardedUnchanged ? 2 : 1,
            bytes: pending.count - start,
            payload: payload.count,
            connection,
            time
        )
    }

    /// Counts a frame record just appended (`frames`: 2 for one forwarded unchanged, which readers expand).
    private func counted(frames: Int, bytes size: Int, payload: Int, _ connection: UInt64, _ time: UInt64) {
        pendingFrames += 1
        pendingRecords += 1
        if pendingSince == nil { pendingSince = time }
        batchRaw[connection, default: 0] += size
        if var t = tracked[connection] {
            t.frames += frames
            t.messages += 1
            t.textBytes += payload
            t.rawBytes += size
            tracked[connection] = t
        }
    }

    /// Records a close or refusal; with `final` the connection is over (see ``endConnection(_:time:)``).
    public func close(_ record: ConnectionClose, final: Bool) {
        append(.close(record), connection: record.connection)
        if tracked[record.connection]?.firstClose == nil { tracked[record.connection]?.firstClose = record }
        if final { endConnection(record.connection, time: record.time) }
    }

    /// The connection is over: its counters go to the index and it is no longer restated in new segments.
    public func endConnection(_ connection: UInt64, time: UInt64? = nil) {
        let time = time ?? clock.wall()
        finishConnection(connection, time: time)
    }

    /// Records an error event.
    public func error(_ record: ConnectionErrorEvent) {
        append(.error(record), connection: record.connection)
    }

    /// Records a frame of a mirror's leg; `payload` is copied.
    public func mirrorFrame(
        connection: UInt64,
        mirror: String,
        direction: Direction,
        opcode: UInt8,
        payload: UnsafeRawBufferPointer
    ) {
        let time = clock.wall()
        let start = pending.count
        RecordFormat.appendMirrorFrame(
            to: &pending,
            connection: connection,
            time: time,
            mirror: mirror,
            direction: direction,
            opcode: opcode,
            payload: payload
        )
        counted(frames: 1, bytes: pending.count - start, payload: payload.count, connection, time)
    }

    /// Records how a message fared on a mirror.
    public func mirrorOutcome(_ outcome: MirrorOutcome) {
        append(.mirror(outcome), connection: outcome.connection)
    }

    private func append(_ record: Record, connection: UInt64) {
        let start = pending.count
        RecordFormat.append(record, to: &pending)
        pendingRecords += 1
        if pendingSince == nil { pendingSince = record.time }
        batchRaw[connection, default: 0] += pending.count - start
        if var t = tracked[connection] {
            t.rawBytes += pending.count - start
            tracked[connection] = t
        }
    }

    private func finishConnection(_ connection: UInt64, time: UInt64) {
        // Attribute this batch's bytes before the counters leave.
        try? flush()
        guard let t = tracked.removeValue(forKey: connection) else { return }
        indexLine(t.entry(.close, time: time))
    }

    // MARK: Flushing and rolling

    /// Compresses what is pending with a sync flush and writes it to the segment file. While writing fails, what
    /// is pending is dropped (and counted) until the retry is due.
    public func flush() throws {
        guard !pending.isEmpty || outage != nil else { return }
        let now = clock.wall()
        if outage != nil {
            let recovered: Bool
            do {
                recovered = try recover(now: now)
            } catch {
                dropPending()
                throw error
            }
            guard recovered else {
                dropPending()
                return
            }
        }
        guard !pending.isEmpty else { return }
        if segment == nil {
            do {
                try startSegment(now: now)
            } catch {
                begin(error, now: now)
                dropPending()
                throw error
            }
        }
        guard let current = segment else { return }
        let before = current.compressedBytes
        // Compressed straight from the buffer, which is then emptied in place: no copy, no new allocation. What
        // the file does not take waits in the segment: the stream stays whole.
        var failed: (any Error)?
        do {
            try pending.withUnsafeBytes { bytes throws in
                try current.compress(bytes, flush: .sync)
            }
        } catch {
            failed = error
        }
        let written = current.compressedBytes - before
        bytesWritten += written
        attribute(written: written, raw: batchRaw)
        clearPending()
        if let failed {
            begin(failed, now: now)
            throw failed
        }
        if current.compressedBytes >= configuration.rollBytes
            || now >= current.startTime + configuration.rollMicroseconds
        {
            try roll(now: now)
        }
    }

    /// Writing failed: keep the segment, retry later.
    private func begin(_ error: any Error, now: UInt64) {
        writeErrors += 1
        let text = (error as? RecordingWriteError)?.description ?? "\(error)"
        if outage != nil {
            outage?.failedAgain(error: text, now: now)
        } else {
            outage = WriteOutage(error: text, now: now)
        }
    }

    /// Tries the kept segment again when the retry is due. On success that segment is finished and a new one
    /// started: it restates the open connections, then says what is missing. Returns whether writing works again.
    private func recover(now: UInt64) throws -> Bool {
        guard let o = outage, o.retryIsDue(now: now) else { return false }
        let head: Int
        do {
            if let current = segment {
                try current.retry()
                try finishSegment(current, now: now)
            }
            head = try startSegment(now: now)
        } catch {
            begin(error, now: now)
            throw error
        }
        outage = nil
        if let gap = o.gap(now: now) {
            lastGap = gap
            var record: [UInt8] = []
            RecordFormat.append(.gap(gap), to: &record)
            pending.insert(contentsOf: record, at: head)
            pendingRecords += 1
        }
        return true
    }

    /// Drops what is pending while writing fails, counting it for the gap record.
    private func dropPending() {
        if outage != nil && pendingRecords > 0 {
            let now = clock.wall()
            outage?.dropped(frames: pendingFrames, records: pendingRecords, oldest: pendingSince ?? now, now: now)
            lostFrames += pendingFrames
        }
        clearPending()
    }

    private func attribute(written: Int, raw: [UInt64: Int]) {
        let total = raw.values.reduce(0, +)
        guard total > 0 else { return }
        for (connection, bytes) in raw {
            tracked[connection]?.diskBytes += Double(written) * Double(bytes) / Double(total)
        }
    }

    private func clearPending() {
        pending.removeAll(keepingCapacity: true)
        batchRaw.removeAll(keepingCapacity: true)
        pendingFrames = 0
        pendingRecords = 0
        pendingSince = nil
    }

    /// Rolls the segment when it is too old even without traffic. The relay calls this from a timer (and
    /// ``Retention`` off the event loop).
    public func maintenance(now: UInt64? = nil) {
        let now = now ?? clock.wall()
        if outage != nil {
            // No new segment while writing fails; the retry also runs without traffic.
            try? flush()
            return
        }
        if let current = segment, now >= current.startTime + configuration.rollMicroseconds {
            try? flush()
            try? roll(now: now)
        }
    }

    /// Finishes the current segment (it is complete and closed) and forgets nothing about open connections:
    /// the next record starts a new segment that restates them.
    public func roll(now: UInt64? = nil) throws {
        let now = now ?? clock.wall()
        guard segment != nil, outage == nil else { return }
        try flush()
        guard let current = segment, outage == nil else { return }
        do {
            try finishSegment(current, now: now)
        } catch {
            begin(error, now: now)
            throw error
        }
    }

    /// Ends `current` (index counters, end line, the gzip stream's end) and forgets it; a failure keeps it for the
    /// retry.
    private func finishSegment(_ current: Segment, now: UInt64) throws {
        for (connection, t) in tracked {
            indexLine(t.entry(.continued, time: now))
            tracked[connection] = Tracked(open: t.open)
        }
        indexLine(IndexEntry(type: .end, time: now, rawBytes: current.rawBytes, diskBytes: current.compressedBytes))
        try current.finish()
        segment = nil
    }

    /// Flushes and finishes the current segment; for shutdown.
    public func finish() {
        outage?.retryNow()
        try? flush()
        if let current = segment {
            if (try? finishSegment(current, now: clock.wall())) == nil {
                // Still failing: the file keeps its readable prefix (or goes, if nothing reached it).
                current.abandon()
                segment = nil
            }
        }
    }

    /// Opens a new segment; its head (header and restated connections) goes in front of what is pending. Returns
    /// the head's size.
    @discardableResult
    private func startSegment(now: UInt64) throws -> Int {
        sequence += 1
        let name =
            "ocpp-\(Timestamp.compact(now))-\(runID.prefix(8))-l\(loop)-\(sequence)"
        let path = (configuration.directory as NSString).appendingPathComponent(
            name + RecordingConfiguration.segmentSuffix
        )
        let indexPath = (configuration.directory as NSString).appendingPathComponent(
            name + RecordingConfiguration.indexSuffix
        )
        let fresh = try Segment(
            path: path,
            indexPath: indexPath,
            level: Int32(configuration.compressionLevel),
            startTime: now
        )
        segment = fresh
        // The segment restates itself and every connection still open, so it can be read alone.
        var head = RecordFormat.magic
        RecordFormat.append(
            .segmentHeader(
                SegmentHeader(relayVersion: relayVersion, runID: runID, loop: loop, sequence: sequence, time: now)
            ),
            to: &head
        )
        indexLine(IndexEntry(type: .segment, time: now, runID: runID))
        for (connection, t) in tracked.sorted(by: { $0.key < $1.key }) {
            var open = t.open
            open.resumed = true
            open.time = now
            RecordFormat.append(.open(open), to: &head)
            indexLine(
                IndexEntry(
                    type: .open,
                    time: now,
                    connection: connection,
                    charger: open.charger,
                    subprotocol: open.subprotocol,
                    resumed: true
                )
            )
        }
        pending.insert(contentsOf: head, at: 0)
        return head.count
    }

    private func indexLine(_ entry: IndexEntry) {
        // Without a segment (it could not be created) there is no index to write to; the records say it all.
        segment?.writeIndex(entry)
    }
}
