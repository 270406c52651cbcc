import Testing

@testable import RelayRecording

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Append file")
struct AppendFileTests {
    /// /dev/full refuses every write with ENOSPC, as a full file system does.
    @Test("bytes a full disk refuses are kept, in order, up to the limit; past it the file is given up")
    func fullDisk() throws {
        var file = AppendFile(fd: open("/dev/full", O_WRONLY), path: "/dev/full", maximumUnwritten: 10)
        [UInt8](repeating: 1, count: 4).withUnsafeBytes { file.append($0) }
        #expect(file.hasUnwritten && file.written == 0)
        #expect(throws: RecordingWriteError.self) { try file.check() }
        try file.check()  // the error is said once
        [UInt8](repeating: 2, count: 4).withUnsafeBytes { file.append($0) }
        #expect(throws: RecordingWriteError.self) { try file.retry() }  // still full: kept
        #expect(file.hasUnwritten)
        [UInt8](repeating: 3, count: 4).withUnsafeBytes { file.append($0) }  // 12 > 10
        #expect(!file.hasUnwritten)
        try file.retry()  // given up: nothing more is tried
    }

    @Test("a file that takes the bytes writes them at once")
    func normal() throws {
        var file = AppendFile(fd: open("/dev/null", O_WRONLY), path: "/dev/null")
        [UInt8](repeating: 1, count: 100).withUnsafeBytes { file.append($0) }
        #expect(!file.hasUnwritten && file.written == 100)
        try file.check()
        file.close()
    }
}
