/// The start of an RPC frame, read without parsing the JSON: its message type, a hash of its message id, and for
/// a CALL the action, when it is one OCPP 1.6 or 2.0.1 defines. Cheap enough for every frame the relay forwards
/// (metrics, call timing); anything unusual (escapes in the id or action, odd spacing is fine) yields `nil` rather
/// than a guess.
public struct RPCFrameHeader: Sendable, Equatable {
    /// 2 CALL, 3 CALLRESULT, 4 CALLERROR.
    public var messageType: UInt8
    /// FNV-1a of the message id's bytes: matches a result to its call without keeping the id.
    public var messageIDHash: UInt64
    /// For a CALL: the index of its action in ``OCPPAction/all``; `nil` for results and unknown actions.
    public var action: Int?

    public init(messageType: UInt8, messageIDHash: UInt64, action: Int?) {
        self.messageType = messageType
        self.messageIDHash = messageIDHash
        self.action = action
    }

    /// Reads the header of `bytes` (a frame's text).
    public static func scan(_ bytes: UnsafeRawBufferPointer) -> RPCFrameHeader? {
        var i = 0
        let n = bytes.count
        func skipSpace() {
            while i < n, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }
        func expect(_ byte: UInt8) -> Bool {
            skipSpace()
            guard i < n, bytes[i] == byte else { return false }
            i += 1
            return true
        }
        /// A JSON string without escapes: its bytes' range.
        func string() -> Range<Int>? {
            guard expect(UInt8(ascii: "\"")) else { return nil }
            let start = i
            while i < n, bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] == UInt8(ascii: "\\") { return nil }
                i += 1
            }
            guard i < n else { return nil }
            defer { i += 1 }
            return start..<i
        }
        guard expect(UInt8(ascii: "[")) else { return nil }
        skipSpace()
        guard i < n, (2...4).contains(bytes[i] &- 0x30) else { return nil }
        let type = bytes[i] - 0x30
        i += 1
        guard expect(UInt8(ascii: ",")), let id = string() else { return nil }
        let hash = messageIDHash(of: UnsafeRawBufferPointer(rebasing: bytes[id]))
        var action: Int?
        if type == 2 {
            guard expect(UInt8(ascii: ",")), let name = string() else { return nil }
            action = OCPPAction.index(of: UnsafeRawBufferPointer(rebasing: bytes[name]))
        }
        return RPCFrameHeader(messageType: type, messageIDHash: hash, action: action)
    }

    /// FNV-1a of a message id's bytes (as ``scan(_:)`` computes it for an id without escapes).
    public static func messageIDHash(of id: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}

/// The actions of OCPP 1.6 (with the security extension) and 2.0.1: the bounded set of names metrics may use as
/// labels (a peer's invented action must not create a time series).
public enum OCPPAction {
    public static let all: [String] = [
        "Authorize", "BootNotification", "CancelReservation", "CertificateSigned", "ChangeAvailability",
        "ChangeConfiguration", "ClearCache", "ClearChargingProfile", "ClearDisplayMessage", "ClearVariableMonitoring",
        "ClearedChargingLimit", "CostUpdated", "CustomerInformation", "DataTransfer", "DeleteCertificate",
        "DiagnosticsStatusNotification", "ExtendedTriggerMessage", "FirmwareStatusNotification",
        "Get15118EVCertificate", "GetBaseReport", "GetCertificateStatus", "GetChargingProfiles",
        "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics", "GetDisplayMessages",
        "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetReport",
        "GetTransactionStatus", "GetVariables", "Heartbeat", "InstallCertificate", "LogStatusNotification",
        "MeterValues", "NotifyChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages",
        "NotifyEVChargingNeeds", "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
        "PublishFirmware", "PublishFirmwareStatusNotification", "RemoteStartTransaction", "RemoteStopTransaction",
        "ReportChargingProfiles", "RequestStartTransaction", "RequestStopTransaction", "ReservationStatusUpdate",
        "ReserveNow", "Reset", "SecurityEventNotification", "SendLocalList", "SetChargingProfile",
        "SetDisplayMessage", "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile", "SetVariableMonitoring",
        "SetVariables", "SignCertificate", "SignedFirmwareStatusNotification", "SignedUpdateFirmware",
        "StartTransaction", "StatusNotification", "StopTransaction", "TransactionEvent", "TriggerMessage",
        "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
    ]

    /// Actions by length, then bytes: found without making a String of the candidate.
    private static let byLength: [Int: [(bytes: [UInt8], index: Int)]] = {
        var table: [Int: [(bytes: [UInt8], index: Int)]] = [:]
        for (index, name) in all.enumerated() { table[name.utf8.count, default: []].append((Array(name.utf8), index)) }
        return table
    }()

    /// The index in ``all`` of the action spelled by `bytes`, if OCPP defines it.
    public static func index(of bytes: UnsafeRawBufferPointer) -> Int? {
        guard let candidates = byLength[bytes.count] else { return nil }
        for candidate in candidates where candidate.bytes.elementsEqual(bytes) { return candidate.index }
        return nil
    }
}
