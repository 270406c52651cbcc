import OCPP

/// One side of a fixture made ready to replay: its frames parsed once, each CALL paired with its recorded answer,
/// split into the CALLs the replayer sends and those it expects. A load test's chargers share one script (its
/// payload trees are shared too: a charger copies only what it marks done).
public struct ReplayScript: Sendable {
    /// The subprotocol of the replayed leg (`ocpp1.6`).
    public let subprotocol: String
    /// The identity the fixture was recorded with.
    public let charger: String
    let ours: [ReplaySession.Exchange]
    let theirs: [ReplaySession.Exchange]

    public init(_ fixture: Fixture, role: ReplayRole, leg: String) throws(FixtureError) {
        let entries = fixture.entries.filter { $0.leg == leg && $0.text != nil }
        guard let firstVersion = entries.first?.version else {
            throw FixtureError("the fixture has no frames on the \(leg) leg")
        }
        subprotocol = "ocpp" + firstVersion
        charger = fixture.header.charger
        // Which recorded frames were sent by the side the replayer plays.
        let oursDirection: String
        switch (role, leg) {
        case (.charger, "charger"), (.backend, "upstream"): oursDirection = "in"
        default: oursDirection = "out"
        }
        var steps: [(step: ReplaySession.Step, isOurs: Bool)] = []
        for (index, entry) in entries.enumerated() {
            guard let text = entry.text, let frame = try? RPCFrame.parse(text) else {
                throw FixtureError("entry \(index + 1) on the \(leg) leg is not an OCPP frame; it cannot be replayed")
            }
            guard let micros = RFC3339.parse(entry.time)?.micros else {
                throw FixtureError("entry \(index + 1) has a bad time")
            }
            steps.append(
                (ReplaySession.Step(index: index, time: micros, frame: frame), entry.direction == oursDirection)
            )
        }
        // Each CALL's answer is the first later answer with its message id from the other side: found from the end,
        // so that the latest CALL with a reused id gets the answer right after it.
        var answers: [String: ReplaySession.Step] = [:]
        var pairs: [(ReplaySession.Exchange, Bool)] = []
        for (step, isOurs) in steps.reversed() {
            let key = "\(isOurs ? "o" : "t") \(step.frame.messageID)"
            guard case .call(let call) = step.frame else {
                if step.frame.action == nil { answers[key] = step }
                continue
            }
            let answerKey = "\(isOurs ? "t" : "o") \(step.frame.messageID)"
            pairs.append((ReplaySession.Exchange(call: step, action: call.action, answer: answers[answerKey]), isOurs))
        }
        pairs.reverse()
        ours = pairs.filter { $0.1 }.map(\.0)
        theirs = pairs.filter { !$0.1 }.map(\.0)
    }
}
