import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What the journals of a dead process still hold: records it copied (and so forwarded) but had not yet compressed
/// into its segment. Readers show them as the continuation of that segment; the next relay started on the folder
/// writes them into a segment of their own and removes the journal. Nothing is lost, and nothing doubled: the span
/// the dead compressor was writing when it died is compared with the end of its segment.
public enum JournalLeftover {
    /// A journal's records that are not in its segment, and the connections that segment left open.
    struct Pending {
        var header:
            (committed: Int, consumed: Int, intent: Int, sequence: Int, loop: Int, runID: String, segment: String)
        /// Whole records (journal-only ones included), span by span.
        var spans: [[UInt8]]
        var open: [ConnectionOpen]
    }

    /// The encoded records that continue `segmentPath` in the journal its dead writer left, if any (for readers).
    static func records(continuing segmentPath: String) -> [UInt8]? {
        let directory = (segmentPath as NSString).deletingLastPathComponent
        let name = (segmentPath as NSString).lastPathComponent
        for path in journals(of: directory) {
            guard let journal = Journal.openLeftover(path, exclusive: false), journal.header.segment == name else {
                continue
            }
            let pending = pending(journal, recordings: directory)
            var records: [UInt8] = []
            for span in pending.spans {
                span.withUnsafeBytes { records += asWritten($0) }
            }
            return records
        }
        return nil
    }

    /// Writes what the dead journals of `configuration`'s folder hold into new segments of their runs, and removes
    /// the journals. Returns one line per journal for the log.
    public static func recover(
        _ configuration: RecordingConfiguration,
        relayVersion: String,
        clock: RelayClock
    ) -> [String] {
        var report: [String] = []
        for path in journals(of: configuration.directory) {
            guard let journal = Journal.openLeftover(path, exclusive: true) else { continue }
            let pending = pending(journal, recordings: configuration.directory)
            let header = pending.header
            let bytes = pending.spans.reduce(0) { $0 + $1.count }
            if bytes > 0 {
                let segments = SegmentWriter(
                    configuration: configuration,
                    loop: header.loop,
                    runID: header.runID,
                    relayVersion: relayVersion,
                    clock: clock,
                    sequence: header.sequence
                )
                segments.resume(pending.open)
                do {
                    for span in pending.spans { try span.withUnsafeBytes { try segments.write($0) } }
                } catch {
                    report.append("\(path): \(bytes) bytes of records could not be written (\(error)); kept")
                    continue
                }
                segments.finish()
                report.append(
                    "\(path): \(bytes) bytes of records run \(header.runID) had not compressed are now in "
                        + (segments.lastFinishedPath.map { ($0 as NSString).lastPathComponent } ?? "?")
                )
            }
            journal.remove()
        }
        return report
    }

    /// The journals beside a recordings folder.
    private static func journals(of recordings: String) -> [String] {
        let directory = RecordingConfiguration.journalDirectory(forRecordings: recordings)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(Journal.suffix) }.sorted().map {
            (directory as NSString).appendingPathComponent($0)
        }
    }

    /// Reads a dead journal: the span its compressor was writing is dropped when its segment already ends with it.
    static func pending(_ journal: Journal, recordings: String) -> Pending {
        let header = journal.header
        var consumed = header.consumed
        var open: [ConnectionOpen] = []
        if !header.segment.isEmpty {
            let segment = (recordings as NSString).appendingPathComponent(header.segment)
            let writing =
                header.intent > consumed ? asWritten(journal.bytes(from: consumed, to: header.intent)) : []
            let tail = SegmentTail(path: segment, keeping: writing.count)
            open = tail.open
            if !writing.isEmpty && tail.bytes == writing { consumed = header.intent }
        }
        var spans: [[UInt8]] = []
        while let span = journal.span(from: consumed, verify: true) {
            if span.bytes.count > 0 { spans.append(Array(span.bytes)) }
            consumed = span.next
        }
        return Pending(header: header, spans: spans, open: open)
    }

    /// Records as ``SegmentWriter`` writes them: without the journal-only ones, a full journal's count as a gap.
    private static func asWritten(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var kept: [UInt8] = []
        var scan = RecordScan(bytes, verify: true)
        while let record = scan.next() {
            if record.kind == RecordFormat.Kind.overflow.rawValue {
                let json = Data(UnsafeRawBufferPointer(rebasing: bytes[record.rest]))
                if let gap = try? JSONDecoder().decode(RecordingGap.self, from: json) {
                    RecordFormat.append(.gap(gap), to: &kept)
                }
            } else if !record.isJournalOnly {
                kept += bytes[record.range]
            }
        }
        return kept
    }
}

/// The end of a segment's decompressed records and the connections it leaves open (opened, or restated, and not
/// closed).
struct SegmentTail {
    var bytes: [UInt8] = []
    var open: [ConnectionOpen] = []

    init(path: String, keeping count: Int) {
        guard let handle = FileHandle(forReadingAtPath: path), let inflater = try? GzipInflater() else { return }
        defer { try? handle.close() }
        var decoder = RecordDecoder()
        var opened: [UInt64: ConnectionOpen] = [:]
        var tail: [UInt8] = []
        while let chunk = try? handle.read(upToCount: 64 * 1024), !chunk.isEmpty {
            let ok =
                (try? chunk.withUnsafeBytes { compressed in
                    try inflater.decompress(compressed) { out in
                        decoder.feed(out)
                        if count > 0 {
                            tail += out
                            if tail.count > 2 * count { tail.removeFirst(tail.count - count) }
                        }
                    }
                }) != nil
            while case .record(let record)? = try? decoder.next() {
                switch record {
                case .open(let o): opened[o.connection] = o
                case .close(let c): opened[c.connection] = nil
                default: break
                }
            }
            if !ok { break }
        }
        bytes = Array(tail.suffix(count))
        open = opened.values.sorted { $0.connection < $1.connection }
    }
}
