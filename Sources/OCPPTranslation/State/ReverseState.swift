import OCPP

/// What the relay must remember about a 2.0.1 charger on a 1.6 backend, across connections and restarts
/// (`ocpp-mapping.md` §6.5). Part of ``ChargerState``, persisted with it; members missing from a stored state
/// take their defaults.
public struct ReverseState: Codable, Sendable, Equatable {
    /// Whether the backend accepted the charger's last BootNotification.
    public var bootAccepted = false
    /// The charger's last BootNotification in 1.6 form (a backend's TriggerMessage(BootNotification) resends it).
    public var boot: JSONValue?
    /// The charger's transactions, open and recently ended, by their 2.0.1 id.
    public var transactions: [Transaction] = []
    /// Transaction-related 1.6 CALLs the backend has not answered yet, in order: they survive a restart and are
    /// sent again with the same message ids (1.6 asks for chronological delivery; the ids let a backend spot a
    /// repeat).
    public var outbox: [Outgoing] = []
    /// RemoteStartTransactions sent as RequestStartTransaction and not started yet.
    public var remoteStarts: [RemoteStart] = []
    /// The last remoteStartId / requestId the relay minted.
    public var lastRemoteStartId = 0
    public var lastRequestId = 0
    /// requestId of the GetLog made for the backend's GetDiagnostics, and of the UpdateFirmware.
    public var logRequestId: Int?
    public var firmwareRequestId: Int?
    /// The backend's Security Whitepaper GetLog and SignedUpdateFirmware in progress: the requestId the relay gave
    /// the charger and the backend's own (their notifications go back as the Whitepaper's, with the backend's id).
    public var securityLog: RequestIds?
    public var signedFirmware: RequestIds?
    /// The last 2.0.1 connector status per 1.6 connector ("1": "Occupied").
    public var connectorStatus: [String: String] = [:]
    /// The last 1.6 status sent per 1.6 connector ("1": "Charging").
    public var reportedStatus: [String: String] = [:]
    /// The active 1.6 errorCode per 1.6 connector, from NotifyEvent problems ("1": "GroundFailure").
    public var connectorErrors: [String: String] = [:]
    /// The type each idTag had when the charger last presented it.
    public var tokenTypes: [String: String] = [:]
    /// Aliases for tokens over 20 characters: alias → the token.
    public var aliases: [String: Token] = [:]
    /// The type of the last Reset the backend sent (an `ImmediateReset` stop is reported as its reason).
    public var lastReset: String?

    public init() {}

    /// A backend's requestId and the one the relay gave the charger for it.
    public struct RequestIds: Codable, Sendable, Equatable {
        public var relay: Int
        public var backend: Int
    }

    /// A 2.0.1 idToken.
    public struct Token: Codable, Sendable, Equatable {
        public var idToken: String
        public var type: String

        public init(idToken: String, type: String) {
            self.idToken = idToken
            self.type = type
        }
    }

    /// One 2.0.1 transaction and its 1.6 counterpart.
    public struct Transaction: Codable, Sendable, Equatable {
        /// Where the transaction is in 1.6 terms.
        public enum Window: String, Codable, Sendable {
            /// No StartTransaction yet: a token, an EVSE or a meter reading is still missing.
            case none
            /// StartTransaction queued or sent (``number`` once answered).
            case open
            /// StopTransaction queued or sent.
            case closed
        }

        /// The charger's id.
        public var id: String
        /// The backend's id, from StartTransaction.conf; -1 when StartTransaction failed for good.
        public var number: Int?
        public var window: Window = .none
        public var evseId: Int?
        public var connectorId: Int?
        public var idTag: String?
        public var remoteStartId: Int?
        public var reservationId: Int?
        public var meterStart: Int?
        /// The last Energy.Active.Import.Register reading in Wh.
        public var lastRegister: Int?
        public var chargingState: String?
        /// The last seqNo seen (a repeated one is a retry: answered, not forwarded again).
        public var lastSeqNo: Int?
        /// The 2.0.1 transaction ended.
        public var ended = false
        /// The backend's idTagInfo status when it was not Accepted (the charger is told; a late one stops it).
        public var rejected: String?

        public init(id: String) {
            self.id = id
        }
    }

    /// A transaction-related 1.6 CALL waiting for the backend's answer.
    public struct Outgoing: Codable, Sendable, Equatable {
        public var messageID: String
        public var action: String
        public var payload: JSONValue
        /// The 2.0.1 transaction whose 1.6 id goes into the payload's `transactionId` when it is sent.
        public var transaction: String?
    }

    /// A RequestStartTransaction the charger accepted.
    public struct RemoteStart: Codable, Sendable, Equatable {
        public var remoteStartId: Int
        public var idTag: String
        public var connector: Int?
    }

    private enum CodingKeys: String, CodingKey {
        case bootAccepted, boot, transactions, outbox, remoteStarts, lastRemoteStartId, lastRequestId, logRequestId
        case firmwareRequestId, securityLog, signedFirmware, connectorStatus, reportedStatus, connectorErrors,
            tokenTypes, aliases, lastReset
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bootAccepted = try c.decodeIfPresent(Bool.self, forKey: .bootAccepted) ?? false
        boot = try c.decodeIfPresent(JSONValue.self, forKey: .boot)
        transactions = try c.decodeIfPresent([Transaction].self, forKey: .transactions) ?? []
        outbox = try c.decodeIfPresent([Outgoing].self, forKey: .outbox) ?? []
        remoteStarts = try c.decodeIfPresent([RemoteStart].self, forKey: .remoteStarts) ?? []
        lastRemoteStartId = try c.decodeIfPresent(Int.self, forKey: .lastRemoteStartId) ?? 0
        lastRequestId = try c.decodeIfPresent(Int.self, forKey: .lastRequestId) ?? 0
        logRequestId = try c.decodeIfPresent(Int.self, forKey: .logRequestId)
        firmwareRequestId = try c.decodeIfPresent(Int.self, forKey: .firmwareRequestId)
        securityLog = try c.decodeIfPresent(RequestIds.self, forKey: .securityLog)
        signedFirmware = try c.decodeIfPresent(RequestIds.self, forKey: .signedFirmware)
        connectorStatus = try c.decodeIfPresent([String: String].self, forKey: .connectorStatus) ?? [:]
        reportedStatus = try c.decodeIfPresent([String: String].self, forKey: .reportedStatus) ?? [:]
        connectorErrors = try c.decodeIfPresent([String: String].self, forKey: .connectorErrors) ?? [:]
        tokenTypes = try c.decodeIfPresent([String: String].self, forKey: .tokenTypes) ?? [:]
        aliases = try c.decodeIfPresent([String: Token].self, forKey: .aliases) ?? [:]
        lastReset = try c.decodeIfPresent(String.self, forKey: .lastReset)
    }
}
