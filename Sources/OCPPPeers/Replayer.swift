import Foundation
import NIOCore
import NIOWebSocket
import OCPP
import OCPPReplay
import OCPPTransport
import RelayRecording

/// Runs replays over the network: as the charger against a backend (`connect`), or as the backend for chargers
/// that connect (`listen`); one fixture here, a suite, a load test or a fleet through ``ReplayPlan`` (see
/// `Replayer+Plans.swift`). A Swift test can call ``run(_:options:target:group:)`` directly.
public enum Replayer {
    /// Where the live peer is.
    public enum Target: Sendable {
        /// Connect to `<url>/<identity>` (replaying the charger side).
        case connect(url: String, identity: String?)
        /// Wait for one charger on this address (replaying the backend side); `onListening` gets the port.
        case listen(host: String, port: Int, acceptTimeout: Double, onListening: @Sendable (Int) -> Void)
    }

    /// The replay could not run: the fixture is unusable or the peer is unreachable (exit code 2).
    public struct CouldNotRun: Error, CustomStringConvertible {
        public let description: String
    }

    /// Replays one fixture: a plan of one run (``ReplayPlan/suite(_:)``), connecting or served as every plan is.
    public static func run(
        _ fixture: Fixture,
        options: ReplayOptions,
        target: Target,
        group: any EventLoopGroup
    ) async throws -> ReplayReport {
        var plan = ReplayPlan.suite([(fixture.header.charger, fixture)])
        let results: [ReplayRunResult]
        switch target {
        case .connect(let url, let identity):
            plan.runs[0].identity = identity
            results = await run(plan, options: options, url: url, parallel: 1, group: group)
        case .listen(let host, let port, let acceptTimeout, let onListening):
            results = try await serve(
                plan,
                options: options,
                host: host,
                port: port,
                acceptTimeout: acceptTimeout,
                group: group,
                onListening: onListening
            )
        }
        guard let report = results.first?.report else {
            throw CouldNotRun(description: results.first?.couldNotRun ?? "no run")
        }
        return report
    }

    /// Opens the charger's WebSocket to `<url>/<identity>` with the session's subprotocol.
    static func connect(
        url: String,
        identity: String,
        _ session: ReplaySession,
        group: any EventLoopGroup
    ) async throws -> PeerSocket {
        let upstream: UpstreamURL
        let id: ChargePointIdentity
        do {
            upstream = try UpstreamURL(url)
            id = try ChargePointIdentity(identity)
        } catch {
            throw CouldNotRun(description: "\(error)")
        }
        let socket: PeerSocket
        do {
            socket = try await PeerTransport.connect(
                host: upstream.host,
                port: upstream.port,
                path: upstream.path(for: id),
                subprotocols: [session.subprotocol],
                group: group
            )
        } catch {
            throw CouldNotRun(description: "cannot connect to \(upstream.url(for: id)): \(error)")
        }
        guard socket.subprotocol == session.subprotocol else {
            try? await socket.channel.channel.close()
            throw CouldNotRun(
                description:
                    "the backend chose \(socket.subprotocol ?? "no subprotocol"), the recording speaks \(session.subprotocol)"
            )
        }
        return socket
    }

    /// Runs `session` over `socket` until it is finished or the peer closes, then closes the socket; `observe`
    /// sees the report after each step (a progress line).
    static func drive(
        _ session: inout ReplaySession,
        on socket: PeerSocket,
        start: (inout ReplaySession, Int64) -> [ReplayAction],
        observe: (ReplayReport) -> Void = { _ in }
    ) async throws -> ReplayReport {
        try await socket.channel.executeThenClose { inbound, outbound in
            let inbox = Inbox()
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var iterator = inbound.makeAsyncIterator()
                    while let frame = try await iterator.next() {
                        var data = frame.data
                        if let mask = frame.maskKey { data.webSocketUnmask(mask) }
                        switch frame.opcode {
                        case .text: await inbox.push(String(buffer: data))
                        case .ping:
                            try await outbound.write(
                                WebSocketFrame(
                                    fin: true,
                                    opcode: .pong,
                                    maskKey: socket.isClient ? .random() : nil,
                                    data: data
                                )
                            )
                        case .connectionClose: break
                        default: continue
                        }
                        if frame.opcode == .connectionClose { break }
                    }
                    await inbox.close()
                }
                func send(_ text: String) async throws {
                    try await outbound.write(
                        WebSocketFrame(
                            fin: true,
                            opcode: .text,
                            maskKey: socket.isClient ? .random() : nil,
                            data: ByteBuffer(string: text)
                        )
                    )
                }
                var actions = start(&session, Int64(Timestamp.now()))
                loop: while true {
                    var deadline: Int64?
                    for action in actions {
                        switch action {
                        case .send(let text): try await send(text)
                        case .wait(let until): deadline = until
                        case .finished: break loop
                        }
                    }
                    observe(session.report)
                    let wait = max(0, Double((deadline ?? Int64(Timestamp.now())) - Int64(Timestamp.now())) / 1e6)
                    switch await inbox.next(timeout: wait) {
                    case .frame(let text): actions = session.received(text, at: Int64(Timestamp.now()))
                    case .timeout: actions = session.timedOut(at: Int64(Timestamp.now()))
                    case .closed:
                        // The peer went away: the session reports what is left and ends.
                        _ = session.peerClosed(at: Int64(Timestamp.now()))
                        break loop
                    }
                }
                observe(session.report)
                var close = ByteBuffer()
                close.writeInteger(UInt16(1000))
                try? await outbound.write(
                    WebSocketFrame(
                        fin: true,
                        opcode: .connectionClose,
                        maskKey: socket.isClient ? .random() : nil,
                        data: close
                    )
                )
                group.cancelAll()
                return session.report
            }
        }
    }
}

/// Frames from the reader task, handed to the replay loop with a deadline.
actor Inbox {
    enum Event: Sendable {
        case frame(String)
        case timeout
        case closed
    }

    private var queue: [String] = []
    private var closed = false
    /// The loop waiting for a frame, and the timer that ends its wait (cancelled when a frame comes first, so
    /// that thousands of replayed chargers do not leave a sleeping task behind per message).
    private var waiter: (id: Int, continuation: CheckedContinuation<Event, Never>, timer: Task<Void, Never>?)?
    private var nextID = 0

    func push(_ text: String) {
        if let waiter {
            self.waiter = nil
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .frame(text))
        } else {
            queue.append(text)
        }
    }

    func close() {
        closed = true
        if let waiter {
            self.waiter = nil
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .closed)
        }
    }

    func next(timeout seconds: Double) async -> Event {
        if !queue.isEmpty { return .frame(queue.removeFirst()) }
        if closed { return .closed }
        if seconds <= 0 { return .timeout }
        nextID += 1
        let id = nextID
        return await withCheckedContinuation { continuation in
            let timer = Task {
                try? await Task.sleep(for: .microseconds(Int64(seconds * 1e6) + 1))
                self.expire(id)
            }
            waiter = (id, continuation, timer)
        }
    }

    private func expire(_ id: Int) {
        guard let waiter, waiter.id == id else { return }
        self.waiter = nil
        waiter.continuation.resume(returning: .timeout)
    }
}
