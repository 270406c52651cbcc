import OCPP

/// Which side of the recorded conversation the replayer plays.
public enum ReplayRole: String, Sendable, CaseIterable {
    /// Play the charger (or, on the upstream leg of a translated recording, the relay's station side)
    /// against a live backend.
    case charger
    /// Play the backend against a live charger.
    case backend
}

public struct ReplayOptions: Sendable {
    public var role: ReplayRole
    /// `charger` or `upstream`: which leg of the recording to replay.
    public var leg: String
    public var rules: ComparisonRules
    /// 0: as fast as possible; 1: the recorded gaps; N: the gaps divided by N.
    public var speed: Double
    /// The longest pause between two sent CALLs, in seconds, whatever the recording says.
    public var maxGap: Double?
    /// How long to wait for the live peer's answer to a CALL.
    public var answerTimeout: Double
    /// How long to wait for a CALL the live peer sent at this point of the recording.
    public var expectTimeout: Double

    public init(
        role: ReplayRole,
        leg: String = "charger",
        rules: ComparisonRules = .defaults,
        speed: Double = 0,
        maxGap: Double? = nil,
        answerTimeout: Double = 30,
        expectTimeout: Double = 5
    ) {
        self.role = role
        self.leg = leg
        self.rules = rules
        self.speed = speed
        self.maxGap = maxGap
        self.answerTimeout = answerTimeout
        self.expectTimeout = expectTimeout
    }
}

/// What the driver must do next.
public enum ReplayAction: Sendable, Equatable {
    /// Send this frame text to the live peer.
    case send(String)
    /// Wait for a frame, at most until this wall-clock time (µs since the epoch); then call `timedOut`.
    case wait(until: Int64)
    /// The replay is over; the report is complete.
    case finished
}

/// The result of one exchange (a CALL and its answer) of the recording.
public struct ExchangeOutcome: Sendable, Hashable {
    /// `#7 StartTransaction (charger → backend)`.
    public var name: String
    public var mismatches: [Mismatch]
}

/// What a replay found.
public struct ReplayReport: Sendable {
    public var exchanges: [ExchangeOutcome] = []
    /// Mismatches outside any recorded exchange (unexpected CALLs, protocol errors).
    public var other: [Mismatch] = []

    public var mismatches: [Mismatch] { exchanges.flatMap(\.mismatches) + other }
    public var passed: Bool { mismatches.isEmpty }
}

/// Replays one side of a recorded conversation against a live peer: a pure state machine. The driver
/// feeds it what the peer sends and when waits expire; it answers with frames to send and how long to wait.
///
/// It sends its side's CALLs in recorded order, one at a time, and compares each answer with the recorded
/// one; it answers the peer's CALLs with the recorded answers (matched by action, then order) and compares
/// the CALLs themselves. Values the live peer chooses (transaction ids, request ids, …) are learned and
/// substituted in later frames; payload timestamps are re-based to the replay's start.
public struct ReplaySession: Sendable {
    struct Step: Sendable {
        var index: Int
        var time: Int64
        var frame: RPCFrame
    }

    struct Exchange: Sendable {
        var call: Step
        var action: String
        var answer: Step?
        var done = false
    }

    public let options: ReplayOptions
    public private(set) var report = ReplayReport()
    /// The subprotocol of the replayed leg (`ocpp1.6`).
    public let subprotocol: String

    private var ours: [Exchange] = []
    private var theirs: [Exchange] = []
    private var nextOurs = 0
    private var inFlight: (liveID: String, exchange: Int, deadline: Int64)?
    private var expectDeadline: Int64?
    private var paceUntil: Int64?
    private var lastSentRecordedTime: Int64?
    private var offset: Int64 = 0
    private var now: Int64 = 0
    private var comparator: Comparator
    private let makeID: @Sendable () -> String
    private var finished = false

    /// - Parameter makeID: fresh message ids for the CALLs the replayer sends.
    public init(fixture: Fixture, options: ReplayOptions, makeID: @escaping @Sendable () -> String) throws(FixtureError)
    {
        self.options = options
        self.makeID = makeID
        self.comparator = Comparator(rules: options.rules, bindings: Bindings())
        let entries = fixture.entries.filter { $0.leg == options.leg && $0.text != nil }
        guard let firstVersion = entries.first?.version else {
            throw FixtureError("the fixture has no frames on the \(options.leg) leg")
        }
        subprotocol = "ocpp" + firstVersion
        // Which recorded frames were sent by the side the replayer plays.
        let oursDirection: String
        switch (options.role, options.leg) {
        case (.charger, "charger"), (.backend, "upstream"): oursDirection = "in"
        default: oursDirection = "out"
        }
        var ourSteps: [(Step, Bool)] = []
        for (index, entry) in entries.enumerated() {
            guard let text = entry.text, let frame = try? RPCFrame.parse(text) else {
                throw FixtureError(
                    "entry \(index + 1) on the \(options.leg) leg is not an OCPP frame; it cannot be replayed"
                )
            }
            guard let micros = RFC3339.parse(entry.time)?.micros else {
                throw FixtureError("entry \(index + 1) has a bad time")
            }
            ourSteps.append((Step(index: index, time: micros, frame: frame), entry.direction == oursDirection))
        }
        func answer(to call: Step, fromOurs: Bool) -> Step? {
            ourSteps.first { step, isOurs in
                isOurs == fromOurs && step.index > call.index && step.frame.messageID == call.frame.messageID
                    && step.frame.action == nil
            }?.0
        }
        for (step, isOurs) in ourSteps {
            guard case .call(let call) = step.frame else { continue }
            let exchange = Exchange(call: step, action: call.action, answer: answer(to: step, fromOurs: !isOurs))
            if isOurs { ours.append(exchange) } else { theirs.append(exchange) }
        }
    }

    /// Starts the replay at wall-clock time `now` (µs since the epoch).
    public mutating func start(at now: Int64) -> [ReplayAction] {
        self.now = now
        let first = ours.first?.call.time ?? theirs.first?.call.time ?? now
        offset = now - first
        return advance()
    }

    /// A frame from the live peer.
    public mutating func received(_ text: String, at now: Int64) -> [ReplayAction] {
        self.now = now
        var actions: [ReplayAction] = []
        guard let frame = try? RPCFrame.parse(text) else {
            report.other.append(
                Mismatch(action: "?", path: "", expected: "an OCPP frame", got: String(text.prefix(200)))
            )
            return advance()
        }
        switch frame {
        case .call(let call):
            actions += theirCall(call)
        case .callResult, .callError:
            answered(frame)
        default:
            report.other.append(
                Mismatch(
                    action: "?",
                    path: "",
                    expected: "a CALL, CALLRESULT or CALLERROR",
                    got: String(text.prefix(200))
                )
            )
        }
        return actions + advance()
    }

    /// The last wait expired without a frame.
    public mutating func timedOut(at now: Int64) -> [ReplayAction] {
        self.now = now
        return advance()
    }

    /// The live peer closed the connection: the CALL in flight is unanswered, what was not sent or did not come is
    /// reported, and the replay is over.
    public mutating func peerClosed(at now: Int64) -> [ReplayAction] {
        self.now = now
        guard !finished else { return [.finished] }
        if let flight = inFlight { unanswered(flight.exchange, "none: the peer closed the connection") }
        let unsent = ours.count - nextOurs
        let missing = theirs.filter { !$0.done }.count
        if unsent > 0 || missing > 0 {
            report.other.append(
                Mismatch(
                    action: "?",
                    path: "",
                    expected: "the connection open to the end of the recording",
                    got: "closed by the peer with \(unsent) of \(ours.count) CALLs not sent"
                        + (missing > 0 ? " and \(missing) of the peer's \(theirs.count) not received" : "")
                )
            )
        }
        for index in theirs.indices { theirs[index].done = true }
        nextOurs = ours.count
        finished = true
        return [.finished]
    }

    // MARK: Their CALLs

    private mutating func theirCall(_ call: RPCFrame.Call) -> [ReplayAction] {
        guard let index = theirs.firstIndex(where: { !$0.done && $0.action == call.action }) else {
            report.other.append(
                Mismatch(
                    action: call.action,
                    path: "",
                    expected: "no such CALL at this point",
                    got: "a \(call.action) CALL"
                )
            )
            let error = RPCFrame.callError(
                .init(messageID: call.messageID, errorCode: "NotImplemented", errorDescription: "not in the recording")
            )
            return [.send(error.jsonText)]
        }
        theirs[index].done = true
        let exchange = theirs[index]
        guard case .call(let recorded) = exchange.call.frame else { return [] }
        let mismatches = comparator.compare(action: call.action, expected: recorded.payload, got: call.payload)
        report.exchanges.append(ExchangeOutcome(name: name(exchange, ours: false), mismatches: mismatches))
        guard let answer = exchange.answer else { return [] }
        let reply: RPCFrame
        switch answer.frame {
        case .callResult(let result):
            reply = .callResult(.init(messageID: call.messageID, payload: prepare(result.payload)))
        case .callError(let error):
            reply = .callError(
                .init(
                    messageID: call.messageID,
                    errorCode: error.errorCode,
                    errorDescription: error.errorDescription,
                    errorDetails: error.errorDetails
                )
            )
        default:
            return []
        }
        return [.send(reply.jsonText)]
    }

    // MARK: Our CALLs

    private mutating func answered(_ frame: RPCFrame) {
        guard let flight = inFlight, flight.liveID == frame.messageID else {
            report.other.append(
                Mismatch(
                    action: "?",
                    path: "",
                    expected: "no answer",
                    got: "an answer to unknown message id \(frame.messageID)"
                )
            )
            return
        }
        inFlight = nil
        let exchange = ours[flight.exchange]
        let action = exchange.action
        var mismatches: [Mismatch] = []
        switch (exchange.answer?.frame, frame) {
        case (.callResult(let expected)?, .callResult(let got)):
            mismatches = comparator.compare(action: action + ".result", expected: expected.payload, got: got.payload)
        case (.callError(let expected)?, .callError(let got)):
            if expected.errorCode != got.errorCode {
                mismatches = [
                    Mismatch(
                        action: action + ".error",
                        path: "errorCode",
                        expected: expected.errorCode,
                        got: got.errorCode
                    )
                ]
            }
        case (nil, _):
            break  // the recording has no answer (cut off): nothing to compare
        case (.callResult?, .callError(let got)):
            mismatches = [
                Mismatch(
                    action: action,
                    path: "",
                    expected: "a CALLRESULT",
                    got: "CALLERROR \(got.errorCode): \(got.errorDescription)"
                )
            ]
        case (.callError(let expected)?, _):
            mismatches = [
                Mismatch(action: action, path: "", expected: "CALLERROR \(expected.errorCode)", got: "a CALLRESULT")
            ]
        default:
            break
        }
        report.exchanges.append(ExchangeOutcome(name: name(exchange, ours: true), mismatches: mismatches))
    }

    private func name(_ exchange: Exchange, ours: Bool) -> String {
        let (from, to) = (options.role == .charger) == ours ? ("charger", "backend") : ("backend", "charger")
        return "#\(exchange.call.index + 1) \(exchange.action) (\(from) → \(to))"
    }

    /// A recorded payload made ready to send: bound values substituted, timestamps re-based.
    private func prepare(_ payload: JSONValue) -> JSONValue {
        comparator.bindings.substitute(payload, keys: options.rules.bind).rebasingTimestamps(by: offset)
    }

    // MARK: Driving

    private mutating func advance() -> [ReplayAction] {
        guard !finished else { return [.finished] }
        if let flight = inFlight {
            if now < flight.deadline { return [.wait(until: flight.deadline)] }
            unanswered(flight.exchange, "none within \(Int(options.answerTimeout)) s")
        }
        if nextOurs < ours.count {
            let exchange = ours[nextOurs]
            // The peer's CALLs that came before this one in the recording should have come by now.
            if theirs.contains(where: { !$0.done && $0.call.index < exchange.call.index }) {
                if expectDeadline == nil { expectDeadline = now + micros(options.expectTimeout) }
                if let deadline = expectDeadline, now < deadline { return [.wait(until: deadline)] }
                giveUp { $0.call.index < exchange.call.index }
            }
            expectDeadline = nil
            // Pacing: the recorded gap, scaled and capped.
            if options.speed > 0, let last = lastSentRecordedTime {
                if paceUntil == nil {
                    var gap = Double(exchange.call.time - last) / 1e6 / options.speed
                    if let cap = options.maxGap { gap = min(gap, cap) }
                    paceUntil = now + micros(max(0, gap))
                }
                if let until = paceUntil, now < until { return [.wait(until: until)] }
            }
            paceUntil = nil
            lastSentRecordedTime = exchange.call.time
            guard case .call(let recorded) = exchange.call.frame else { return advance() }
            let id = makeID()
            let frame = RPCFrame.call(.init(messageID: id, action: recorded.action, payload: prepare(recorded.payload)))
            inFlight = (id, nextOurs, now + micros(options.answerTimeout))
            nextOurs += 1
            return [.send(frame.jsonText), .wait(until: inFlight!.deadline)]
        }
        // Our side is done: the peer's remaining CALLs may still come.
        if theirs.contains(where: { !$0.done }) {
            if expectDeadline == nil { expectDeadline = now + micros(options.expectTimeout) }
            if let deadline = expectDeadline, now < deadline { return [.wait(until: deadline)] }
            giveUp { _ in true }
        }
        finished = true
        return [.finished]
    }

    /// Our CALL in flight got no answer (`got` says why); it is no longer in flight.
    private mutating func unanswered(_ index: Int, _ got: String) {
        let exchange = ours[index]
        report.exchanges.append(
            ExchangeOutcome(
                name: name(exchange, ours: true),
                mismatches: [Mismatch(action: exchange.action, path: "", expected: "an answer", got: got)]
            )
        )
        inFlight = nil
    }

    private mutating func giveUp(_ which: (Exchange) -> Bool) {
        for index in theirs.indices where !theirs[index].done && which(theirs[index]) {
            theirs[index].done = true
            report.exchanges.append(
                ExchangeOutcome(
                    name: name(theirs[index], ours: false),
                    mismatches: [
                        Mismatch(
                            action: theirs[index].action,
                            path: "",
                            expected: "this CALL from the peer",
                            got: "none within \(Int(options.expectTimeout)) s"
                        )
                    ]
                )
            )
        }
    }

    private func micros(_ seconds: Double) -> Int64 { Int64(seconds * 1e6) }

    /// The CALLs of each side, for a summary.
    public var counts: (ours: Int, theirs: Int) { (ours.count, theirs.count) }
}
