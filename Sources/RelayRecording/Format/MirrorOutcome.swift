/// How one charger message fared on a mirror: its answer compared with the primary's, or why there was none.
///
/// Every message sent (or meant) for a mirror ends in one outcome, so a recording alone gives the cutover
/// report (`ocpp-relay mirrors report`): messages, matched, diverged, unanswered and dropped per mirror and action.
public struct MirrorOutcome: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// The mirror's answer equals the primary's under the comparison rules.
        case matched
        /// It differs: ``MirrorOutcome/differences`` says where.
        case diverged
        /// No answer within `timeouts.call` (or the mirror's leg went before it answered).
        case unanswered
        /// Not sent: the mirror was unreachable and its queue was full.
        case dropped
    }

    /// One differing value, in the charger's terms (`idTagInfo.status`; empty for the message as a whole).
    public struct Difference: Sendable, Hashable, Codable {
        public var path: String
        public var primary: String
        public var mirror: String

        public init(path: String, primary: String, mirror: String) {
            self.path = path
            self.primary = primary
            self.mirror = mirror
        }
    }

    public var connection: UInt64
    public var time: UInt64
    public var mirror: String
    /// The charger's action (`Authorize`), in the charger's OCPP version.
    public var action: String
    public var kind: Kind
    /// The charger's message id.
    public var messageID: String
    public var differences: [Difference]

    public init(
        connection: UInt64,
        time: UInt64,
        mirror: String,
        action: String,
        kind: Kind,
        messageID: String,
        differences: [Difference] = []
    ) {
        self.connection = connection
        self.time = time
        self.mirror = mirror
        self.action = action
        self.kind = kind
        self.messageID = messageID
        self.differences = differences
    }
}
