import OCPP

/// What the relay must remember about a 1.6 charger on a 2.0.1 backend, across connections and restarts: the
/// state of ``ForwardRules``, part of ``ChargerState`` (its members at the stored state's top level, where earlier
/// relays wrote them). Codable with stable keys: a relay upgraded in the middle of a transaction reads the state an
/// older one wrote.
public struct ForwardState: Codable, Sendable, Equatable {
    /// The last 1.6 transaction number handed out (positive 32-bit, per charger).
    public var lastTransactionNumber: Int32 = 0
    /// Open transactions and the most recently ended ones.
    public var transactions: [Transaction] = []
    /// RequestStartTransactions the charger accepted and has not started yet.
    public var pendingRemoteStarts: [RemoteStart] = []
    /// Token types the backend used for tokens (remote start, local list, reservation).
    public var tokenTypes: [String: String] = [:]
    /// The last 1.6 status of each connector ("1": "Charging").
    public var connectorStatus: [String: String] = [:]
    /// requestId of the GetLog that the current diagnostics upload belongs to.
    public var logRequestId: Int?
    /// requestId of the UpdateFirmware that the current firmware update belongs to.
    public var firmwareRequestId: Int?
    /// Whether the backend accepted the charger's BootNotification.
    public var bootAccepted = false
    /// The reason the next BootNotification will carry (set by a forwarded Reset, TriggerMessage, UpdateFirmware).
    public var nextBootReason: String?
    /// A Reset(OnIdle) waiting for the last transaction to end: the 1.6 reset type to send.
    public var scheduledReset: String?
    /// The 1.6 errorCode each connector reports, while it is not NoError ("1": "GroundFailure").
    public var connectorErrors: [String: String] = [:]
    /// The last NotifyEvent eventId the relay used.
    public var lastEventId = 0
    /// Charging profiles the backend installed through the relay and the charger accepted (2.0.1 form),
    /// for GetChargingProfiles, which 1.6 cannot answer.
    public var chargingProfiles: [InstalledProfile] = []
    /// Reservations the charger accepted, until they are used, cancelled, expire or are removed.
    public var reservations: [Reservation] = []

    /// A charging profile on an EVSE.
    public struct InstalledProfile: Codable, Sendable, Equatable {
        public var evseId: Int
        public var profile: JSONValue
    }

    /// A reservation of a 1.6 connector (0: any).
    public struct Reservation: Codable, Sendable, Equatable {
        public var id: Int
        public var connector: Int
        /// The backend's expiryDateTime (RFC 3339).
        public var expiry: String
    }

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case lastTransactionNumber, transactions, pendingRemoteStarts, tokenTypes, connectorStatus, logRequestId
        case firmwareRequestId, bootAccepted, nextBootReason, scheduledReset, connectorErrors, lastEventId
        case chargingProfiles, reservations
    }

    /// Missing members take their defaults, so a state written by an older relay still reads.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lastTransactionNumber = try c.decodeIfPresent(Int32.self, forKey: .lastTransactionNumber) ?? 0
        transactions = try c.decodeIfPresent([Transaction].self, forKey: .transactions) ?? []
        pendingRemoteStarts = try c.decodeIfPresent([RemoteStart].self, forKey: .pendingRemoteStarts) ?? []
        tokenTypes = try c.decodeIfPresent([String: String].self, forKey: .tokenTypes) ?? [:]
        connectorStatus = try c.decodeIfPresent([String: String].self, forKey: .connectorStatus) ?? [:]
        logRequestId = try c.decodeIfPresent(Int.self, forKey: .logRequestId)
        firmwareRequestId = try c.decodeIfPresent(Int.self, forKey: .firmwareRequestId)
        bootAccepted = try c.decodeIfPresent(Bool.self, forKey: .bootAccepted) ?? false
        nextBootReason = try c.decodeIfPresent(String.self, forKey: .nextBootReason)
        scheduledReset = try c.decodeIfPresent(String.self, forKey: .scheduledReset)
        connectorErrors = try c.decodeIfPresent([String: String].self, forKey: .connectorErrors) ?? [:]
        lastEventId = try c.decodeIfPresent(Int.self, forKey: .lastEventId) ?? 0
        chargingProfiles = try c.decodeIfPresent([InstalledProfile].self, forKey: .chargingProfiles) ?? []
        reservations = try c.decodeIfPresent([Reservation].self, forKey: .reservations) ?? []
    }

    /// One transaction: the 1.6 number the charger uses and the 2.0.1 id the backend uses.
    public struct Transaction: Codable, Sendable, Equatable {
        public var number: Int32
        public var id: String
        public var connector: Int
        public var evseId: Int
        public var connectorId: Int
        public var idTag: String?
        public var tokenType: String?
        public var remoteStartId: Int?
        public var chargingState: String?
        /// The next seqNo of this transaction's events (0 at start, as the 2.0.1 spec recommends).
        public var nextSeqNo: Int
        public var ended: Bool
        /// seqNos below this may have been sent: a stored state resumes here. Events that change nothing else
        /// (MeterValues in a transaction) reserve ``seqNoBlock`` at a time, so that they cost one write per block,
        /// and a relay that died inside a block skips the rest of it (the backend still sees seqNo increase).
        public var seqNoReserved: Int

        /// How many seqNos one write reserves.
        public static let seqNoBlock = 64

        public init(
            number: Int32,
            id: String,
            connector: Int,
            evseId: Int,
            connectorId: Int,
            idTag: String?,
            tokenType: String?,
            remoteStartId: Int?,
            chargingState: String?,
            nextSeqNo: Int = 0,
            ended: Bool = false,
            seqNoReserved: Int = 0
        ) {
            self.number = number
            self.id = id
            self.connector = connector
            self.evseId = evseId
            self.connectorId = connectorId
            self.idTag = idTag
            self.tokenType = tokenType
            self.remoteStartId = remoteStartId
            self.chargingState = chargingState
            self.nextSeqNo = nextSeqNo
            self.ended = ended
            self.seqNoReserved = seqNoReserved
        }

        private enum CodingKeys: String, CodingKey {
            case number, id, connector, evseId, connectorId, idTag, tokenType, remoteStartId, chargingState
            case nextSeqNo, ended, seqNoReserved
        }

        /// A stored transaction resumes at its reserved seqNo (a state written before reservations existed, at
        /// its stored one).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            number = try c.decode(Int32.self, forKey: .number)
            id = try c.decode(String.self, forKey: .id)
            connector = try c.decode(Int.self, forKey: .connector)
            evseId = try c.decode(Int.self, forKey: .evseId)
            connectorId = try c.decode(Int.self, forKey: .connectorId)
            idTag = try c.decodeIfPresent(String.self, forKey: .idTag)
            tokenType = try c.decodeIfPresent(String.self, forKey: .tokenType)
            remoteStartId = try c.decodeIfPresent(Int.self, forKey: .remoteStartId)
            chargingState = try c.decodeIfPresent(String.self, forKey: .chargingState)
            ended = try c.decode(Bool.self, forKey: .ended)
            let stored = try c.decode(Int.self, forKey: .nextSeqNo)
            seqNoReserved = try c.decodeIfPresent(Int.self, forKey: .seqNoReserved) ?? stored
            nextSeqNo = max(stored, seqNoReserved)
        }

        /// Takes the next seqNo; `true` when it needed a new reservation (the state must be written).
        mutating func takeSeqNo() -> (seqNo: Int, reserved: Bool) {
            let seqNo = nextSeqNo
            nextSeqNo += 1
            guard nextSeqNo > seqNoReserved else { return (seqNo, false) }
            seqNoReserved = nextSeqNo + Self.seqNoBlock
            return (seqNo, true)
        }
    }

    /// A remote start the backend requested.
    public struct RemoteStart: Codable, Sendable, Equatable {
        public var remoteStartId: Int
        public var idTag: String
        public var tokenType: String
        /// The 1.6 connector, if the backend named an EVSE.
        public var connector: Int?
    }

    /// How many ended transactions are kept (late StopTransaction retries, RequestStop of an ended one).
    static let endedTransactionsKept = 20

    /// The open transaction on a 1.6 connector.
    public func openTransaction(onConnector connector: Int) -> Transaction? {
        transactions.last { !$0.ended && $0.connector == connector }
    }

    /// The transaction with a 1.6 number.
    public func transaction(number: Int32) -> Transaction? {
        transactions.last { $0.number == number }
    }

    /// The transaction with a 2.0.1 id.
    public func transaction(id: String) -> Transaction? {
        transactions.last { $0.id == id }
    }

    mutating func update(_ transaction: Transaction) {
        if let index = transactions.lastIndex(where: { $0.id == transaction.id }) {
            transactions[index] = transaction
        } else {
            transactions.append(transaction)
        }
        let ended = transactions.filter(\.ended)
        if ended.count > Self.endedTransactionsKept, let oldest = ended.first {
            transactions.removeAll { $0.id == oldest.id }
        }
    }

    mutating func nextTransactionNumber() -> Int32 {
        lastTransactionNumber = lastTransactionNumber == Int32.max ? 1 : lastTransactionNumber + 1
        return lastTransactionNumber
    }
}
