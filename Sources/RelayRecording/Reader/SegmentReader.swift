import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reads the records of one segment file, in order, up to its last complete record.
public struct SegmentReader {
    /// How reading a segment ended.
    public struct Outcome: Sendable, Hashable {
        /// Records read.
        public var records = 0
        /// Decompressed bytes after the last complete record: nonzero when the file was cut off
        /// (a crash, or a segment still being written).
        public var tornBytes = 0
        /// Set when the stream or a record was damaged; the records before it were delivered.
        public var damage: String?
        /// Whether the gzip stream ended properly (the segment was finished).
        public var complete = false
    }

    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Streams every record to `body`.
    /// - Throws: ``RecordingReadError`` if the file cannot be opened or is not a recording at all.
    @discardableResult
    public func forEach(_ body: (Record) throws -> Void) throws -> Outcome {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RecordingReadError(.io, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let inflater = try GzipInflater()
        var decoder = RecordDecoder()
        var outcome = Outcome()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var totalIn = 0
        readLoop: while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RecordingReadError(.io, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            totalIn += n
            do {
                try chunk.withUnsafeBytes { bytes in
                    try inflater.decompress(UnsafeRawBufferPointer(rebasing: bytes[0..<n])) { out in
                        decoder.feed(out)
                    }
                }
            } catch let error as RecordingReadError {
                outcome.damage = error.message
                try drain(&decoder, &outcome, body)
                break readLoop
            }
            try drain(&decoder, &outcome, body)
            if outcome.damage != nil { break }
        }
        if totalIn == 0 {
            throw RecordingReadError(.notARecording, "\(path) is empty")
        }
        outcome.complete = inflater.streamEnded && decoder.pendingByteCount == 0 && outcome.damage == nil
        outcome.tornBytes = decoder.pendingByteCount
        // What a dead writer had journaled but not compressed continues its segment.
        if outcome.damage == nil, let leftover = JournalLeftover.records(continuing: path), !leftover.isEmpty {
            var continued = RecordDecoder()
            continued.feed(RecordFormat.magic + leftover)
            try drain(&continued, &outcome, body)
            outcome.complete = false
        }
        if outcome.records == 0, let damage = outcome.damage {
            throw RecordingReadError(.notARecording, "\(path) is not an ocpp-relay recording: \(damage)")
        }
        return outcome
    }

    private func drain(_ decoder: inout RecordDecoder, _ outcome: inout Outcome, _ body: (Record) throws -> Void) throws
    {
        while true {
            let step: RecordDecoder.Step
            do {
                step = try decoder.next()
            } catch {
                if error.code == .notARecording || error.code == .unsupportedVersion { throw error }
                outcome.damage = error.message
                return
            }
            switch step {
            case .record(let record):
                outcome.records += 1
                try body(record)
            case .skipped: outcome.records += 1
            case .needMoreData: return
            }
        }
    }

    /// Reads all records into memory (for tests and small fixtures).
    public func readAll() throws -> (records: [Record], outcome: Outcome) {
        var records: [Record] = []
        let outcome = try forEach { records.append($0) }
        return (records, outcome)
    }
}
