import CZlib
import NIOCore

/// Compresses one leg's messages for permessage-deflate (RFC 7692 §7.2.1): raw deflate, each message ended by a
/// sync flush whose trailing `00 00 ff ff` is removed. With `noContextTakeover` each message starts from an empty
/// window; otherwise the previous messages are its context (where the ratio of small, similar OCPP messages comes
/// from).
///
/// Not thread-safe: one owner (a leg's event loop). zlib keeps `2^(windowBits+2) + 2^(memoryLevel+9)` bytes.
public final class MessageDeflater {
    private var stream = z_stream()
    private let noContextTakeover: Bool

    /// - Parameters:
    ///   - windowBits: the agreed window, 9 … 15.
    ///   - level: zlib's level, 1 (fast) … 9 (small).
    ///   - memoryLevel: zlib's memLevel, 1 … 9.
    public init(
        windowBits: Int,
        noContextTakeover: Bool,
        level: Int32 = 1,
        memoryLevel: Int32 = 8
    ) throws(DeflateError) {
        self.noContextTakeover = noContextTakeover
        // Negative window bits: raw deflate, without zlib's header and trailer.
        let bits = -Int32(min(15, max(9, windowBits)))
        let status = czlib_deflateInit2(&stream, level, Z_DEFLATED, bits, memoryLevel, Z_DEFAULT_STRATEGY)
        guard status == Z_OK else { throw .zlib("deflateInit2 failed (\(status))") }
    }

    deinit {
        deflateEnd(&stream)
    }

    /// Appends the compressed form of `message` to `output`.
    public func compress(_ message: UnsafeRawBufferPointer, into output: inout ByteBuffer) throws(DeflateError) {
        if noContextTakeover { deflateReset(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: message.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = UInt32(message.count)
        defer { stream.next_in = nil }
        var status = Z_OK
        repeat {
            // A sync flush adds a few bytes to what deflateBound says of the input.
            let room = Int(deflateBound(&stream, UInt(stream.avail_in))) + 16
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { buffer in
                stream.next_out = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = UInt32(buffer.count)
                status = deflate(&stream, Z_SYNC_FLUSH)
                return buffer.count - Int(stream.avail_out)
            }
            guard status == Z_OK || status == Z_BUF_ERROR else { throw .zlib("deflate failed (\(status))") }
        } while stream.avail_out == 0
        // The sync flush ends with an empty stored block: its last four bytes are not sent.
        let tail = output.writerIndex - 4
        if tail >= output.readerIndex, output.getBytes(at: tail, length: 4) == MessageInflater.flushTail {
            output.moveWriterIndex(to: tail)
        }
    }
}

/// Inflates one leg's permessage-deflate messages (RFC 7692 §7.2.2), never past a bound: a small frame that would
/// inflate past it stops at the bound and fails (no decompression bomb reaches memory). zlib keeps `2^windowBits`
/// bytes of window (allocated on the first message) and about 7 KiB of state.
///
/// Not thread-safe: one owner (a leg's event loop).
public final class MessageInflater {
    private var stream = z_stream()
    private let noContextTakeover: Bool
    static let flushTail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]
    /// ``flushTail`` where zlib can read it, for the life of the process.
    nonisolated(unsafe) private static let tail: UnsafeRawBufferPointer = {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: flushTail.count, alignment: 1)
        bytes.copyBytes(from: flushTail)
        return UnsafeRawBufferPointer(bytes)
    }()

    /// - Parameters:
    ///   - windowBits: the agreed window of the peer's compression, 9 … 15 (8 is inflated with 9, which reads it).
    public init(windowBits: Int, noContextTakeover: Bool) throws(DeflateError) {
        self.noContextTakeover = noContextTakeover
        let status = czlib_inflateInit2(&stream, -Int32(min(15, max(9, windowBits))))
        guard status == Z_OK else { throw .zlib("inflateInit2 failed (\(status))") }
    }

    deinit {
        inflateEnd(&stream)
    }

    /// Appends the message a compressed message's payload (its frames' payloads joined) inflates to. Throws
    /// ``DeflateError/tooLarge`` when it would exceed `limit` bytes, ``DeflateError/corrupt(_:)`` when it is not
    /// valid deflate data; after either the inflater is not to be used again (the connection fails).
    public func decompress(
        _ payload: UnsafeRawBufferPointer,
        limit: Int,
        into output: inout ByteBuffer
    ) throws(DeflateError) {
        let start = output.writerIndex
        var ended = false
        // The sync flush's tail the sender removed goes back in after the payload.
        for input in [payload, Self.tail] where !ended {
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = UInt32(input.count)
            defer { stream.next_in = nil }
            ended = try inflateAll(limit: limit - (output.writerIndex - start), into: &output)
        }
        if ended || noContextTakeover { inflateReset(&stream) }
    }

    /// Inflates what is in `stream.next_in`; whether the deflate stream ended (a final block).
    private func inflateAll(limit: Int, into output: inout ByteBuffer) throws(DeflateError) -> Bool {
        var produced = 0
        while true {
            var status = Z_OK
            // One byte of room past the limit tells a message that reaches it from one that exceeds it.
            let room = max(1, min(16 * 1024, limit - produced + 1))
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { buffer in
                let usable = min(buffer.count, room)
                stream.next_out = buffer.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = UInt32(usable)
                status = inflate(&stream, Z_SYNC_FLUSH)
                let wrote = usable - Int(stream.avail_out)
                produced += wrote
                return wrote
            }
            if produced > limit { throw .tooLarge }
            switch status {
            case Z_STREAM_END:
                return true
            case Z_OK:
                if stream.avail_in == 0 && stream.avail_out != 0 { return false }
            case Z_BUF_ERROR:
                // No progress possible: all input is read (and there was room).
                return false
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                throw .corrupt(message)
            }
        }
    }
}

/// What compressing or inflating a message can fail with.
public enum DeflateError: Error, Equatable, CustomStringConvertible {
    /// zlib could not start or run (memory).
    case zlib(String)
    /// The message inflates past the limit.
    case tooLarge
    /// Not valid deflate data.
    case corrupt(String)

    public var description: String {
        switch self {
        case .zlib(let why): why
        case .tooLarge: "the message inflates past the size limit"
        case .corrupt(let why): "invalid compressed data: \(why)"
        }
    }
}
