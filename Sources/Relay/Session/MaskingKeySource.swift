import NIOWebSocket

#if canImport(Glibc)
    import Glibc
#endif

/// Masking keys for frames the relay sends upstream (RFC 6455 requires clients to mask).
///
/// `WebSocketMaskingKey.random()` asks the kernel for 4 bytes per frame: a system call per message.
/// This source reads 4 KiB at a time from the kernel's CSPRNG and hands them out 4 bytes per key.
/// Confined to one event loop.
final class MaskingKeySource {
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var position = 4096

    func next() -> WebSocketMaskingKey {
        if position + 4 > buffer.count { refill() }
        defer { position += 4 }
        return WebSocketMaskingKey(buffer[position..<position + 4])!
    }

    private func refill() {
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
