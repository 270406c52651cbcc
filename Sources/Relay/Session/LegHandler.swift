import NIOCore
import NIOWebSocket
import RelayRecording

/// The last handler of one leg's pipeline: hands whole WebSocket messages to the session, writes what the
/// session sends, and holds reads while the other leg cannot take more (backpressure).
///
/// Until a session attaches (the upstream leg exists before the charger's handshake completes), events are
/// kept in order and reads are held, so nothing is lost and nothing piles up.
final class LegHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let leg: Leg
    let maxFrameBytes: Int
    private(set) var context: ChannelHandlerContext?
    private var session: RelaySession?
    private var early: [Event] = []
    private var holdReads: Bool
    private var readPending = false

    private enum Event {
        case frame(WebSocketFrame)
        case inactive
        case error(any Error)
    }

    init(leg: Leg, maxFrameBytes: Int) {
        self.leg = leg
        self.maxFrameBytes = maxFrameBytes
        self.holdReads = leg == .upstream
    }

    var channel: (any Channel)? { context?.channel }

    /// Adds a leg handler, behind an aggregator that joins fragmented messages up to the size limit,
    /// to an upgraded WebSocket pipeline.
    static func install(
        in pipeline: ChannelPipeline.SynchronousOperations,
        leg: Leg,
        maxFrameBytes: Int
    ) throws -> LegHandler {
        let handler = LegHandler(leg: leg, maxFrameBytes: maxFrameBytes)
        try pipeline.addHandler(
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 0,
                maxAccumulatedFrameCount: 4096,
                maxAccumulatedFrameSize: maxFrameBytes
            )
        )
        try pipeline.addHandler(handler)
        return handler
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Connects the leg to its session and replays what happened before.
    func attach(_ session: RelaySession) {
        self.session = session
        let events = early
        early = []
        for event in events {
            switch event {
            case .frame(let frame): session.received(frame, on: leg)
            case .inactive: session.inactive(leg)
            case .error(let error): session.failed(leg, error)
            }
        }
        resumeReads()
    }

    /// Drops the session reference (the session has ended).
    func detach() {
        session = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let session {
            session.received(frame, on: leg)
        } else {
            early.append(.frame(frame))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session {
            session.inactive(leg)
        } else {
            early.append(.inactive)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let session {
            session.failed(leg, error)
        } else {
            early.append(.error(error))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session?.writabilityChanged(leg, writable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if holdReads {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Stops reading from this leg until ``resumeReads()``.
    func pauseReads() {
        holdReads = true
    }

    func resumeReads() {
        holdReads = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Writes and flushes a frame; client frames are masked as RFC 6455 requires.
    func send(_ frame: WebSocketFrame, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.writeAndFlush(wrapOutboundOut(frame), promise: promise)
    }

    /// Whether the leg's channel can take more writes now.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Closes the TCP connection.
    func closeChannel() {
        context?.close(promise: nil)
    }
}
