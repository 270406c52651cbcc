import NIOCore
import NIOWebSocket

/// A WebSocket frame header read in place from received bytes (RFC 6455 §5.2).
///
/// The relay forwards pass-through frames as the bytes that came, so it reads only the header: where the
/// payload starts, how long it is, and its mask. Nothing is copied or re-encoded.
struct WireFrameHeader: Equatable {
    var fin: Bool
    /// The three reserved bits (RSV1 marks a permessage-deflate message where it was agreed; the others are zero).
    var reserved: UInt8
    var opcode: UInt8
    var maskKey: WebSocketMaskingKey?
    var headerLength: Int
    var payloadLength: Int

    var frameLength: Int { headerLength + payloadLength }
    var isControl: Bool { opcode & 0x8 != 0 }

    enum Parse: Equatable {
        /// Fewer bytes than the header needs.
        case needMore
        case header(WireFrameHeader)
        /// The payload is longer than the limit (its announced length).
        case tooLarge(UInt64)
    }

    /// Reads the header at the start of `buffer`'s readable bytes, without consuming them.
    static func parse(_ buffer: ByteBuffer, maxPayload: Int) -> Parse {
        let available = buffer.readableBytes
        guard available >= 2 else { return .needMore }
        let start = buffer.readerIndex
        let first = buffer.getInteger(at: start, as: UInt8.self)!
        let second = buffer.getInteger(at: start + 1, as: UInt8.self)!
        let masked = second & 0x80 != 0
        var length = UInt64(second & 0x7F)
        var headerLength = 2
        if length == 126 {
            guard available >= 4 else { return .needMore }
            length = UInt64(buffer.getInteger(at: start + 2, as: UInt16.self)!)
            headerLength = 4
        } else if length == 127 {
            guard available >= 10 else { return .needMore }
            length = buffer.getInteger(at: start + 2, as: UInt64.self)!
            headerLength = 10
        }
        // Checked before the mask arrives: an announced giant is refused without waiting for it.
        guard length <= UInt64(maxPayload) else { return .tooLarge(length) }
        var maskKey: WebSocketMaskingKey?
        if masked {
            guard available >= headerLength + 4 else { return .needMore }
            let bytes = buffer.getBytes(at: start + headerLength, length: 4)!
            maskKey = WebSocketMaskingKey(bytes)
            headerLength += 4
        }
        return .header(
            WireFrameHeader(
                fin: first & 0x80 != 0,
                reserved: (first >> 4) & 0x7,
                opcode: first & 0x0F,
                maskKey: maskKey,
                headerLength: headerLength,
                payloadLength: Int(length)
            )
        )
    }
}

enum WireFrame {
    /// One frame in one buffer: header, then the payload, masked when `maskKey` is given (frames a client
    /// sends). One buffer means one write, not a header buffer and a payload buffer.
    static func encode(
        fin: Bool = true,
        compressed: Bool = false,
        opcode: WebSocketOpcode,
        payload: ByteBuffer,
        maskKey: WebSocketMaskingKey?,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let length = payload.readableBytes
        var out = allocator.buffer(capacity: length + 14)
        // RSV1 marks a permessage-deflate message.
        out.writeInteger(UInt8(fin ? 0x80 : 0) | (compressed ? 0x40 : 0) | UInt8(webSocketOpcode: opcode))
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        if length < 126 {
            out.writeInteger(maskBit | UInt8(length))
        } else if length <= Int(UInt16.max) {
            out.writeInteger(maskBit | 126)
            out.writeInteger(UInt16(length))
        } else {
            out.writeInteger(maskBit | 127)
            out.writeInteger(UInt64(length))
        }
        guard let maskKey else {
            out.writeImmutableBuffer(payload)
            return out
        }
        out.writeBytes(maskKey)
        let headerLength = out.readableBytes
        out.writeImmutableBuffer(payload)
        out.withUnsafeMutableReadableBytes { bytes in
            applyMask(maskKey, to: UnsafeMutableRawBufferPointer(rebasing: bytes[headerLength...]))
        }
        return out
    }

    /// XORs `bytes` with the mask (masking and unmasking are the same), eight bytes at a time.
    static func applyMask(_ key: WebSocketMaskingKey, to bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let k = (UInt32(key[0]), UInt32(key[1]), UInt32(key[2]), UInt32(key[3]))
        // The key as it lies in memory, twice in a word, whatever the byte order.
        let key32 = k.0 | k.1 << 8 | k.2 << 16 | k.3 << 24
        let key64 = UInt64(littleEndian: UInt64(key32) | UInt64(key32) << 32)
        var i = 0
        while i + 8 <= bytes.count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            base.storeBytes(of: word ^ key64, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            bytes[i] ^= key[i % 4]
            i += 1
        }
    }

    /// A copy of `payload` with the mask removed.
    static func unmasked(_ payload: ByteBuffer, key: WebSocketMaskingKey?, allocator: ByteBufferAllocator) -> ByteBuffer
    {
        guard let key else { return payload }
        var copy = allocator.buffer(capacity: payload.readableBytes)
        copy.writeImmutableBuffer(payload)
        copy.withUnsafeMutableReadableBytes { applyMask(key, to: $0) }
        return copy
    }
}
