import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The write-ahead journal of one event loop: a memory-mapped ring file that the loop copies each tick's records
/// into, and that a compressor thread empties into the segments.
///
/// A copy into the mapping is a copy into the page cache: like a `write(2)`, it survives `kill -9` of the process,
/// without a system call. The file's space is reserved when it is created (`posix_fallocate`), so a full disk is
/// an error at start and never a `SIGBUS` later.
///
/// ```
/// header (4096 bytes, little-endian):
///   0  "OCPPWAL1"     8  capacity    16 committed   24 consumed   32 intent (end of the span being compressed)
///   40 sequence (segment being written)     48 loop     56 run id (u16 + ≤ 30 bytes)     88 segment file name
/// ring (capacity bytes): whole records (the segments' framing); a batch that does not fit before the ring's end
///   starts at the next lap, after a zero length where there is room for one.
/// ```
/// Offsets are absolute byte counts (the ring position is the offset modulo the capacity). The loop is the only
/// writer of `committed`, the compressor the only writer of `consumed`, `intent` and the segment fields.
///
/// Thread-safe as described: one appending thread and one consuming thread.
final class Journal: @unchecked Sendable {
    static let headerSize = 4096
    static let magic = Array("OCPPWAL1".utf8)
    static let suffix = ".wal"

    let path: String
    let capacity: Int
    private let fd: Int32
    private let base: UnsafeMutableRawPointer
    private let committedOffset = Atomic<Int>(0)
    private let consumedOffset = Atomic<Int>(0)
    /// The loop's own copy of `committed`.
    private var appended = 0

    /// A journal read back (by ``JournalLeftover``) or created by ``create(directory:runID:loop:capacity:)``.
    private init(path: String, fd: Int32, base: UnsafeMutableRawPointer, capacity: Int) {
        self.path = path
        self.fd = fd
        self.base = base
        self.capacity = capacity
        appended = header(16)
        committedOffset.store(appended, ordering: .sequentiallyConsistent)
        consumedOffset.store(header(24), ordering: .sequentiallyConsistent)
    }

    deinit {
        munmap(base, Self.headerSize + capacity)
        close(fd)
    }

    /// Creates and locks a new journal, its space reserved.
    static func create(directory: String, runID: String, loop: Int, capacity: Int) throws -> Journal {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RecordingWriteError("cannot create \(directory): \(error.localizedDescription)")
        }
        let path = (directory as NSString).appendingPathComponent("journal-\(runID)-l\(loop)\(suffix)")
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecordingWriteError("cannot create \(path): \(String(cString: strerror(errno)))") }
        let size = headerSize + capacity
        let reserved = posix_fallocate(fd, 0, off_t(size))
        guard reserved == 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let why = String(cString: strerror(reserved != 0 ? reserved : errno))
            close(fd)
            unlink(path)
            throw RecordingWriteError("cannot reserve \(size) bytes for \(path): \(why)")
        }
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            close(fd)
            unlink(path)
            throw RecordingWriteError("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        base.initializeMemory(as: UInt8.self, repeating: 0, count: headerSize)
        magic.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: 8) }
        let journal = Journal(path: path, fd: fd, base: base, capacity: capacity)
        journal.setHeader(8, capacity)
        journal.setHeader(48, loop)
        journal.setBytes(56, Array(runID.utf8), maximum: 30)
        return journal
    }

    /// Opens a journal left by another process, when no process holds it (`exclusive`: to recover it; otherwise
    /// shared, to read it). Nil when it is held or is not a journal.
    static func openLeftover(_ path: String, exclusive: Bool) -> Journal? {
        let fd = open(path, (exclusive ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var size = stat()
        guard flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0, fstat(fd, &size) == 0,
            Int(size.st_size) > headerSize
        else {
            close(fd)
            return nil
        }
        let protection = exclusive ? PROT_READ | PROT_WRITE : PROT_READ
        guard let base = mmap(nil, Int(size.st_size), protection, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            close(fd)
            return nil
        }
        let capacity = Int(size.st_size) - headerSize
        guard memcmp(base, magic, 8) == 0,
            base.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian == UInt64(capacity)
        else {
            munmap(base, Int(size.st_size))
            close(fd)
            return nil
        }
        return Journal(path: path, fd: fd, base: base, capacity: capacity)
    }

    // MARK: The loop's side

    /// Copies a batch of whole records into the ring and commits it; false when there is no room (nothing copied).
    /// A batch must not be larger than half the capacity.
    func append(_ batch: UnsafeRawBufferPointer) -> Bool {
        guard batch.count > 0 else { return true }
        let free = capacity - (appended - consumedOffset.load(ordering: .acquiring))
        var start = appended
        let position = appended % capacity
        if capacity - position < batch.count {
            guard capacity - position + batch.count <= free else { return false }
            if capacity - position >= 4 { (ring + position).storeBytes(of: UInt32(0), as: UInt32.self) }
            start += capacity - position
        } else if batch.count > free {
            return false
        }
        (ring + start % capacity).copyMemory(from: batch.baseAddress!, byteCount: batch.count)
        appended = start + batch.count
        setHeader(16, appended)
        committedOffset.store(appended, ordering: .sequentiallyConsistent)
        return true
    }

    /// Bytes waiting for the compressor.
    var backlog: Int { appended - consumedOffset.load(ordering: .acquiring) }

    // MARK: The compressor's side

    /// The next span of records to compress (within one lap), or nil when everything committed is consumed.
    /// `next` is the offset to consume up to once the span is written (past a lap's unused end).
    func nextSpan() -> (start: Int, bytes: UnsafeRawBufferPointer, next: Int)? {
        span(from: consumedOffset.load(ordering: .relaxed), verify: false)
    }

    /// The span of records after `consumed` (see ``nextSpan()``); `verify`: check each record's checksum (a
    /// journal a dead process left).
    func span(from consumed: Int, verify: Bool) -> (start: Int, bytes: UnsafeRawBufferPointer, next: Int)? {
        let committed = committedOffset.load(ordering: .sequentiallyConsistent)
        guard committed > consumed else { return nil }
        let position = consumed % capacity
        let lapEnd = consumed - position + capacity
        let end = min(committed, lapEnd)
        let bytes = UnsafeRawBufferPointer(start: ring + position, count: end - consumed)
        var scan = RecordScan(bytes, verify: verify)
        while scan.next() != nil {}
        let next: Int
        if scan.offset == bytes.count {
            next = end
        } else if committed > lapEnd {
            next = lapEnd  // the loop skipped the lap's end
        } else {
            next = committed  // damage: what follows the last whole record is lost
        }
        return (consumed, UnsafeRawBufferPointer(rebasing: bytes[0..<scan.offset]), next)
    }

    /// The records from `consumed` up to `end` are about to be compressed into the segment the header names.
    func willWrite(upTo end: Int) { setHeader(32, end) }

    /// The span is in the segment: its space is free again.
    func consumed(upTo next: Int) {
        setHeader(24, next)
        setHeader(32, next)
        consumedOffset.store(next, ordering: .releasing)
    }

    /// The compressor started a segment: recovery continues after it.
    func segmentStarted(path: String, sequence: Int) {
        setHeader(40, sequence)
        setBytes(88, Array((path as NSString).lastPathComponent.utf8), maximum: Self.headerSize - 90)
    }

    /// Removes the file (everything in it is in the segments), and its folder when that is left empty.
    func remove() {
        unlink(path)
        rmdir((path as NSString).deletingLastPathComponent)
    }

    // MARK: The header

    var header: (committed: Int, consumed: Int, intent: Int, sequence: Int, loop: Int, runID: String, segment: String) {
        (header(16), header(24), header(32), header(40), header(48), string(56, maximum: 30), string(88))
    }

    /// Bytes of the ring between two absolute offsets within one lap.
    func bytes(from start: Int, to end: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: ring + start % capacity, count: end - start)
    }

    private var ring: UnsafeMutableRawPointer { base + Self.headerSize }

    private func header(_ offset: Int) -> Int {
        Int(truncatingIfNeeded: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
    }

    private func setHeader(_ offset: Int, _ value: Int) {
        base.storeBytes(of: UInt64(value).littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    private func setBytes(_ offset: Int, _ bytes: [UInt8], maximum: Int) {
        let count = min(bytes.count, maximum)
        base.storeBytes(of: UInt16(count).littleEndian, toByteOffset: offset, as: UInt16.self)
        bytes.withUnsafeBytes { (base + offset + 2).copyMemory(from: $0.baseAddress!, byteCount: count) }
    }

    private func string(_ offset: Int, maximum: Int = headerSize) -> String {
        let count = min(Int(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))), maximum)
        return String(decoding: UnsafeRawBufferPointer(start: base + offset + 2, count: count), as: UTF8.self)
    }
}
