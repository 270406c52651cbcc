import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One segment file being written: its gzip stream, its file descriptor and its index file.
///
/// A write that fails (a full disk, a file size limit) loses nothing of the stream: the compressed bytes that did
/// not reach the file are kept and written by ``retry()``, so the stream has no gap once writing works again.
final class Segment {
    let path: String
    let indexPath: String
    let startTime: UInt64
    private let deflater: GzipDeflater
    private var file: AppendFile
    private var index: AppendFile
    private var finished = false
    private(set) var rawBytes = 0
    /// Compressed bytes in the file.
    var compressedBytes: Int { file.written }
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    init(path: String, indexPath: String, level: Int32, startTime: UInt64) throws {
        self.path = path
        self.indexPath = indexPath
        self.startTime = startTime
        self.deflater = try GzipDeflater(level: level)
        try Self.makeDirectory(for: path)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecordingWriteError("cannot create \(path): \(String(cString: strerror(errno)))") }
        file = AppendFile(fd: fd, path: path)
        // Index lines wait for a retry up to 1 MiB; past that the index is given up (no `end` line), and readers
        // scan the segment instead.
        index = AppendFile(
            fd: Glibc.open(indexPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644),
            path: indexPath,
            maximumUnwritten: 1 << 20
        )
    }

    deinit {
        abandon()
    }

    private static func makeDirectory(for path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RecordingWriteError("cannot create \(directory): \(error.localizedDescription)")
        }
    }

    func compress(_ bytes: UnsafeRawBufferPointer, flush: GzipDeflater.Flush) throws {
        rawBytes += bytes.count
        try deflater.compress(bytes, flush: flush) { chunk in file.append(chunk) }
        try file.check()
    }

    /// Writes what earlier writes could not.
    func retry() throws {
        try file.retry()
        try index.retry()
    }

    func writeIndex(_ entry: IndexEntry) {
        guard var line = try? Self.encoder.encode(entry) else { return }
        line.append(0x0A)
        // An index line that cannot be written waits with the stream's bytes; the segment is the record.
        line.withUnsafeBytes { index.append($0) }
    }

    /// Ends the gzip stream and closes the files. When the end cannot be written it waits for ``retry()`` and
    /// ``finish()`` again.
    func finish() throws {
        if !finished {
            finished = true
            try compress(UnsafeRawBufferPointer(start: nil, count: 0), flush: .finish)
        } else {
            try retry()
        }
        abandon()
    }

    /// Closes the files as they are; a segment of which nothing reached the disk leaves no files behind.
    func abandon() {
        let empty = file.written == 0
        file.close()
        index.close()
        if empty {
            unlink(path)
            unlink(indexPath)
        }
    }
}

/// A file written with `write(2)` in append mode that keeps, in order, the bytes it could not write yet (up to
/// `maximumUnwritten`; past that it stops writing altogether rather than leave a hole in the middle).
struct AppendFile {
    private var fd: Int32
    let path: String
    let maximumUnwritten: Int
    private(set) var written = 0
    private var unwritten: [UInt8] = []
    private var error: String?

    init(fd: Int32, path: String, maximumUnwritten: Int = .max) {
        self.fd = fd
        self.path = path
        self.maximumUnwritten = maximumUnwritten
    }

    var hasUnwritten: Bool { !unwritten.isEmpty }

    /// Writes `bytes`, or keeps them (after any kept earlier) when the file does not take them.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard fd >= 0, bytes.count > 0 else { return }
        guard unwritten.isEmpty else {
            guard unwritten.count + bytes.count <= maximumUnwritten else {
                unwritten.removeAll()
                close()
                return
            }
            unwritten.append(contentsOf: bytes)
            return
        }
        let count = write(bytes)
        if count < bytes.count { unwritten.append(contentsOf: bytes[count...]) }
    }

    /// Throws the error of the last write that failed, once.
    mutating func check() throws {
        if let error {
            self.error = nil
            throw RecordingWriteError("cannot write \(path): \(error)")
        }
    }

    /// Writes the kept bytes.
    mutating func retry() throws {
        guard fd >= 0, !unwritten.isEmpty else { return }
        let count = unwritten.withUnsafeBytes { write($0) }
        unwritten.removeFirst(count)
        try check()
    }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// How many bytes reached the file; on a failure `error` says why.
    private mutating func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                error = String(cString: strerror(errno))
                break
            }
            offset += n
        }
        written += offset
        return offset
    }
}
