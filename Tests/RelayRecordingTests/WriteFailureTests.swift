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

@Suite("Write outage")
struct WriteOutageTests {
    @Test("retries back off from 0.1 s, doubling to 5 s; finishing retries at once")
    func backoff() {
        var outage = WriteOutage(error: "No space left on device", now: 1_000_000)
        #expect(!outage.retryIsDue(now: 1_099_999) && outage.retryIsDue(now: 1_100_000))
        var now: UInt64 = 1_100_000
        var waits: [UInt64] = []
        for _ in 0..<8 {
            outage.failedAgain(error: "No space left on device", now: now)
            var wait: UInt64 = 0
            while !outage.retryIsDue(now: now + wait) { wait += 100_000 }
            waits.append(wait)
            now += wait
        }
        #expect(waits == [200_000, 400_000, 800_000, 1_600_000, 3_200_000, 5_000_000, 5_000_000, 5_000_000])
        outage.retryNow()
        #expect(outage.retryIsDue(now: 0))
    }

    @Test("the gap says what was dropped, from the oldest record to the last drop, with the last error")
    func gap() {
        var outage = WriteOutage(error: "File too large", now: 10)
        #expect(outage.gap(now: 11) == nil)  // nothing lost: nothing to say
        outage.dropped(frames: 3, records: 4, oldest: 8, now: 12)
        outage.dropped(frames: 0, records: 0, oldest: 13, now: 13)  // an empty tick changes nothing
        outage.failedAgain(error: "No space left on device", now: 14)
        outage.dropped(frames: 2, records: 2, oldest: 15, now: 16)
        #expect(
            outage.gap(now: 20)
                == RecordingGap(time: 20, from: 8, to: 16, frames: 5, records: 6, error: "No space left on device")
        )
        #expect(outage.since == 10)
    }
}
