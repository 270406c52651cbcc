import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One segment file being written: its gzip stream, its file descriptor and its index file.
final class Segment {
    let path: String
    let indexPath: String
    let startTime: UInt64
    private let deflater: GzipDeflater
    private var fd: Int32
    private var indexFD: Int32
    private(set) var compressedBytes = 0
    private(set) var rawBytes = 0
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
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecordingWriteError("cannot create \(path): \(String(cString: strerror(errno)))") }
        indexFD = Glibc.open(indexPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
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
        let fd = self.fd
        var written = 0
        try deflater.compress(bytes, flush: flush) { chunk throws in
            try Self.writeAll(fd: fd, chunk, path: path)
            written += chunk.count
        }
        compressedBytes += written
    }

    func writeIndex(_ entry: IndexEntry) {
        guard indexFD >= 0, var line = try? Self.encoder.encode(entry) else { return }
        line.append(0x0A)
        _ = line.withUnsafeBytes { try? Self.writeAll(fd: indexFD, $0, path: indexPath) }
    }

    /// Ends the gzip stream and closes the files.
    func finish() throws {
        defer { abandon() }
        try compress(UnsafeRawBufferPointer(start: nil, count: 0), flush: .finish)
    }

    /// Closes the files as they are.
    func abandon() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
        if indexFD >= 0 {
            Glibc.close(indexFD)
            indexFD = -1
        }
    }

    private static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard fd >= 0 else { throw RecordingWriteError("\(path) is closed") }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw RecordingWriteError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
}
