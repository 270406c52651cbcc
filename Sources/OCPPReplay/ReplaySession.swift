import OCPP
import OCPPSchema

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
    /// How the live peer answered.
    public enum Answer: Sendable, Hashable {
        case result
        case error(code: String)
        /// No answer (within the timeout, or before the peer closed).
        case none
    }

    /// `#7 StartTransaction (charger → backend)`.
    public var name: String
    public var action: String
    public var answer: Answer
    /// From sending the CALL to its answer, in µs: the live peer's answer time (CALLs the replayer sent).
    public var answerTime: Int64?
    public var mismatches: [Mismatch]

    public init(
        name: String,
        action: String,
        answer: Answer,
        answerTime: Int64? = nil,
        mismatches: [Mismatch]
    ) {
        self.name = name
        self.action = action
        self.answer = answer
        self.answerTime = answerTime
        self.mismatches = mismatches
    }
}

/// What a replay found.
public struct ReplayReport: Sendable {
    public var exchanges: [ExchangeOutcome] = []
    /// Mismatches outside any recorded exchange (unexpected CALLs, protocol errors, a closed connection).
    public var other: [Mismatch] = []

    public init() {}

    public var mismatches: [Mismatch] { exchanges.flatMap(\.mismatches) + other }
    /// No difference that fails (warnings allowed).
    public var passed: Bool { !mismatches.contains { $0.severity == .fail } }
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
    private var inFlight: (liveID: String, exchange: Int, sentAt: Int64, deadline: Int64)?
    private var expectDeadline: Int64?
    /// When the replay started (wall clock, µs) and the recorded time it stands for: a CALL recorded at `t` is
    /// due at `started + (t - origin) / speed`, later by `shift` where `maxGap` shortened a pause.
    private var started: Int64 = 0
    private var origin: Int64 = 0
    private var shift: Int64 = 0
    private var lastSentAt: Int64?
    private var now: Int64 = 0
    private var comparator: Comparator
    private let makeID: @Sendable () -> String
    private var finished = false
    /// The recorded identity and the one this charger has, when they differ.
    private var swap: (recorded: String, live: String)?
    /// Judges the live peer's frames against the schema of the replayed leg's version (and learns from ours which
    /// call an answer answers).
    private var judge: FrameJudge?

    /// - Parameter makeID: fresh message ids for the CALLs the replayer sends.
    public init(fixture: Fixture, options: ReplayOptions, makeID: @escaping @Sendable () -> String) throws(FixtureError)
    {
        self.init(
            script: try ReplayScript(fixture, role: options.role, leg: options.leg),
            options: options,
            makeID: makeID
        )
    }

    /// A session playing a script parsed once for many chargers (its role and leg are the options').
    ///
    /// - Parameter identity: the identity this charger connects as, when it is not the recorded one (a load test's
    ///   `LOAD-7`): the recorded identity in payloads it sends becomes this one (a serial number, a DataTransfer's
    ///   id), and this one in payloads it receives counts as the recorded one.
    public init(
        script: ReplayScript,
        options: ReplayOptions,
        identity: String? = nil,
        makeID: @escaping @Sendable () -> String
    ) {
        if let identity, identity != script.charger, !script.charger.isEmpty {
            swap = (script.charger, identity)
        }
        self.options = options
        self.makeID = makeID
        self.comparator = Comparator(rules: options.rules, bindings: Bindings())
        subprotocol = script.subprotocol
        judge = OCPPVersion(rawValue: script.subprotocol).map(FrameJudge.init(version:))
        ours = script.ours
        theirs = script.theirs
    }

    /// Starts the replay at wall-clock time `now` (µs since the epoch), standing for the recorded time `origin`
    /// (default: the first CALL's). With a `speed`, each CALL is sent when its recorded time comes, scaled, and not
    /// before the previous one was answered; a fleet's chargers share one origin and so keep their relative timing.
    ///
    /// - Parameter scheduledStart: the wall-clock time that stands for `origin` when it is not `now` (a fleet's
    ///   common start, this charger connecting later).
    public mutating func start(at now: Int64, origin: Int64? = nil, scheduledStart: Int64? = nil) -> [ReplayAction] {
        self.now = now
        started = scheduledStart ?? now
        self.origin = origin ?? firstCallTime ?? now
        return advance()
    }

    /// When the recording's first CALL was made (µs since the epoch).
    public var firstCallTime: Int64? {
        [ours.first?.call.time, theirs.first?.call.time].compactMap { $0 }.min()
    }

    /// A frame from the live peer.
    public mutating func received(_ text: String, at now: Int64) -> [ReplayAction] {
        self.now = now
        var actions: [ReplayAction] = []
        guard let frame = try? RPCFrame.parse(text) else {
            note(
                Mismatch(
                    action: "?",
                    path: "",
                    expected: "an OCPP frame",
                    got: String(text.prefix(200)),
                    kind: .malformed
                )
            )
            return advance()
        }
        judgeTheirs(frame)
        switch frame {
        case .call(let call):
            actions += theirCall(call)
        case .callResult, .callError:
            answered(frame)
        default:
            note(
                Mismatch(
                    action: "?",
                    path: "",
                    expected: "a CALL, CALLRESULT or CALLERROR",
                    got: String(text.prefix(200)),
                    kind: .malformed
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
            note(
                Mismatch(
                    action: "?",
                    path: "",
                    expected: "the connection open to the end of the recording",
                    got: "closed by the peer with \(unsent) of \(ours.count) CALLs not sent"
                        + (missing > 0 ? " and \(missing) of the peer's \(theirs.count) not received" : ""),
                    kind: .closed
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
            return unexpected(call)
        }
        theirs[index].done = true
        let exchange = theirs[index]
        guard case .call(let recorded) = exchange.call.frame else { return [] }
        let mismatches = comparator.compare(
            action: call.action,
            expected: recorded.payload,
            got: asRecorded(call.payload)
        )
        let reply = exchange.answer.flatMap { self.reply(to: call, as: $0) }
        add(
            ExchangeOutcome(
                name: name(exchange, ours: false),
                action: call.action,
                answer: Self.answerKind(reply),
                mismatches: mismatches
            )
        )
        if let reply { judgeOurs(reply) }
        return reply.map { [.send($0.jsonText)] } ?? []
    }

    /// A CALL the fixture lacks at this point: answered with the fixture's last answer to that action (else
    /// `NotImplemented`), and reported as the rules' `unexpected_calls` says.
    private mutating func unexpected(_ call: RPCFrame.Call) -> [ReplayAction] {
        let recorded = theirs.last { $0.action == call.action && $0.answer != nil }?.answer
        let answer =
            recorded.flatMap { reply(to: call, as: $0) }
            ?? RPCFrame.callError(
                .init(messageID: call.messageID, errorCode: "NotImplemented", errorDescription: "not in the recording")
            )
        let severity: Severity? =
            switch options.rules.unexpectedCalls {
            case .answer: nil
            case .report: .warn
            case .fail: .fail
            }
        if let severity {
            note(
                Mismatch(
                    action: call.action,
                    path: "",
                    expected: "no such CALL at this point",
                    got: "a \(call.action) CALL (answered with "
                        + (recorded == nil ? "NotImplemented" : "the recording's answer to \(call.action)") + ")",
                    kind: .unexpectedCall,
                    severity: severity
                )
            )
        }
        judgeOurs(answer)
        return [.send(answer.jsonText)]
    }

    /// The recorded answer `answer` made into the answer to the live `call`.
    private func reply(to call: RPCFrame.Call, as answer: Step) -> RPCFrame? {
        switch answer.frame {
        case .callResult(let result):
            .callResult(.init(messageID: call.messageID, payload: prepare(result.payload)))
        case .callError(let error):
            .callError(
                .init(
                    messageID: call.messageID,
                    errorCode: error.errorCode,
                    errorDescription: error.errorDescription,
                    errorDetails: error.errorDetails
                )
            )
        default:
            nil
        }
    }

    private static func answerKind(_ frame: RPCFrame?) -> ExchangeOutcome.Answer {
        switch frame {
        case .callResult?: .result
        case .callError(let error)?: .error(code: error.errorCode)
        default: .none
        }
    }

    /// A difference outside the recorded exchanges, weighed by the rules.
    /// The sides of the conversation as the judge names them: the replayer's and the live peer's.
    private var sides: (ours: FrameJudge.Sender, theirs: FrameJudge.Sender) {
        options.role == .charger ? (.charger, .server) : (.server, .charger)
    }

    private mutating func judgeOurs(_ frame: RPCFrame) {
        let ours = sides.ours
        _ = judge?.judge(frame, from: ours)
    }

    /// A live peer's frame that breaks its version's schema is a difference of its own kind.
    private mutating func judgeTheirs(_ frame: RPCFrame) {
        guard var judge else { return }
        let judged = judge.judge(frame, from: sides.theirs)
        self.judge = judge
        guard case .invalid(let violations) = judged.verdict, let first = violations.first else { return }
        let suffix = judged.messageType == 3 ? ".result" : judged.messageType == 4 ? ".error" : ""
        note(
            Mismatch(
                action: (judged.action ?? "?") + suffix,
                path: first.path,
                expected: "valid OCPP \(judge.version.shortName)",
                got: violations.map(\.description).joined(separator: "; "),
                kind: .invalid
            )
        )
    }

    private mutating func note(_ mismatch: Mismatch) {
        report.other += options.rules.weigh([mismatch])
    }

    /// An exchange's outcome, its differences weighed by the rules (as ``note(_:)`` weighs the others).
    private mutating func add(_ outcome: ExchangeOutcome) {
        var outcome = outcome
        outcome.mismatches = options.rules.weigh(outcome.mismatches)
        report.exchanges.append(outcome)
    }

    // MARK: Our CALLs

    private mutating func answered(_ frame: RPCFrame) {
        guard let flight = inFlight, flight.liveID == frame.messageID else {
            note(
                Mismatch(
                    action: "?",
                    path: "",
                    expected: "no answer",
                    got: "an answer to unknown message id \(frame.messageID)",
                    kind: .malformed
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
            mismatches = comparator.compare(
                action: action + ".result",
                expected: expected.payload,
                got: asRecorded(got.payload)
            )
        case (.callError(let expected)?, .callError(let got)):
            if expected.errorCode != got.errorCode {
                mismatches = [
                    Mismatch(
                        action: action + ".error",
                        path: "errorCode",
                        expected: expected.errorCode,
                        got: got.errorCode,
                        kind: .answerKind
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
                    got: "CALLERROR \(got.errorCode): \(got.errorDescription)",
                    kind: .answerKind
                )
            ]
        case (.callError(let expected)?, _):
            mismatches = [
                Mismatch(
                    action: action,
                    path: "",
                    expected: "CALLERROR \(expected.errorCode)",
                    got: "a CALLRESULT",
                    kind: .answerKind
                )
            ]
        default:
            break
        }
        add(
            ExchangeOutcome(
                name: name(exchange, ours: true),
                action: action,
                answer: Self.answerKind(frame),
                answerTime: now - flight.sentAt,
                mismatches: mismatches
            )
        )
    }

    private func name(_ exchange: Exchange, ours: Bool) -> String {
        let (from, to) = (options.role == .charger) == ours ? ("charger", "backend") : ("backend", "charger")
        return "#\(exchange.call.index + 1) \(exchange.action) (\(from) → \(to))"
    }

    /// A recorded payload made ready to send: bound values substituted, timestamps re-based (the recording's
    /// origin becomes the replay's start; with a speed, recorded spans shrink with it, so that timestamps stay near
    /// the time they are sent).
    private func prepare(_ payload: JSONValue) -> JSONValue {
        let (started, origin, speed) = (started, origin, options.speed)
        let prepared = comparator.bindings.substitute(payload, keys: options.rules.bind).rebasingTimestamps {
            recorded in
            started + (speed > 0 ? Int64(Double(recorded - origin) / speed) : recorded - origin)
        }
        guard let swap else { return prepared }
        return prepared.replacingStrings(swap.recorded, with: swap.live)
    }

    /// A live payload with this charger's identity written as the recorded one, for comparison.
    private func asRecorded(_ payload: JSONValue) -> JSONValue {
        guard let swap else { return payload }
        return payload.replacingStrings(swap.live, with: swap.recorded)
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
            // Pacing: the recorded time, scaled; a pause longer than `maxGap` is cut, and the rest moves with it.
            if options.speed > 0 {
                var due = started + Int64(Double(exchange.call.time - origin) / options.speed) - shift
                if let cap = options.maxGap, let last = lastSentAt, due - last > micros(cap) {
                    shift += due - last - micros(cap)
                    due = last + micros(cap)
                }
                if now < due { return [.wait(until: due)] }
            }
            lastSentAt = now
            guard case .call(let recorded) = exchange.call.frame else { return advance() }
            let id = makeID()
            let frame = RPCFrame.call(.init(messageID: id, action: recorded.action, payload: prepare(recorded.payload)))
            inFlight = (id, nextOurs, now, now + micros(options.answerTimeout))
            nextOurs += 1
            judgeOurs(frame)
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
        add(
            ExchangeOutcome(
                name: name(exchange, ours: true),
                action: exchange.action,
                answer: .none,
                mismatches: [
                    Mismatch(action: exchange.action, path: "", expected: "an answer", got: got, kind: .unanswered)
                ]
            )
        )
        inFlight = nil
    }

    private mutating func giveUp(_ which: (Exchange) -> Bool) {
        for index in theirs.indices where !theirs[index].done && which(theirs[index]) {
            theirs[index].done = true
            add(
                ExchangeOutcome(
                    name: name(theirs[index], ours: false),
                    action: theirs[index].action,
                    answer: .none,
                    mismatches: [
                        Mismatch(
                            action: theirs[index].action,
                            path: "",
                            expected: "this CALL from the peer",
                            got: "none within \(Int(options.expectTimeout)) s",
                            kind: .missingCall
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
