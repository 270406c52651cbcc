import OCPP

/// What the schema of its version says of one frame.
public enum FrameVerdict: Sendable, Hashable {
    case valid
    /// Breaks the schema (the violations, at least one, in document order).
    case invalid([SchemaViolation])
    /// Not an OCPP RPC frame: not JSON, or not an array of a message type's shape.
    case malformed(String)
    /// Nothing to judge it by: a CALL of an action the version does not define, an answer to a call that was not
    /// seen, or a CALLERROR (its payload is free-form details).
    case unjudged(String)

    public var isInvalid: Bool {
        switch self {
        case .invalid, .malformed: true
        case .valid, .unjudged: false
        }
    }

    /// Why it is invalid, one line each (empty when it is not).
    public var reasons: [String] {
        switch self {
        case .invalid(let violations): violations.map(\.description)
        case .malformed(let why): [why]
        case .valid, .unjudged: []
        }
    }

    /// The reasons with array positions left out (`meterValue[].sampledValue[].value …`), so that the same fault
    /// counts as one however many elements it is found in.
    public var reasonKinds: [String] {
        reasons.map { reason in
            var kind = ""
            var inIndex = false
            for character in reason {
                if character == "[" {
                    inIndex = true
                    kind.append("[")
                } else if character == "]" {
                    inIndex = false
                    kind.append("]")
                } else if !inIndex {
                    kind.append(character)
                }
            }
            return kind
        }
    }
}

/// Judges the frames of one conversation (two peers on one leg, one OCPP version) against the version's schema: a
/// CALL against its action's request, a CALLRESULT against the response of the call it answers. Pure; it remembers
/// the action of each call until its answer.
public struct FrameJudge: Sendable {
    /// Which peer of the conversation sent a frame.
    public enum Sender: Sendable, Hashable {
        case charger
        case server
    }

    public struct Judged: Sendable, Hashable {
        /// 2 CALL, 3 CALLRESULT, 4 CALLERROR, 5 CALLRESULTERROR, 6 SEND; 0 for a malformed frame.
        public var messageType: Int
        /// The CALL's action, or the action of the call an answer answers, when known.
        public var action: String?
        public var messageID: String?
        public var verdict: FrameVerdict
    }

    public let version: OCPPVersion
    private let facts: SchemaFacts
    /// The action of each call waiting for its answer, by its message id's hash: the charger's calls, the server's.
    private var chargerCalls: [UInt64: String] = [:]
    private var serverCalls: [UInt64: String] = [:]
    /// At most this many calls are remembered per sender (a peer that never answers must not grow the judge).
    private static let remembered = 64

    public init(version: OCPPVersion) {
        self.version = version
        self.facts = SchemaFacts.of(version)
    }

    /// Judges `bytes`, a frame's text sent by `sender`.
    public mutating func judge(_ bytes: some Collection<UInt8>, from sender: Sender) -> Judged {
        if let judged = bytes.withContiguousStorageIfAvailable({ judgeConforming($0, from: sender) }) ?? nil {
            return judged
        }
        let frame: RPCFrame
        do {
            frame = try RPCFrame.parse(bytes)
        } catch {
            return Judged(messageType: 0, action: nil, messageID: nil, verdict: .malformed("\(error)"))
        }
        return judge(frame, from: sender)
    }

    /// Learns from a frame's header alone what a frame that is not judged teaches (a call's action, until its
    /// answer); false when the header cannot say (an action this table of headers does not know), and the frame must
    /// be judged whole.
    public mutating func note(_ header: RPCFrameHeader, from sender: Sender) -> Bool {
        let other: Sender = sender == .charger ? .server : .charger
        switch header.messageType {
        case 2:
            guard let action = header.action else { return false }
            remember(OCPPAction.all[action], header.messageIDHash, from: sender)
        default:
            _ = withCalls(of: other) { $0.removeValue(forKey: header.messageIDHash) }
        }
        return true
    }

    /// The judgement of a CALL, SEND or CALLRESULT that keeps its schema, read from its bytes without a tree
    /// (``ConformanceScan``); nil when the frame must be judged the long way (``judge(_:from:)-(RPCFrame,_)``), which
    /// it then has not taught anything.
    public mutating func judgeConforming(_ bytes: UnsafeBufferPointer<UInt8>, from sender: Sender) -> Judged? {
        let compiled = facts.compiled
        var scan = ConformanceScan(bytes, schema: compiled.tables)
        guard let envelope = scan.envelope() else { return nil }
        let id = scan.slice(envelope.messageID)
        let hash = RPCFrameHeader.messageIDHash(of: id)
        let other: Sender = sender == .charger ? .server : .charger
        let action: String
        let schema: SchemaNode?
        if let name = envelope.action.map(scan.slice) {
            action =
                OCPPAction.index(of: UnsafeRawBufferPointer(name)).map { OCPPAction.all[$0] }
                ?? String(decoding: name, as: UTF8.self)
            schema = facts.request(action)
        } else {
            guard let known = calls(of: other)[hash] else { return nil }
            action = known
            schema = facts.response(action)
        }
        guard let schema, let node = compiled.index(of: schema), scan.payloadConforms(to: node) else { return nil }
        switch envelope.messageType {
        case 2: remember(action, hash, from: sender)
        case 3: _ = withCalls(of: other) { $0.removeValue(forKey: hash) }
        default: break
        }
        return Judged(
            messageType: Int(envelope.messageType),
            action: action,
            messageID: String(decoding: id, as: UTF8.self),
            verdict: .valid
        )
    }

    public mutating func judge(_ frame: RPCFrame, from sender: Sender) -> Judged {
        let other: Sender = sender == .charger ? .server : .charger
        switch frame {
        case .call(let call), .send(let call):
            let type = if case .send = frame { 6 } else { 2 }
            if type == 2 { remember(call.action, RPCFrameHeader.messageIDHash(of: call.messageID.utf8), from: sender) }
            guard let schema = facts.request(call.action) else {
                return Judged(
                    messageType: type,
                    action: call.action,
                    messageID: call.messageID,
                    verdict: .unjudged("\(version.shortName) defines no \(call.action)")
                )
            }
            return Judged(
                messageType: type,
                action: call.action,
                messageID: call.messageID,
                verdict: verdict(schema.violations(in: call.payload))
            )
        case .callResult(let result):
            guard
                let action = withCalls(
                    of: other,
                    { $0.removeValue(forKey: RPCFrameHeader.messageIDHash(of: result.messageID.utf8)) }
                )
            else {
                return Judged(
                    messageType: 3,
                    action: nil,
                    messageID: result.messageID,
                    verdict: .unjudged("answers a call that was not seen")
                )
            }
            guard let schema = facts.response(action) else {
                return Judged(
                    messageType: 3,
                    action: action,
                    messageID: result.messageID,
                    verdict: .unjudged("\(version.shortName) defines no \(action)")
                )
            }
            return Judged(
                messageType: 3,
                action: action,
                messageID: result.messageID,
                verdict: verdict(schema.violations(in: result.payload))
            )
        case .callError(let error), .callResultError(let error):
            let action = withCalls(of: other) {
                $0.removeValue(forKey: RPCFrameHeader.messageIDHash(of: error.messageID.utf8))
            }
            let type = if case .callError = frame { 4 } else { 5 }
            // The code as the version spells it: a 1.6 peer's `FormatViolation` is 2.x's spelling, not 1.6's.
            guard RPCErrorCode.allCases.contains(where: { $0.spelled(for: version) == error.errorCode }) else {
                return Judged(
                    messageType: type,
                    action: action,
                    messageID: error.messageID,
                    verdict: .invalid([
                        SchemaViolation(path: "errorCode", rule: .enumeration)
                    ])
                )
            }
            return Judged(messageType: type, action: action, messageID: error.messageID, verdict: .valid)
        }
    }

    /// Remembers a call until its answer.
    private mutating func remember(_ action: String, _ hash: UInt64, from sender: Sender) {
        withCalls(of: sender) { calls in
            if calls.count >= Self.remembered { calls.removeAll() }
            calls[hash] = action
        }
    }

    private func calls(of sender: Sender) -> [UInt64: String] {
        sender == .charger ? chargerCalls : serverCalls
    }

    /// The calls `sender` made that wait for their answers, changed in place; once none waits, their storage is
    /// freed (an idle charger's judge holds nothing).
    private mutating func withCalls<T>(of sender: Sender, _ body: (inout [UInt64: String]) -> T) -> T {
        switch sender {
        case .charger:
            defer { if chargerCalls.isEmpty { chargerCalls = [:] } }
            return body(&chargerCalls)
        case .server:
            defer { if serverCalls.isEmpty { serverCalls = [:] } }
            return body(&serverCalls)
        }
    }

    private func verdict(_ violations: [SchemaViolation]) -> FrameVerdict {
        violations.isEmpty ? .valid : .invalid(violations)
    }
}

extension SchemaViolation {
    /// The CALLERROR OCPP prescribes for a call that breaks this rule.
    public var callErrorCode: RPCErrorCode {
        switch rule {
        case .type: .typeConstraintViolation
        case .required, .minItems, .maxItems: .occurrenceConstraintViolation
        case .additionalProperty, .format: .formatViolation
        case .maxLength, .enumeration, .minimum, .maximum, .multipleOf: .propertyConstraintViolation
        }
    }
}
