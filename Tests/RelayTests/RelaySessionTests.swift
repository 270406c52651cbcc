import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import OCPP
import RelayRecording
import Testing

@testable import Relay

/// The session's frame path on embedded channels: no sockets, every step observable.
@Suite("Relay session")
struct RelaySessionTests {
    final class Harness {
        /// The relay's clock in these tests: 2026-12-01T06:00:00.250Z on the wall, 42 s monotonic.
        static let clock = RelayClock(wall: { 1_764_568_800_250_000 }, monotonic: { 42_000_000_000 })
        let loop = EmbeddedEventLoop()
        let charger: EmbeddedChannel
        let upstream: EmbeddedChannel
        let chargerLeg = LegHandler(leg: .charger, maxFrameBytes: 1 << 20)
        let upstreamLeg = LegHandler(leg: .upstream(0), maxFrameBytes: 1 << 20)
        let recorder: LoopRecorder
        let registry = SessionRegistry()
        let session: RelaySession
        let directory = NSTemporaryDirectory() + "relay-session-" + UUID().uuidString

        init() throws {
            charger = EmbeddedChannel(handler: chargerLeg, loop: loop)
            upstream = EmbeddedChannel(handler: upstreamLeg, loop: loop)
            let writer = RecordingWriter(
                configuration: RecordingConfiguration(directory: directory, journalBytes: 0),
                loop: 0,
                runID: "test",
                relayVersion: "test",
                clock: Self.clock
            )
            recorder = LoopRecorder(eventLoop: loop, writer: writer, logger: Logger(label: "test"))
            session = RelaySession(
                connection: 1,
                identity: try ChargePointIdentity("CP-1"),
                charger: chargerLeg,
                upstream: upstreamLeg,
                recorder: recorder,
                registry: registry,
                logger: Logger(label: "test"),
                closeTimeout: .seconds(5)
            )
            _ = registry.register(session)
            session.start(
                ConnectionOpen(
                    connection: 1,
                    time: Timestamp.now(),
                    charger: "CP-1",
                    path: "/ocpp/CP-1",
                    offeredSubprotocols: ["ocpp1.6"],
                    subprotocol: "ocpp1.6",
                    remoteAddress: nil,
                    upstreamURL: nil
                )
            )
            loop.run()
        }

        deinit {
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// A frame's bytes as a peer sends them.
        func frame(
            _ opcode: WebSocketOpcode,
            _ data: ByteBuffer,
            maskKey: WebSocketMaskingKey?,
            fin: Bool = true
        ) -> ByteBuffer {
            WireFrame.encode(
                fin: fin,
                opcode: opcode,
                payload: data,
                maskKey: maskKey,
                allocator: ByteBufferAllocator()
            )
        }

        func text(_ string: String, masked: Bool) -> ByteBuffer {
            frame(.text, ByteBuffer(string: string), maskKey: masked ? [1, 2, 3, 4] : nil)
        }

        func close(_ code: UInt16, masked: Bool) -> ByteBuffer {
            var data = ByteBuffer()
            data.writeInteger(code)
            data.writeString("bye")
            return frame(.connectionClose, data, maskKey: masked ? [9, 9, 9, 9] : nil)
        }

        /// The next frame the relay wrote to a peer, decoded (its data unmasked), or nil.
        func sent(_ channel: EmbeddedChannel) throws -> Frame? {
            guard var bytes = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
            guard case .header(let header) = WireFrameHeader.parse(bytes, maxPayload: .max) else {
                Issue.record("not a whole frame header")
                return nil
            }
            #expect(bytes.readableBytes == header.frameLength, "one frame per write")
            let wire = bytes
            bytes.moveReaderIndex(forwardBy: header.headerLength)
            let data = WireFrame.unmasked(bytes, key: header.maskKey, allocator: ByteBufferAllocator())
            return Frame(
                opcode: WebSocketOpcode(encodedWebSocketOpcode: header.opcode)!,
                fin: header.fin,
                maskKey: header.maskKey,
                data: data,
                wire: wire
            )
        }

        /// The records written so far (the segment is read as it stands, like after a crash).
        func recordedFrames() throws -> [FrameRecord] {
            guard let path = recorder.writer.currentSegmentPath else { return [] }
            return try SegmentReader(path: path).readAll().records.compactMap {
                if case .frame(let f) = $0 { f } else { nil }
            }
        }
    }

    struct Frame {
        var opcode: WebSocketOpcode
        var fin: Bool
        var maskKey: WebSocketMaskingKey?
        var data: ByteBuffer
        var wire: ByteBuffer
    }

    /// The text of a frame the relay wrote.
    private func payload(_ frame: Frame?) -> String? {
        guard let frame else { return nil }
        var data = frame.data
        return data.readString(length: data.readableBytes)
    }

    @Test("a message is on disk before it is forwarded, and forwarded unchanged")
    func recordThenForward() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.text(#"[2,"1","Heartbeat",{}]"#, masked: true))
        // Not forwarded before the loop's flush ran…
        #expect(try h.sent(h.upstream) == nil)
        #expect(try h.recordedFrames().isEmpty)
        h.loop.run()
        // …and after it: recorded (at the relay clock's time), then sent upstream as the very bytes that came (the
        // charger's mask kept).
        #expect(try h.recordedFrames().map(\.text) == [#"[2,"1","Heartbeat",{}]"#])
        #expect(try h.recordedFrames().map(\.time) == [Harness.clock.wall()])
        let sent = try #require(try h.sent(h.upstream))
        #expect(sent.wire == h.text(#"[2,"1","Heartbeat",{}]"#, masked: true))
        #expect(payload(sent) == #"[2,"1","Heartbeat",{}]"#)

        try h.upstream.writeInbound(h.text(#"[3,"1",{"currentTime":"x"}]"#, masked: false))
        h.loop.run()
        let back = try #require(try h.sent(h.charger))
        #expect(back.maskKey == nil)
        #expect(payload(back) == #"[3,"1",{"currentTime":"x"}]"#)
    }

    @Test("a close from the charger is answered and mirrored upstream with the same code and reason")
    func closeMirrored() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.close(4001, masked: true))
        h.loop.run()
        let echo = try #require(try h.sent(h.charger))
        #expect(echo.opcode == .connectionClose)
        #expect(echo.maskKey == nil)
        var echoData = echo.data
        #expect(echoData.readInteger(as: UInt16.self) == 4001)
        let mirrored = try #require(try h.sent(h.upstream))
        #expect(mirrored.opcode == .connectionClose)
        #expect(mirrored.maskKey != nil)
        var data = mirrored.data
        #expect(data.readInteger(as: UInt16.self) == 4001)
        #expect(data.readString(length: data.readableBytes) == "bye")
        // Upstream answers; both legs end and the session leaves the registry.
        try h.upstream.writeInbound(h.close(4001, masked: false))
        h.loop.run()
        #expect(!h.upstream.isActive && !h.charger.isActive)
        #expect(h.registry.liveCount == 0)
    }

    @Test("a close from upstream is answered and mirrored to the charger with the same code and reason")
    func upstreamCloseMirrored() throws {
        let h = try Harness()
        try h.upstream.writeInbound(h.close(4002, masked: false))
        h.loop.run()
        let echo = try #require(try h.sent(h.upstream))
        #expect(echo.opcode == .connectionClose)
        #expect(echo.maskKey != nil)  // the relay is the client there
        var echoData = echo.data
        #expect(echoData.readInteger(as: UInt16.self) == 4002)
        let mirrored = try #require(try h.sent(h.charger))
        #expect(mirrored.opcode == .connectionClose)
        #expect(mirrored.maskKey == nil)
        var data = mirrored.data
        #expect(data.readInteger(as: UInt16.self) == 4002)
        #expect(data.readString(length: data.readableBytes) == "bye")
        // The charger answers; both legs end and the session leaves the registry.
        try h.charger.writeInbound(h.close(4002, masked: true))
        h.loop.run()
        #expect(!h.upstream.isActive && !h.charger.isActive)
        #expect(h.registry.liveCount == 0)
    }

    @Test(
        "shutdown waits for the last session to end, or until its deadline; a waiter is never left hanging",
        .timeLimit(.minutes(1))
    )
    func allEnded() async throws {
        let h = try Harness()
        // A live session that does not end: the wait gives up at its deadline (its waiter is cancelled).
        await h.registry.allEnded(within: .milliseconds(50))
        #expect(h.registry.liveCount == 1)
        let registry = h.registry
        let waiter = Task { await registry.allEnded() }
        h.session.closeAll(code: 1001, reason: "relay shutting down")
        h.loop.run()
        try h.charger.writeInbound(h.close(1001, masked: true))
        try h.upstream.writeInbound(h.close(1001, masked: false))
        h.loop.run()
        await waiter.value  // woken by the last session's end
        #expect(h.registry.liveCount == 0)
        await h.registry.allEnded()  // nothing live: at once
    }

    @Test("a message upstream sends while closing is recorded, not forwarded to a closed charger")
    func recordedWhileClosing() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.close(1000, masked: true))
        h.loop.run()
        _ = try h.sent(h.charger)  // the echo
        _ = try h.sent(h.upstream)  // the mirrored close
        try h.upstream.writeInbound(h.text(#"[2,"late","Reset",{"type":"Soft"}]"#, masked: false))
        h.loop.run()
        let late = try h.recordedFrames().filter { $0.leg == .upstream }
        #expect(late.map(\.text) == [#"[2,"late","Reset",{"type":"Soft"}]"#])
        #expect(late.first?.forwardedUnchanged == false)
    }

    @Test("a lost upstream is mirrored by dropping the charger without a close frame")
    func lostMirrored() throws {
        let h = try Harness()
        try h.upstream.writeInbound(h.text(#"[2,"b","Reset",{"type":"Soft"}]"#, masked: false))
        h.upstream.pipeline.fireChannelInactive()
        h.loop.run()
        // The message that arrived before the loss is still delivered, then the connection drops.
        let delivered = try #require(try h.sent(h.charger))
        #expect(payload(delivered) == #"[2,"b","Reset",{"type":"Soft"}]"#)
        #expect(try h.sent(h.charger) == nil)
        #expect(!h.charger.isActive)
    }

    @Test("pings are answered on the leg they came from and never forwarded")
    func pings() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.frame(.ping, ByteBuffer(string: "p"), maskKey: [1, 1, 1, 1]))
        h.loop.run()
        let pong = try #require(try h.sent(h.charger))
        #expect(pong.opcode == .pong)
        #expect(payload(pong) == "p")
        #expect(try h.sent(h.upstream) == nil)
    }

    @Test("frames split across reads, and several in one read, arrive whole and in order")
    func framesAcrossReads() throws {
        let h = try Harness()
        var bytes = h.text(#"[2,"a","Heartbeat",{}]"#, masked: true)
        var second = h.text(#"[2,"b","Heartbeat",{}]"#, masked: true)
        bytes.writeBuffer(&second)
        // Byte by byte through the first header, then the rest in two pieces.
        for _ in 0..<3 { try h.charger.writeInbound(bytes.readSlice(length: 1)!) }
        try h.charger.writeInbound(bytes.readSlice(length: 30)!)
        try h.charger.writeInbound(bytes)
        h.loop.run()
        #expect(try h.recordedFrames().map(\.text) == [#"[2,"a","Heartbeat",{}]"#, #"[2,"b","Heartbeat",{}]"#])
        #expect(payload(try h.sent(h.upstream)) == #"[2,"a","Heartbeat",{}]"#)
        #expect(payload(try h.sent(h.upstream)) == #"[2,"b","Heartbeat",{}]"#)
    }

    @Test("a fragmented message is recorded joined and forwarded as the fragments that came")
    func fragmented() throws {
        let h = try Harness()
        var wire = h.frame(.text, ByteBuffer(string: #"[2,"f1","#), maskKey: [5, 6, 7, 8], fin: false)
        var ping = h.frame(.ping, ByteBuffer(string: "between"), maskKey: [1, 1, 1, 1])
        var middle = h.frame(.continuation, ByteBuffer(string: #""Heartbeat""#), maskKey: [9, 8, 7, 6], fin: false)
        var last = h.frame(.continuation, ByteBuffer(string: ",{}]"), maskKey: [4, 3, 2, 1])
        let expected = [wire, middle, last].reduce(into: ByteBuffer()) { all, frame in all.writeImmutableBuffer(frame) }
        // A ping between the fragments is answered at once and is not part of the message.
        wire.writeBuffer(&ping)
        wire.writeBuffer(&middle)
        wire.writeBuffer(&last)
        try h.charger.writeInbound(wire)
        h.loop.run()
        #expect(payload(try h.sent(h.charger)) == "between")
        #expect(try h.recordedFrames().map(\.text) == [#"[2,"f1","Heartbeat",{}]"#])
        let forwarded = try #require(try h.upstream.readOutbound(as: ByteBuffer.self))
        #expect(forwarded == expected)
    }

    @Test("a charger frame without a mask is re-framed with one upstream; a masked upstream frame without")
    func maskingRepaired() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.text(#"[2,"u","Heartbeat",{}]"#, masked: false))
        try h.upstream.writeInbound(h.text(#"[2,"m","Reset",{"type":"Soft"}]"#, masked: true))
        h.loop.run()
        let up = try #require(try h.sent(h.upstream))
        #expect(up.maskKey != nil)
        #expect(payload(up) == #"[2,"u","Heartbeat",{}]"#)
        let down = try #require(try h.sent(h.charger))
        #expect(down.maskKey == nil)
        #expect(payload(down) == #"[2,"m","Reset",{"type":"Soft"}]"#)
    }

    @Test("a frame over the size limit closes that leg with 1009 before its payload arrives, the other with 1001")
    func oversized() throws {
        let h = try Harness()
        var header = ByteBuffer()
        header.writeInteger(UInt8(0x81))
        header.writeInteger(UInt8(0x80 | 127))
        header.writeInteger(UInt64(5 << 20))  // announced 5 MiB; the limit is 1 MiB
        header.writeBytes([1, 2, 3, 4])
        try h.charger.writeInbound(header)
        h.loop.run()
        let close = try #require(try h.sent(h.charger))
        #expect(close.opcode == .connectionClose)
        var code = close.data
        #expect(code.readInteger(as: UInt16.self) == 1009)
        let mirrored = try #require(try h.sent(h.upstream))
        var upstreamCode = mirrored.data
        #expect(upstreamCode.readInteger(as: UInt16.self) == 1001)
    }

    @Test("reserved bits, unknown opcodes and stray continuations close the leg with 1002")
    func protocolViolations() throws {
        for first: UInt8 in [0xC1, 0x83, 0x80] {
            let h = try Harness()
            var frame = ByteBuffer()
            frame.writeInteger(first)
            frame.writeInteger(UInt8(0x80))
            frame.writeBytes([1, 2, 3, 4])
            try h.charger.writeInbound(frame)
            h.loop.run()
            let close = try #require(try h.sent(h.charger))
            var code = close.data
            #expect(code.readInteger(as: UInt16.self) == 1002, "first byte \(first)")
            #expect(try h.recordedFrames().isEmpty)
        }
    }

    @Test("a held leg stops handing on frames mid-read, goes on where it stopped, and relays them if the peer goes")
    func heldMidRead() throws {
        for peerLeaves in [false, true] {
            let h = try Harness()
            h.chargerLeg.pauseReads(.rate)
            var bytes = h.text(#"[2,"a","Heartbeat",{}]"#, masked: true)
            var second = h.text(#"[2,"b","Heartbeat",{}]"#, masked: true)
            bytes.writeBuffer(&second)
            try h.charger.writeInbound(bytes)
            h.loop.run()
            #expect(try h.sent(h.upstream) == nil)
            if peerLeaves {
                h.charger.pipeline.fireChannelInactive()
            } else {
                h.chargerLeg.resumeReads(.rate)
            }
            h.loop.run()
            #expect(payload(try h.sent(h.upstream)) == #"[2,"a","Heartbeat",{}]"#)
            #expect(payload(try h.sent(h.upstream)) == #"[2,"b","Heartbeat",{}]"#)
        }
    }

    @Test("when upstream cannot take more, the charger is not read")
    func backpressure() throws {
        let h = try Harness()
        h.upstream.isWritable = false
        try h.charger.writeInbound(h.text("[2,\"1\",\"Heartbeat\",{}]", masked: true))
        h.loop.run()
        // A read request from the charger's channel is held…
        let reads = ReadCounter()
        try h.charger.pipeline.syncOperations.addHandler(reads, position: .first)
        h.charger.read()
        #expect(reads.count == 0)
        // …until upstream drains.
        h.upstream.isWritable = true
        h.upstream.pipeline.fireChannelWritabilityChanged()
        #expect(reads.count == 1)
    }

    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Never
        var count = 0

        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }
}
