import NIOConcurrencyHelpers
import NIOWebSocket

#if canImport(Glibc)
    import Glibc
#endif

/// Random bytes from the kernel's CSPRNG, read 4 KiB at a time: `WebSocketMaskingKey.random()` and Foundation's
/// `UUID()` ask the kernel once per key or id, a system call per message on the frame path.
struct RandomBytes {
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var position = 4096

    /// The next `count` (at most 4096) random bytes, handed to `body`.
    mutating func next<Result>(_ count: Int, _ body: (ArraySlice<UInt8>) -> Result) -> Result {
        if position + count > buffer.count { refill() }
        defer { position += count }
        return body(buffer[position..<position + count])
    }

    private mutating func refill() {
        // /dev/urandom is the kernel's CSPRNG, as getrandom(2) is (which Swift's Glibc module does not expose).
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        let filled = fd < 0 ? -1 : buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if fd >= 0 { close(fd) }
        if filled != buffer.count {
            var generator = SystemRandomNumberGenerator()
            for i in buffer.indices { buffer[i] = generator.next() }
        }
        position = 0
    }
}

/// Masking keys for frames the relay sends upstream (RFC 6455 requires clients to mask). Confined to one event loop.
final class MaskingKeySource {
    private var random = RandomBytes()

    func next() -> WebSocketMaskingKey {
        random.next(4) { WebSocketMaskingKey($0)! }
    }
}

/// Version-4 UUIDs (RFC 9562) as lowercase text, for the message and transaction ids translation makes.
final class UUIDSource: Sendable {
    private let random = NIOLockedValueBox(RandomBytes())
    private static let hex = Array("0123456789abcdef".utf8)

    func next() -> String {
        var bytes = random.withLockedValue { random in random.next(16) { Array($0) } }
        bytes[6] = bytes[6] & 0x0F | 0x40  // version 4
        bytes[8] = bytes[8] & 0x3F | 0x80  // variant 10
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (i, byte) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { text.append(UInt8(ascii: "-")) }
            text.append(Self.hex[Int(byte >> 4)])
            text.append(Self.hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
