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
        let loop = EmbeddedEventLoop()
        let charger: EmbeddedChannel
        let upstream: EmbeddedChannel
        let chargerLeg = LegHandler(leg: .charger, maxFrameBytes: 1 << 20)
        let upstreamLeg = LegHandler(leg: .upstream, maxFrameBytes: 1 << 20)
        let recorder: LoopRecorder
        let registry = SessionRegistry()
        let session: RelaySession
        let directory = NSTemporaryDirectory() + "relay-session-" + UUID().uuidString

        init() throws {
            charger = EmbeddedChannel(handler: chargerLeg, loop: loop)
            upstream = EmbeddedChannel(handler: upstreamLeg, loop: loop)
            let writer = RecordingWriter(
                configuration: RecordingConfiguration(directory: directory),
                loop: 0,
                runID: "test",
                relayVersion: "test"
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

        func text(_ string: String, masked: Bool) -> WebSocketFrame {
            var data = ByteBuffer(string: string)
            let key: WebSocketMaskingKey? = masked ? [1, 2, 3, 4] : nil
            if let key { data.webSocketMask(key) }
            return WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: data)
        }

        func close(_ code: UInt16, masked: Bool) -> WebSocketFrame {
            var data = ByteBuffer()
            data.writeInteger(code)
            data.writeString("bye")
            let key: WebSocketMaskingKey? = masked ? [9, 9, 9, 9] : nil
            if let key { data.webSocketMask(key) }
            return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: key, data: data)
        }

        /// The records written so far (the segment is read as it stands, like after a crash).
        func recordedFrames() throws -> [FrameRecord] {
            guard let path = recorder.writer.currentSegmentPath else { return [] }
            return try SegmentReader(path: path).readAll().records.compactMap {
                if case .frame(let f) = $0 { f } else { nil }
            }
        }
    }

    /// The text of a frame the relay wrote: outbound frames carry plain data (the encoder masks on the wire).
    private func payload(_ frame: WebSocketFrame?) -> String? {
        guard let frame else { return nil }
        var data = frame.data
        return data.readString(length: data.readableBytes)
    }

    @Test("a message is on disk before it is forwarded, and forwarded unchanged")
    func recordThenForward() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.text(#"[2,"1","Heartbeat",{}]"#, masked: true))
        // Not forwarded before the loop's flush ran…
        #expect(try h.upstream.readOutbound(as: WebSocketFrame.self) == nil)
        #expect(try h.recordedFrames().isEmpty)
        h.loop.run()
        // …and after it: recorded, then sent upstream with a fresh mask and the same text.
        #expect(try h.recordedFrames().map(\.text) == [#"[2,"1","Heartbeat",{}]"#])
        let sent = try #require(try h.upstream.readOutbound(as: WebSocketFrame.self))
        #expect(sent.maskKey != nil)
        #expect(payload(sent) == #"[2,"1","Heartbeat",{}]"#)

        try h.upstream.writeInbound(h.text(#"[3,"1",{"currentTime":"x"}]"#, masked: false))
        h.loop.run()
        let back = try #require(try h.charger.readOutbound(as: WebSocketFrame.self))
        #expect(back.maskKey == nil)
        #expect(payload(back) == #"[3,"1",{"currentTime":"x"}]"#)
    }

    @Test("a close from the charger is answered and mirrored upstream with the same code and reason")
    func closeMirrored() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.close(4001, masked: true))
        h.loop.run()
        let echo = try #require(try h.charger.readOutbound(as: WebSocketFrame.self))
        #expect(echo.opcode == .connectionClose)
        var echoData = echo.data
        #expect(echoData.readInteger(as: UInt16.self) == 4001)
        let mirrored = try #require(try h.upstream.readOutbound(as: WebSocketFrame.self))
        #expect(mirrored.opcode == .connectionClose)
        var data = mirrored.data
        #expect(data.readInteger(as: UInt16.self) == 4001)
        #expect(data.readString(length: data.readableBytes) == "bye")
        // Upstream answers; both legs end and the session leaves the registry.
        try h.upstream.writeInbound(h.close(4001, masked: false))
        h.loop.run()
        #expect(!h.upstream.isActive && !h.charger.isActive)
        #expect(h.registry.liveCount == 0)
    }

    @Test("a message upstream sends while closing is recorded, not forwarded to a closed charger")
    func recordedWhileClosing() throws {
        let h = try Harness()
        try h.charger.writeInbound(h.close(1000, masked: true))
        h.loop.run()
        _ = try h.charger.readOutbound(as: WebSocketFrame.self)  // the echo
        _ = try h.upstream.readOutbound(as: WebSocketFrame.self)  // the mirrored close
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
        let delivered = try #require(try h.charger.readOutbound(as: WebSocketFrame.self))
        #expect(payload(delivered) == #"[2,"b","Reset",{"type":"Soft"}]"#)
        #expect(try h.charger.readOutbound(as: WebSocketFrame.self) == nil)
        #expect(!h.charger.isActive)
    }

    @Test("pings are answered on the leg they came from and never forwarded")
    func pings() throws {
        let h = try Harness()
        var ping = ByteBuffer(string: "p")
        ping.webSocketMask([1, 1, 1, 1])
        try h.charger.writeInbound(WebSocketFrame(fin: true, opcode: .ping, maskKey: [1, 1, 1, 1], data: ping))
        h.loop.run()
        let pong = try #require(try h.charger.readOutbound(as: WebSocketFrame.self))
        #expect(pong.opcode == .pong)
        #expect(payload(pong) == "p")
        #expect(try h.upstream.readOutbound(as: WebSocketFrame.self) == nil)
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
