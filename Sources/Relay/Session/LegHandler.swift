import NIOCore
import NIOWebSocket
import OCPPTransport
import RelayRecording

#if canImport(Glibc)
    import Glibc
#endif

/// A WebSocket message as it arrived on a leg: the frames' bytes as they came, and where the payload is.
///
/// A message of one frame (nearly every OCPP message) is a view into the received bytes: its payload is
/// still masked when the peer masked it. The frames of a fragmented message are kept as they came too, and
/// their payload is joined (unmasked) for recording and translation.
struct LegMessage: Equatable, Sendable {
    let opcode: WebSocketOpcode
    /// Every frame of the message, byte for byte as received.
    let wire: ByteBuffer
    /// The payload, masked with ``maskKey`` when that is set.
    let payload: ByteBuffer
    let maskKey: WebSocketMaskingKey?
    /// Whether all frames of ``wire`` are masked (`true`), none is (`false`), or some are (`nil`).
    let wireMasked: Bool?
    /// The message came compressed (permessage-deflate): ``payload`` is its inflated text, unmasked, and ``wire``
    /// the compressed frames, which only the sender's leg can read.
    var compressed = false

    /// The payload without its mask (a copy only when it is masked).
    func unmaskedPayload(allocator: ByteBufferAllocator) -> ByteBuffer {
        WireFrame.unmasked(payload, key: maskKey, allocator: allocator)
    }
}

/// What a peer sent that breaks the WebSocket protocol or the relay's limits.
enum LegError: Error, Equatable {
    /// A frame (or a fragmented message) over `limits.max_frame_size`.
    case tooLarge(fragmented: Bool)
    case protocolViolation(String)
    /// A compressed message that is not valid deflate data.
    case invalidData(String)
}

/// The last handler of one leg's pipeline, and its WebSocket framing.
///
/// After the upgrade it reads frame headers in place and hands whole messages to the session without
/// copying or re-encoding them, writes what the session sends, and holds reads while the other leg cannot
/// take more (backpressure). It sits in front of NIO's frame codec, which the upgrade installs
/// (``install(in:leg:maxFrameBytes:)``).
///
/// Until a session attaches (the upstream leg exists before the charger's handshake completes), events are
/// kept in order and reads are held, so nothing is lost and nothing piles up.
package final class LegHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// At most this many fragments make one message.
    static let maxFragments = 4096

    let leg: LegID
    let maxFrameBytes: Int
    /// permessage-deflate, when the leg's handshake agreed it.
    let compression: LegCompression?
    private(set) var context: ChannelHandlerContext?
    private var session: RelaySession?
    private var early: [Event] = []
    /// Why reads are held (none: the leg is read).
    private var holds: Set<ReadHold>
    private var readPending = false
    /// Bytes of a frame not yet complete.
    private var partial: ByteBuffer?
    /// The fragments of a message not yet complete.
    private var fragments: Fragments?
    /// Set after a protocol violation: what follows is not read.
    private var broken = false

    private struct Fragments {
        let opcode: WebSocketOpcode
        var wire: ByteBuffer
        var payload: ByteBuffer
        var count: Int
        var masked: Bool?
        let compressed: Bool
    }

    private enum Event {
        case message(LegMessage)
        case inactive
        case error(any Error)
    }

    init(leg: LegID, maxFrameBytes: Int, compression: LegCompression? = nil) {
        self.leg = leg
        self.maxFrameBytes = maxFrameBytes
        self.compression = compression
        self.holds = leg == .charger ? [] : [.unattached]
    }

    package convenience init(leg: LegID, maxFrameBytes: Int) {
        self.init(leg: leg, maxFrameBytes: maxFrameBytes, compression: nil)
    }

    var channel: (any Channel)? { context?.channel }

    private var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    /// Puts a leg handler in front of the frame codec that a WebSocket upgrade installed and removes its
    /// decoder: from here on the handler reads and writes the frames itself. (NIO's encoder cannot be removed;
    /// it stays behind the leg handler, where nothing reaches it.)
    static func install(
        in pipeline: ChannelPipeline.SynchronousOperations,
        leg: LegID,
        maxFrameBytes: Int,
        deflate: DeflateAgreement? = nil
    ) throws -> LegHandler {
        let compression = try deflate.map { try LegCompression($0, relayIsServer: leg == .charger) }
        let handler = LegHandler(leg: leg, maxFrameBytes: maxFrameBytes, compression: compression)
        let encoder = try pipeline.context(handlerType: WebSocketFrameEncoder.self)
        let decoder = try pipeline.context(handlerType: ByteToMessageHandler<WebSocketFrameDecoder>.self)
        try pipeline.addHandler(handler, position: .before(encoder.handler))
        pipeline.removeHandler(context: decoder, promise: nil)
        return handler
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Connects the leg to its session and replays what happened before.
    func attach(_ session: RelaySession) {
        self.session = session
        let events = early
        early = []
        for event in events {
            switch event {
            case .message(let message): session.received(message, on: leg)
            case .inactive: session.inactive(leg)
            case .error(let error): session.failed(leg, error)
            }
        }
        resumeReads(.unattached)
    }

    /// Drops the session reference (the session has ended).
    func detach() {
        session = nil
    }

    // MARK: Reading frames

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else { return }
        var buffer = unwrapInboundIn(data)
        if var pending = partial {
            partial = nil
            pending.writeBuffer(&buffer)
            buffer = pending
        }
        process(&buffer, honouringHolds: true)
        keepRest(&buffer, own: false)
    }

    /// Hands on the complete frames in `buffer`; stops early while the leg is held for the rate limit or
    /// backpressure (a read of many small frames must not get past either).
    private func process(_ buffer: inout ByteBuffer, honouringHolds: Bool) {
        while !broken {
            if honouringHolds, holds.contains(.rate) || holds.contains(.backpressure) { return }
            switch WireFrameHeader.parse(buffer, maxPayload: maxFrameBytes) {
            case .needMore:
                return
            case .tooLarge:
                fail(.tooLarge(fragmented: false))
                return
            case .header(let header):
                guard buffer.readableBytes >= header.frameLength else { return }
                let wire = buffer.readSlice(length: header.frameLength)!
                frame(header, wire)
            }
        }
    }

    /// Keeps what was not handed on: in a buffer of its own, unless it already is one (not a view that would
    /// pin the whole receive buffer).
    private func keepRest(_ buffer: inout ByteBuffer, own: Bool) {
        guard !broken, buffer.readableBytes > 0 else { return }
        if own {
            // Its bytes already handed on go, or the buffer would only ever grow.
            buffer.discardReadBytes()
            partial = buffer
        } else {
            var kept = allocator.buffer(capacity: buffer.readableBytes)
            kept.writeBuffer(&buffer)
            partial = kept
        }
    }

    private func frame(_ header: WireFrameHeader, _ wire: ByteBuffer) {
        // RSV1 marks a compressed message, on its first frame only, where permessage-deflate was agreed.
        let compressed = header.reserved == 0x4
        guard
            header.reserved == 0 || (compressed && compression != nil && (header.opcode == 0x1 || header.opcode == 0x2))
        else {
            return fail(.protocolViolation("reserved bits set without a negotiated extension"))
        }
        let payload = wire.getSlice(at: wire.readerIndex + header.headerLength, length: header.payloadLength)!
        let opcode = WebSocketOpcode(encodedWebSocketOpcode: header.opcode)
        switch header.opcode {
        case 0x8, 0x9, 0xA:
            guard header.fin, header.payloadLength <= 125 else {
                return fail(.protocolViolation("control frame fragmented or longer than 125 bytes"))
            }
            emit(LegMessage(opcode: opcode!, wire: wire, payload: payload, maskKey: header.maskKey, wireMasked: nil))
        case 0x1, 0x2:
            guard fragments == nil else {
                return fail(.protocolViolation("a new message started inside a fragmented one"))
            }
            let masked = header.maskKey != nil
            if header.fin, compressed {
                let text = WireFrame.unmasked(payload, key: header.maskKey, allocator: allocator)
                emitInflated(opcode!, wire: wire, compressed: text, wireMasked: masked, fragmented: false)
            } else if header.fin {
                emit(
                    LegMessage(
                        opcode: opcode!,
                        wire: wire,
                        payload: payload,
                        maskKey: header.maskKey,
                        wireMasked: masked
                    )
                )
            } else {
                fragments = Fragments(
                    opcode: opcode!,
                    wire: wire,
                    payload: WireFrame.unmasked(payload, key: header.maskKey, allocator: allocator),
                    count: 1,
                    masked: masked,
                    compressed: compressed
                )
            }
        case 0x0:
            guard var message = fragments else {
                return fail(.protocolViolation("a continuation frame without a message to continue"))
            }
            fragments = nil
            message.count += 1
            guard message.count <= LegHandler.maxFragments,
                message.payload.readableBytes + header.payloadLength <= maxFrameBytes
            else {
                return fail(.tooLarge(fragmented: true))
            }
            var wire = wire
            message.wire.writeBuffer(&wire)
            var part = WireFrame.unmasked(payload, key: header.maskKey, allocator: allocator)
            message.payload.writeBuffer(&part)
            if message.masked != (header.maskKey != nil) { message.masked = nil }
            if header.fin, message.compressed {
                emitInflated(
                    message.opcode,
                    wire: message.wire,
                    compressed: message.payload,
                    wireMasked: message.masked,
                    fragmented: true
                )
            } else if header.fin {
                emit(
                    LegMessage(
                        opcode: message.opcode,
                        wire: message.wire,
                        payload: message.payload,
                        maskKey: nil,
                        wireMasked: message.masked
                    )
                )
            } else {
                fragments = message
            }
        default:
            fail(.protocolViolation("unknown opcode \(header.opcode)"))
        }
    }

    /// A compressed message inflated (never past `limits.max_frame_size`) and handed on as its text.
    private func emitInflated(
        _ opcode: WebSocketOpcode,
        wire: ByteBuffer,
        compressed: ByteBuffer,
        wireMasked: Bool?,
        fragmented: Bool
    ) {
        guard let compression else { return fail(.protocolViolation("a compressed message without compression")) }
        do throws(DeflateError) {
            let text = try compression.inflate(compressed, limit: maxFrameBytes, allocator: allocator)
            var message = LegMessage(opcode: opcode, wire: wire, payload: text, maskKey: nil, wireMasked: wireMasked)
            message.compressed = true
            emit(message)
        } catch .tooLarge {
            fail(.tooLarge(fragmented: fragmented))
        } catch {
            fail(.invalidData(error.description))
        }
    }

    private func emit(_ message: LegMessage) {
        if let session {
            session.received(message, on: leg)
        } else {
            early.append(.message(message))
        }
    }

    private func fail(_ error: LegError) {
        broken = true
        partial = nil
        fragments = nil
        if let session {
            session.failed(leg, error)
        } else {
            early.append(.error(error))
        }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        // What the peer sent before it went is still relayed, held or not.
        if !broken, var pending = partial {
            partial = nil
            process(&pending, honouringHolds: false)
        }
        if let session {
            session.inactive(leg)
        } else {
            early.append(.inactive)
        }
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let session {
            session.failed(leg, error)
        } else {
            early.append(.error(error))
        }
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        session?.writabilityChanged(leg, writable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    package func read(context: ChannelHandlerContext) {
        if !holds.isEmpty {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Why a leg is not read.
    enum ReadHold: Hashable {
        /// The session has not attached yet.
        case unattached
        /// The other leg cannot take more.
        case backpressure
        /// The charger sent more than its message rate allows.
        case rate
    }

    /// Stops reading from this leg until ``resumeReads(_:)`` with the same reason (and no other holds).
    func pauseReads(_ reason: ReadHold) {
        holds.insert(reason)
    }

    func resumeReads(_ reason: ReadHold) {
        guard holds.remove(reason) != nil else { return }
        if !broken, holds.isEmpty, var pending = partial {
            // Frames already received come first.
            partial = nil
            process(&pending, honouringHolds: true)
            keepRest(&pending, own: true)
        }
        if holds.isEmpty, readPending, let context {
            readPending = false
            context.read()
        }
    }

    // MARK: Writing

    /// Writes and flushes bytes that already are frames (a message forwarded as it came).
    func sendWire(_ wire: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.writeAndFlush(wrapOutboundOut(wire), promise: promise)
    }

    /// Frames `payload` in one buffer (masked when `maskKey` is given) and writes and flushes it.
    func send(
        _ opcode: WebSocketOpcode,
        _ payload: ByteBuffer,
        maskKey: WebSocketMaskingKey?,
        promise: EventLoopPromise<Void>? = nil
    ) {
        // Data messages go compressed where permessage-deflate was agreed; control frames never are.
        if let compression, opcode == .text || opcode == .binary,
            let deflated = compression.deflate(payload, allocator: allocator)
        {
            let frame = WireFrame.encode(
                compressed: true,
                opcode: opcode,
                payload: deflated,
                maskKey: maskKey,
                allocator: allocator
            )
            return sendWire(frame, promise: promise)
        }
        let frame = WireFrame.encode(opcode: opcode, payload: payload, maskKey: maskKey, allocator: allocator)
        sendWire(frame, promise: promise)
    }

    /// Whether the leg's channel can take more writes now.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Closes the TCP connection.
    func closeChannel() {
        context?.close(promise: nil)
    }

    /// Closes with a reset (SO_LINGER 0): the bytes still queued in the kernel are discarded, never delivered to
    /// a peer that comes back.
    func resetChannel() {
        guard let context else { return }
        guard let socket = context.channel as? any SocketOptionProvider else { return context.close(promise: nil) }
        let channel = context.channel
        socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }
}
