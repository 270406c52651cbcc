import NIOCore
import OCPPTransport

/// A leg's permessage-deflate (RFC 7692), as its handshake agreed it: the inflater for the peer's messages and the
/// deflater for the relay's, each with the window and context rule of its direction.
final class LegCompression {
    let agreement: DeflateAgreement
    private let inflater: MessageInflater
    private let deflater: MessageDeflater

    /// The relay compresses with at most this window (a smaller one than agreed is always readable) and this
    /// memory level: zlib's deflate state is about `2^(bits+2) + 2^(memoryLevel+9)` bytes plus 6 KiB per leg. 11
    /// bits and level 2 keep 13× on OCPP meter values where 12 and 8 keep 14× (`PerMessageDeflateTests`), for
    /// about half the memory; 10 bits fall to 5×.
    static let deflateWindowBits = 11
    static let deflateMemoryLevel: Int32 = 2

    /// - Parameter relayIsServer: the charger's leg (the relay accepted); an upstream leg is the relay's dial.
    init(_ agreement: DeflateAgreement, relayIsServer: Bool) throws(DeflateError) {
        self.agreement = agreement
        let (sending, sendingFresh, receiving, receivingFresh) =
            relayIsServer
            ? (
                agreement.serverMaxWindowBits, agreement.serverNoContextTakeover, agreement.clientMaxWindowBits,
                agreement.clientNoContextTakeover
            )
            : (
                agreement.clientMaxWindowBits, agreement.clientNoContextTakeover, agreement.serverMaxWindowBits,
                agreement.serverNoContextTakeover
            )
        inflater = try MessageInflater(windowBits: receiving, noContextTakeover: receivingFresh)
        deflater = try MessageDeflater(
            windowBits: min(sending, Self.deflateWindowBits),
            noContextTakeover: sendingFresh,
            memoryLevel: Self.deflateMemoryLevel
        )
    }

    /// The text of a compressed message's (unmasked) payload, at most `limit` bytes.
    func inflate(_ payload: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) throws(DeflateError) -> ByteBuffer {
        var output = allocator.buffer(capacity: min(limit, max(256, payload.readableBytes * 4)))
        let result: Result<Void, DeflateError> = payload.withUnsafeReadableBytes { bytes in
            Result { () throws(DeflateError) in try inflater.decompress(bytes, limit: limit, into: &output) }
        }
        try result.get()
        return output
    }

    /// The compressed form of a message the relay sends; `nil` if zlib failed (it then goes uncompressed).
    func deflate(_ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var output = allocator.buffer(capacity: payload.readableBytes / 2 + 64)
        let result: Result<Void, DeflateError> = payload.withUnsafeReadableBytes { bytes in
            Result { () throws(DeflateError) in try deflater.compress(bytes, into: &output) }
        }
        return (try? result.get()).map { output }
    }
}
