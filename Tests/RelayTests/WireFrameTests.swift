import NIOCore
import NIOWebSocket
import Testing

@testable import Relay

@Suite("WebSocket frames on the wire")
struct WireFrameTests {
    @Test("headers of every length form parse back to what was encoded", arguments: [0, 1, 125, 126, 65535, 65536])
    func roundTrip(length: Int) throws {
        let payload = ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) })
        for key in [nil, WebSocketMaskingKey([0xA1, 0x02, 0xF3, 0x44])] {
            let frame = WireFrame.encode(opcode: .binary, payload: payload, maskKey: key, allocator: .init())
            guard case .header(let header) = WireFrameHeader.parse(frame, maxPayload: 1 << 20) else {
                Issue.record("no header")
                return
            }
            #expect(header.fin && header.opcode == 2 && header.reserved == 0)
            #expect(header.maskKey == key)
            #expect(header.payloadLength == length)
            #expect(header.frameLength == frame.readableBytes)
            let body = frame.getSlice(at: header.headerLength, length: length)!
            #expect(WireFrame.unmasked(body, key: key, allocator: .init()) == payload)
        }
    }

    @Test("a header cut short asks for more; an announced giant is refused from its header alone")
    func partialAndLarge() {
        let frame = WireFrame.encode(
            opcode: .text,
            payload: ByteBuffer(repeating: 0x41, count: 300),
            maskKey: [1, 2, 3, 4],
            allocator: .init()
        )
        for cut in 0..<8 {
            #expect(WireFrameHeader.parse(frame.getSlice(at: 0, length: cut)!, maxPayload: 1000) == .needMore)
        }
        #expect(WireFrameHeader.parse(frame, maxPayload: 299) == .tooLarge(300))
    }

    @Test("masking eight bytes at a time gives what RFC 6455 says, at every length and offset")
    func maskMatchesReference() {
        let key: WebSocketMaskingKey = [0x12, 0x34, 0x56, 0x78]
        for length in 0..<40 {
            var reference = ByteBuffer(bytes: (0..<length).map { UInt8($0) })
            var fast = reference
            reference.webSocketMask(key)
            fast.withUnsafeMutableReadableBytes { WireFrame.applyMask(key, to: $0) }
            #expect(fast == reference, "length \(length)")
        }
    }
}

@Suite("Random ids")
struct UUIDSourceTests {
    @Test("version-4 UUIDs in lowercase text, all different")
    func uuids() throws {
        let source = UUIDSource()
        let ids = (0..<2000).map { _ in source.next() }
        #expect(Set(ids).count == ids.count)
        let pattern = try Regex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        for id in ids { #expect(id.wholeMatch(of: pattern) != nil, "\(id)") }
    }
}
