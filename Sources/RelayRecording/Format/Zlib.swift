import CZlib

/// A gzip compression stream (zlib's deflate with a gzip wrapper), for one segment file.
///
/// Not thread-safe: one owner at a time (the relay keeps one per event loop).
public final class GzipDeflater {
    private var stream = z_stream()
    private var output = [UInt8](repeating: 0, count: 64 * 1024)
    private var finished = false

    /// - Parameters:
    ///   - level: zlib compression level, 1 (fast) … 9 (small).
    ///   - memoryLevel: zlib's memLevel, 1 … 9; with windowBits 15 the stream holds
    ///     `2^17 + 2^(memoryLevel+9)` bytes.
    public init(level: Int32 = 6, memoryLevel: Int32 = 8) throws {
        // windowBits 15 + 16: a gzip header and trailer, so `gzip -dc` reads the file.
        let status = czlib_deflateInit2(&stream, level, Z_DEFLATED, 15 + 16, memoryLevel, Z_DEFAULT_STRATEGY)
        guard status == Z_OK else { throw RecordingWriteError("deflateInit2 failed (\(status))") }
    }

    deinit {
        deflateEnd(&stream)
    }

    /// Compresses `input`; with `sync` true the output ends on a byte boundary with everything so far
    /// decodable (Z_SYNC_FLUSH); with `finish` the stream ends (Z_FINISH).
    public func compress(
        _ input: UnsafeRawBufferPointer,
        flush: Flush,
        into sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        precondition(!finished, "compress after finish")
        let mode: Int32 =
            switch flush {
            case .none: Z_NO_FLUSH
            case .sync: Z_SYNC_FLUSH
            case .finish: Z_FINISH
            }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = UInt32(input.count)
        let capacity = output.count
        while true {
            let (status, produced): (Int32, Int) = output.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress
                stream.avail_out = UInt32(capacity)
                let status = deflate(&stream, mode)
                return (status, capacity - Int(stream.avail_out))
            }
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw RecordingWriteError("deflate failed (\(status))")
            }
            if produced > 0 {
                try output.withUnsafeBytes { buffer throws in
                    try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<produced]))
                }
            }
            if status == Z_STREAM_END {
                finished = true
                break
            }
            // Done when zlib had room to spare and consumed all input.
            if stream.avail_out != 0 && stream.avail_in == 0 { break }
            if status == Z_BUF_ERROR && produced == 0 { break }
        }
        stream.next_in = nil
    }

    /// How much to flush after compressing.
    public enum Flush: Sendable {
        case none, sync, finish
    }
}

/// A gzip decompression stream that reads concatenated members and stops quietly at a torn end.
public final class GzipInflater {
    private var stream = z_stream()
    private var output = [UInt8](repeating: 0, count: 64 * 1024)
    private var needsReset = false

    public init() throws {
        // 15 + 32: accept gzip or zlib headers.
        let status = czlib_inflateInit2(&stream, 15 + 32)
        guard status == Z_OK else { throw RecordingReadError(.compression, "inflateInit2 failed (\(status))") }
    }

    deinit {
        inflateEnd(&stream)
    }

    /// Decompresses `input`, handing each chunk of output to `sink`.
    /// - Throws: when the compressed data is invalid (not merely cut short).
    public func decompress(
        _ input: UnsafeRawBufferPointer,
        into sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = UInt32(input.count)
        let capacity = output.count
        while stream.avail_in > 0 || needsOutputDrain {
            if needsReset {
                inflateReset(&stream)
                needsReset = false
            }
            let (status, produced): (Int32, Int) = output.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress
                stream.avail_out = UInt32(capacity)
                let status = inflate(&stream, Z_NO_FLUSH)
                return (status, capacity - Int(stream.avail_out))
            }
            needsOutputDrain = stream.avail_out == 0
            if produced > 0 {
                try output.withUnsafeBytes { buffer throws in
                    try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<produced]))
                }
            }
            switch status {
            case Z_OK:
                streamEnded = false
                continue
            case Z_STREAM_END:
                // Another gzip member may follow.
                needsReset = true
                streamEnded = stream.avail_in == 0
            case Z_BUF_ERROR:
                return  // needs more input: a torn end, or just the end of this chunk
            default:
                throw RecordingReadError(.compression, "the compressed data is damaged (zlib status \(status))")
            }
        }
    }

    private var needsOutputDrain = false

    /// Whether the last byte fed ended a gzip member: the file was finished, not cut off.
    public private(set) var streamEnded = false
}

/// A recording could not be written.
public struct RecordingWriteError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
