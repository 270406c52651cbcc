import Foundation

/// Turns batches of encoded records into rolling, gzip-compressed segment files and their indexes: the half of
/// recording that compresses and writes. It learns what it needs (open connections, per-connection counters) from
/// the records themselves, so it can run wherever the records are: on the event loop after each tick, on the
/// journal's compressor thread, or over a journal a dead process left behind.
///
/// When the file system refuses writes (full, a file size limit), the segment being written is kept (its
/// compressed bytes that did not reach the file wait in memory) and retried with a backoff; batches that arrive
/// meanwhile are counted and dropped, and no new file is opened. Once writing works again the segment is finished,
/// and the next one restates the open connections and starts with a ``RecordingGap`` saying what is missing.
///
/// Not thread-safe: used by one thread at a time.
final class SegmentWriter {
    let configuration: RecordingConfiguration
    let loop: Int
    let runID: String
    let relayVersion: String
    let clock: RelayClock

    private struct Tracked {
        var open: ConnectionOpen
        var frames = 0
        var messages = 0
        var textBytes = 0
        var rawBytes = 0
        var diskBytes = 0.0
        /// The connection's first close record: how it ended.
        var firstClose: ConnectionClose?
        /// Frames the observer found invalid (a record it added after them).
        var invalid = 0

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
                closeReason: type == .close ? firstClose?.reason : nil,
                invalid: open.judged == true ? invalid : nil
            )
        }
    }

    private var tracked: [UInt64: Tracked] = [:]
    private var batchRaw: [UInt64: Int] = [:]
    /// Compressed bytes of runs not yet flushed (shared among their connections at the flush).
    private var bytesPending = 0
    /// Whether runs were compressed without a flush since the last one.
    private var unflushed = false
    private var segment: Segment?
    private(set) var sequence: Int
    private static let decoder = JSONDecoder()

    /// Compressed bytes written to segment files, write failures (retries included), frames not recorded.
    private(set) var bytesWritten = 0
    private(set) var writeErrors = 0
    private(set) var lostFrames = 0
    /// The gap recorded when writing last worked again.
    private(set) var lastGap: RecordingGap?
    /// Set while writes fail.
    private var outage: WriteOutage?
    /// Told the path and sequence of every segment started (the journal keeps them for recovery).
    var onSegmentStart: ((String, Int) -> Void)?
    /// Sees every text frame of the charger's and the upstream's legs and may add a record after it.
    var observer: (any FrameObserver)?

    /// Why recording fails, and since when; nil while it works.
    var failure: (since: UInt64, error: String)? { outage.map { ($0.since, $0.error) } }
    /// The path of the segment being written, if any, and of the last one finished.
    var currentSegmentPath: String? { segment?.path }
    private(set) var lastFinishedPath: String?

    var figures: RecordingFigures {
        RecordingFigures(
            bytesWritten: bytesWritten,
            writeErrors: writeErrors,
            lostFrames: lostFrames,
            lastGap: lastGap,
            failure: failure,
            currentSegmentPath: currentSegmentPath
        )
    }

    init(
        configuration: RecordingConfiguration,
        loop: Int,
        runID: String,
        relayVersion: String,
        clock: RelayClock,
        sequence: Int = 0
    ) {
        self.configuration = configuration
        self.loop = loop
        self.runID = runID
        self.relayVersion = relayVersion
        self.clock = clock
        self.sequence = sequence
    }

    /// Connections to restate in the first segment (those a dead process left open), as if opened here.
    func resume(_ opens: [ConnectionOpen]) {
        for open in opens { tracked[open.connection] = Tracked(open: open) }
    }

    // MARK: Batches

    /// Writes a batch of whole records, compressed with a sync flush (journal-only records are obeyed, not written).
    /// While writing fails, the batch is dropped and counted until the retry is due.
    func write(_ batch: UnsafeRawBufferPointer) throws {
        guard batch.count > 0 || outage != nil else { return }
        let now = clock.wall()
        if outage != nil {
            let recovered: Bool
            do {
                recovered = try recover(now: now)
            } catch {
                drop(batch, now: now)
                throw error
            }
            guard recovered else { return drop(batch, now: now) }
        }
        guard batch.count > 0 else { return }
        if segment == nil {
            do {
                try startSegment(now: now)
            } catch {
                begin(error, now: now)
                drop(batch, now: now)
                throw error
            }
        }
        var runStart = 0
        var scan = RecordScan(batch)
        do {
            while let record = scan.next() {
                guard record.isJournalOnly else {
                    count(record, in: batch)
                    if let added = observe(record, in: batch) {
                        tracked[record.connection]?.invalid += 1
                        try compress(
                            UnsafeRawBufferPointer(rebasing: batch[runStart..<record.range.upperBound]),
                            flush: .none
                        )
                        var bytes: [UInt8] = []
                        RecordFormat.append(added, to: &bytes)
                        try bytes.withUnsafeBytes { try compress($0, flush: .none) }
                        runStart = record.range.upperBound
                    }
                    continue
                }
                try compress(UnsafeRawBufferPointer(rebasing: batch[runStart..<record.range.lowerBound]))
                runStart = record.range.upperBound
                try obey(record, in: batch, now: now)
            }
            try compress(UnsafeRawBufferPointer(rebasing: batch[runStart...]))
        } catch {
            observer?.publish(now: now)
            begin(error, now: now)
            throw error
        }
        observer?.publish(now: now)
        if let current = segment,
            current.compressedBytes >= configuration.rollBytes
                || now >= current.startTime + configuration.rollMicroseconds
        {
            try roll(now: now)
        }
    }

    /// Updates the counters of the record's connection.
    private func count(_ record: ScannedRecord, in batch: UnsafeRawBufferPointer) {
        let size = record.range.count
        batchRaw[record.connection, default: 0] += size
        switch RecordFormat.Kind(rawValue: record.kind) {
        case .open:
            guard let open = decode(ConnectionOpen.self, record, batch) else { return }
            tracked[open.connection] = Tracked(open: open)
            observer?.opened(open)
            indexLine(
                IndexEntry(
                    type: .open,
                    time: open.time,
                    connection: open.connection,
                    charger: open.charger,
                    subprotocol: open.subprotocol,
                    judged: open.judged
                )
            )
        case .close:
            if tracked[record.connection]?.firstClose == nil {
                tracked[record.connection]?.firstClose = decode(ConnectionClose.self, record, batch)
            }
        case .frame, .mirrorFrame:
            guard var t = tracked[record.connection] else { return }
            let flags = batch[record.rest.lowerBound]
            if record.kind == RecordFormat.Kind.frame.rawValue {
                t.frames += flags & RecordFormat.FrameFlags.forwardedUnchanged != 0 ? 2 : 1
                t.textBytes += record.rest.count - 2
            } else {
                t.frames += 1
                t.textBytes += record.rest.count - 3 - Int(batch[record.rest.lowerBound + 2])
            }
            t.messages += 1
            t.rawBytes += size
            tracked[record.connection] = t
            return
        default:
            break
        }
        tracked[record.connection]?.rawBytes += size
    }

    /// Carries out a journal-only record.
    private func obey(_ record: ScannedRecord, in batch: UnsafeRawBufferPointer, now: UInt64) throws {
        if record.kind == RecordFormat.Kind.endConnection.rawValue {
            observer?.ended(record.connection)
            guard let t = tracked.removeValue(forKey: record.connection) else { return }
            indexLine(t.entry(.close, time: record.time))
        } else if let gap = decode(RecordingGap.self, record, batch) {
            // The journal was full: what it could not take is missing, here.
            lostFrames += gap.frames
            lastGap = gap
            var bytes: [UInt8] = []
            RecordFormat.append(.gap(gap), to: &bytes)
            try bytes.withUnsafeBytes { try compress($0) }
        }
    }

    /// Shows a text frame of the charger's or the upstream's leg to the observer.
    private func observe(_ record: ScannedRecord, in batch: UnsafeRawBufferPointer) -> Record? {
        guard let observer, record.kind == RecordFormat.Kind.frame.rawValue, record.rest.count >= 2,
            batch[record.rest.lowerBound + 1] == 1
        else { return nil }
        let flags = batch[record.rest.lowerBound]
        return observer.frame(
            connection: record.connection,
            time: record.time,
            leg: flags & RecordFormat.FrameFlags.upstream != 0 ? .upstream : .charger,
            direction: flags & RecordFormat.FrameFlags.out != 0 ? .out : .in,
            text: UnsafeRawBufferPointer(rebasing: batch[(record.rest.lowerBound + 2)..<record.rest.upperBound])
        )
    }

    private func decode<T: Decodable>(_ type: T.Type, _ record: ScannedRecord, _ batch: UnsafeRawBufferPointer) -> T? {
        try? Self.decoder.decode(type, from: Data(UnsafeRawBufferPointer(rebasing: batch[record.rest])))
    }

    /// Compresses a run of records (with a sync flush, unless more of the batch follows), and shares the bytes
    /// written among the connections of the runs since the last flush.
    private func compress(_ run: UnsafeRawBufferPointer, flush: GzipDeflater.Flush = .sync) throws {
        guard run.count > 0 || (flush != .none && unflushed), let current = segment else { return }
        unflushed = flush == .none
        let before = current.compressedBytes
        var failed: (any Error)?
        do {
            try current.compress(run, flush: flush)
        } catch {
            failed = error
        }
        if flush == .none, failed == nil {
            bytesPending += current.compressedBytes - before
            return
        }
        let written = current.compressedBytes - before + bytesPending
        bytesPending = 0
        bytesWritten += written
        let total = batchRaw.values.reduce(0, +)
        if total > 0 {
            for (connection, bytes) in batchRaw {
                tracked[connection]?.diskBytes += Double(written) * Double(bytes) / Double(total)
            }
        }
        batchRaw.removeAll(keepingCapacity: true)
        if let failed { throw failed }
    }

    // MARK: Outages

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
        do {
            if let current = segment {
                try current.retry()
                try finishSegment(current, now: now)
            }
            try startSegment(now: now)
        } catch {
            begin(error, now: now)
            throw error
        }
        outage = nil
        if let gap = o.gap(now: now) {
            lastGap = gap
            var record: [UInt8] = []
            RecordFormat.append(.gap(gap), to: &record)
            try record.withUnsafeBytes { try compress($0) }
        }
        return true
    }

    /// Drops a batch while writing fails, counting it for the gap record (the connections' ends still count).
    private func drop(_ batch: UnsafeRawBufferPointer, now: UInt64) {
        var frames = 0
        var records = 0
        var oldest: UInt64?
        var scan = RecordScan(batch)
        while let record = scan.next() {
            if record.isJournalOnly {
                try? obey(record, in: batch, now: now)
                continue
            }
            count(record, in: batch)
            records += 1
            if record.isFrame { frames += 1 }
            if oldest == nil { oldest = record.time }
        }
        batchRaw.removeAll(keepingCapacity: true)
        guard outage != nil, records > 0 else { return }
        outage?.dropped(frames: frames, records: records, oldest: oldest ?? now, now: now)
        lostFrames += frames
    }

    // MARK: Rolling

    /// Rolls the segment when it is too old even without traffic, and retries while writing fails.
    func maintenance(now: UInt64? = nil) {
        let now = now ?? clock.wall()
        observer?.publish(now: now)
        if outage != nil {
            // No new segment while writing fails; the retry also runs without traffic.
            try? write(UnsafeRawBufferPointer(start: nil, count: 0))
            return
        }
        if let current = segment, now >= current.startTime + configuration.rollMicroseconds {
            try? roll(now: now)
        }
    }

    /// Finishes the current segment (it is complete and closed) and forgets nothing about open connections:
    /// the next record starts a new segment that restates them.
    func roll(now: UInt64? = nil) throws {
        let now = now ?? clock.wall()
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
        lastFinishedPath = current.path
        segment = nil
    }

    /// Finishes the current segment; for shutdown.
    func finish() {
        outage?.retryNow()
        if outage != nil { try? write(UnsafeRawBufferPointer(start: nil, count: 0)) }
        if let current = segment {
            if (try? finishSegment(current, now: clock.wall())) == nil {
                // Still failing: the file keeps its readable prefix (or goes, if nothing reached it).
                current.abandon()
                segment = nil
            }
        }
    }

    /// Opens a new segment and writes its head: the header and every connection still open, so it reads alone.
    private func startSegment(now: UInt64) throws {
        sequence += 1
        (unflushed, bytesPending) = (false, 0)
        let name = "ocpp-\(Timestamp.compact(now))-\(runID.prefix(8))-l\(loop)-\(sequence)"
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
        onSegmentStart?(path, sequence)
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
                    resumed: true,
                    judged: open.judged
                )
            )
        }
        try head.withUnsafeBytes { try fresh.compress($0, flush: .none) }
    }

    private func indexLine(_ entry: IndexEntry) {
        // Without a segment (it could not be created) there is no index to write to; the records say it all.
        segment?.writeIndex(entry)
    }
}

/// What a recording writer tells its event loop about itself: for metrics, health and retention.
public struct RecordingFigures: Sendable {
    /// Compressed bytes written to segment files, so far.
    public var bytesWritten = 0
    /// Write failures so far (each failed attempt, retries included).
    public var writeErrors = 0
    /// Frames not recorded because writing failed (or the journal was full), so far.
    public var lostFrames = 0
    /// The gap recorded when writing last worked again.
    public var lastGap: RecordingGap?
    /// Why recording fails, and since when; nil while it works.
    public var failure: (since: UInt64, error: String)?
    /// The path of the segment being written, if any.
    public var currentSegmentPath: String?
}
