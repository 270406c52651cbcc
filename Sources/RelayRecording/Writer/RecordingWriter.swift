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
                textBytes: textBytes
            )
        }
    }

    private var pending: [UInt8] = []
    private var batchRaw: [UInt64: Int] = [:]
    private var tracked: [UInt64: Tracked] = [:]
    private var segment: Segment?
    private var sequence = 0

    /// Bytes written to segment files by this writer (compressed), for metrics.
    public private(set) var bytesWritten = 0
    /// Write failures so far.
    public private(set) var writeErrors = 0
    /// The path of the segment being written, if any.
    public var currentSegmentPath: String? { segment?.path }

    public init(configuration: RecordingConfiguration, loop: Int, runID: String, relayVersion: String) {
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
        if segment == nil {
            // Start the segment now, so that it restates only the connections opened before this one.
            do { try startSegment(now: record.time) } catch { writeErrors += 1 }
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
        time: UInt64 = Timestamp.now()
    ) {
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
        let size = pending.count - start
        batchRaw[connection, default: 0] += size
        if var t = tracked[connection] {
            t.frames += forwardedUnchanged ? 2 : 1
            t.messages += 1
            t.textBytes += payload.count
            t.rawBytes += size
            tracked[connection] = t
        }
    }

    /// Records a close or refusal; with `final` the connection is over (see ``endConnection(_:time:)``).
    public func close(_ record: ConnectionClose, final: Bool) {
        append(.close(record), connection: record.connection)
        if final { endConnection(record.connection, time: record.time) }
    }

    /// The connection is over: its counters go to the index and it is no longer restated in new segments.
    public func endConnection(_ connection: UInt64, time: UInt64 = Timestamp.now()) {
        finishConnection(connection, time: time)
    }

    /// Records an error event.
    public func error(_ record: ConnectionErrorEvent) {
        append(.error(record), connection: record.connection)
    }

    private func append(_ record: Record, connection: UInt64) {
        let start = pending.count
        RecordFormat.append(record, to: &pending)
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

    /// Compresses what is pending with a sync flush and writes it to the segment file.
    public func flush() throws {
        guard !pending.isEmpty else { return }
        let now = Timestamp.now()
        if segment == nil {
            do {
                try startSegment(now: now)
            } catch {
                discardPending()
                writeErrors += 1
                throw error
            }
        }
        guard let current = segment else { return }
        let before = current.compressedBytes
        // Compressed straight from the buffer, which is then emptied in place: no copy, no new allocation.
        do {
            try pending.withUnsafeBytes { bytes throws in
                try current.compress(bytes, flush: .sync)
            }
        } catch {
            // The stream now has a gap: end this segment where it is readable and start afresh next time.
            discardPending()
            writeErrors += 1
            current.abandon()
            segment = nil
            throw error
        }
        pending.removeAll(keepingCapacity: true)
        let written = current.compressedBytes - before
        bytesWritten += written
        attribute(written: written, raw: batchRaw)
        batchRaw.removeAll(keepingCapacity: true)
        if current.compressedBytes >= configuration.rollBytes
            || now >= current.startTime + UInt64(configuration.rollSeconds) * 1_000_000
        {
            try roll(now: now)
        }
    }

    private func attribute(written: Int, raw: [UInt64: Int]) {
        let total = raw.values.reduce(0, +)
        guard total > 0 else { return }
        for (connection, bytes) in raw {
            tracked[connection]?.diskBytes += Double(written) * Double(bytes) / Double(total)
        }
    }

    private func discardPending() {
        pending.removeAll(keepingCapacity: true)
        batchRaw.removeAll(keepingCapacity: true)
    }

    /// Rolls the segment when it is too old even without traffic, and applies retention.
    /// The relay calls this from a timer.
    public func maintenance(now: UInt64 = Timestamp.now()) {
        if let current = segment, now >= current.startTime + UInt64(configuration.rollSeconds) * 1_000_000 {
            try? flush()
            try? roll(now: now)
        }
        applyRetention(now: now)
    }

    /// Finishes the current segment (it is complete and closed) and forgets nothing about open connections:
    /// the next record starts a new segment that restates them.
    public func roll(now: UInt64 = Timestamp.now()) throws {
        guard let current = segment else { return }
        try flush()
        for (connection, t) in tracked {
            indexLine(t.entry(.continued, time: now))
            tracked[connection] = Tracked(open: t.open)
        }
        indexLine(IndexEntry(type: .end, time: now, rawBytes: current.rawBytes, diskBytes: current.compressedBytes))
        segment = nil
        try current.finish()
        applyRetention(now: now)
    }

    /// Flushes and finishes the current segment; for shutdown.
    public func finish() {
        try? flush()
        if let current = segment {
            let now = Timestamp.now()
            for t in tracked.values {
                indexLine(t.entry(.continued, time: now))
            }
            indexLine(IndexEntry(type: .end, time: now, rawBytes: current.rawBytes, diskBytes: current.compressedBytes))
            segment = nil
            try? current.finish()
        }
    }

    private func startSegment(now: UInt64) throws {
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
    }

    private func indexLine(_ entry: IndexEntry) {
        // Without a segment (it could not be created) there is no index to write to; the records say it all.
        segment?.writeIndex(entry)
    }

    private func applyRetention(now: UInt64) {
        guard let retention = configuration.retentionSeconds else { return }
        let cutoff = Double(now) / 1_000_000 - Double(retention)
        let directory = configuration.directory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasSuffix(RecordingConfiguration.segmentSuffix) {
            let path = (directory as NSString).appendingPathComponent(name)
            if path == segment?.path { continue }
            var info = stat()
            guard stat(path, &info) == 0, Double(info.st_mtim.tv_sec) < cutoff else { continue }
            unlink(path)
            unlink(
                String(path.dropLast(RecordingConfiguration.segmentSuffix.count)) + RecordingConfiguration.indexSuffix
            )
        }
    }
}
