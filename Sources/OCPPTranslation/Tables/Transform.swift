import OCPP

/// The two message tables: one per translation direction.
public enum MessageTable: Sendable, Hashable {
    /// 1.6 chargers on 2.0.1 backends.
    case forward
    /// 2.0.1 chargers on 1.6 backends.
    case reverse
    /// 2.0.1 on 2.0.1: the rules beside the OCPP 2.1 step when the other peer speaks 2.0.1 (`messages-21-on-201.yaml`
    /// names only what has no 2.0.1 counterpart).
    case same

    public var fileName: String {
        switch self {
        case .forward: "messages.yaml"
        case .reverse: "messages-201-on-16.yaml"
        case .same: StepTable.fileName
        }
    }

    /// The chargers' version and the backends'.
    public var chargerVersion: OCPPVersion { self == .forward ? .v16 : .v201 }
    public var upstreamVersion: OCPPVersion { self == .reverse ? .v16 : .v201 }
}

/// The stateful steps written in Swift that an entry of the message tables may name (`transform:`), one type
/// per table and side: the name is checked when the tables load, and the translator switches over the cases
/// exhaustively.
public enum Transform: Sendable, Hashable, CustomStringConvertible {
    case charger(ChargerTransform)
    case backend(BackendTransform)
    case reverseCharger(ReverseChargerTransform)
    case reverseBackend(ReverseBackendTransform)
    /// The message crosses as itself (2.0.1 on 2.0.1).
    case same

    /// The name as the tables write it.
    public var description: String {
        switch self {
        case .charger(let transform): transform.rawValue
        case .backend(let transform): transform.rawValue
        case .reverseCharger(let transform): transform.rawValue
        case .reverseBackend(let transform): transform.rawValue
        case .same: "same"
        }
    }

    /// The transform of that name for one side of one table.
    init?(_ name: String, table: MessageTable, fromCharger: Bool) {
        switch (table, fromCharger) {
        case (.forward, true): guard let t = ChargerTransform(rawValue: name) else { return nil }; self = .charger(t)
        case (.forward, false): guard let t = BackendTransform(rawValue: name) else { return nil }; self = .backend(t)
        case (.reverse, true):
            guard let t = ReverseChargerTransform(rawValue: name) else { return nil }
            self = .reverseCharger(t)
        case (.reverse, false):
            guard let t = ReverseBackendTransform(rawValue: name) else { return nil }
            self = .reverseBackend(t)
        case (.same, _):
            guard name == "same" else { return nil }
            self = .same
        }
    }

    static func names(table: MessageTable, fromCharger: Bool) -> [String] {
        all(table: table).filter { Transform($0.description, table: table, fromCharger: fromCharger) == $0 }
            .map(\.description)
    }

    /// Every transform of a table.
    static func all(table: MessageTable) -> [Transform] {
        switch table {
        case .forward:
            ChargerTransform.allCases.map(Transform.charger) + BackendTransform.allCases.map(Transform.backend)
        case .reverse:
            ReverseChargerTransform.allCases.map(Transform.reverseCharger)
                + ReverseBackendTransform.allCases.map(Transform.reverseBackend)
        case .same: [.same]
        }
    }

    /// Whether the relay answers the message itself, so that the entry names no message on the other side.
    public var isLocal: Bool {
        switch self {
        case .charger, .reverseCharger, .reverseBackend, .same: false
        case .backend(let transform): transform == .getTransactionStatus || transform == .getChargingProfiles
        }
    }
}

/// Steps for messages from a 1.6 charger.
public enum ChargerTransform: String, Sendable, Hashable, CaseIterable {
    case bootNotification, statusNotification, authorize, startTransaction, stopTransaction, meterValues
    case diagnosticsStatusNotification, firmwareStatusNotification, dataTransfer
}

/// Steps for messages from a 2.0.1 backend.
public enum BackendTransform: String, Sendable, Hashable, CaseIterable {
    case requestStartTransaction, requestStopTransaction, reset, changeAvailability, unlockConnector, triggerMessage
    case getVariables, setVariables, getBaseReport, setChargingProfile, getCompositeSchedule, sendLocalList, getLog
    case updateFirmware, getTransactionStatus, clearChargingProfile, getChargingProfiles
    case certificateSigned, installCertificate, getInstalledCertificateIds, reserveNow, cancelReservation
}

/// Steps for messages from a 2.0.1 charger on a 1.6 backend.
public enum ReverseChargerTransform: String, Sendable, Hashable, CaseIterable {
    case bootNotification, statusNotification, authorize, transactionEvent, meterValues, logStatusNotification
    case firmwareStatusNotification, notifyEvent, securityEventNotification, signCertificate, plugAndCharge
}

/// Steps for messages from a 1.6 backend to a 2.0.1 charger.
public enum ReverseBackendTransform: String, Sendable, Hashable, CaseIterable {
    case remoteStartTransaction, remoteStopTransaction, reset, changeAvailability, unlockConnector, triggerMessage
    case getConfiguration, changeConfiguration, setChargingProfile, clearChargingProfile, getCompositeSchedule
    case reserveNow, sendLocalList, getDiagnostics, updateFirmware, getInstalledCertificateIds, extendedTriggerMessage
    case getLog, signedUpdateFirmware, dataTransfer
}

/// The enum maps of `enums.yaml` that the transforms use by name: each must be in the tables (a load error names
/// the file otherwise), so no value passes through a map that is not there.
public enum EnumMapName: String, Sendable, Hashable, CaseIterable {
    case authorizationStatus201To16 = "authorization_status_201_to_16"
    case changeConfigurationStatus16To201 = "change_configuration_status_16_to_201"
    case chargingProfilePurpose201To16 = "charging_profile_purpose_201_to_16"
    case chargingState16To201 = "charging_state_16_to_201"
    case connectorStatus16To201 = "connector_status_16_to_201"
    case diagnosticsStatus16To201 = "diagnostics_status_16_to_201"
    case errorCode16To201 = "error_code_16_to_201"
    case measurand16To201 = "measurand_16_to_201"
    case meterTriggerReason16To201 = "meter_trigger_reason_16_to_201"
    case resetType201To16 = "reset_type_201_to_16"
    case setChargingProfileStatus16To201 = "set_charging_profile_status_16_to_201"
    case stopTriggerReason16To201 = "stop_trigger_reason_16_to_201"
    case stoppedReason16To201 = "stopped_reason_16_to_201"
    case triggerMessage201To16 = "trigger_message_201_to_16"
    case unit16To201 = "unit_16_to_201"
    case unlockStatus16To201 = "unlock_status_16_to_201"
    case sendLocalListStatus16To201 = "send_local_list_status_16_to_201"
    case chargingState201To16 = "charging_state_201_to_16"
    case stoppedReason201To16 = "stopped_reason_201_to_16"
    case stopTriggerReason201To16 = "stop_trigger_reason_201_to_16"
    case logStatus201To16 = "log_status_201_to_16"
    case firmwareStatus201To16 = "firmware_status_201_to_16"
    case unlockStatus201To16 = "unlock_status_201_to_16"
    case resetType16To201 = "reset_type_16_to_201"
    case resetStatus201To16 = "reset_status_201_to_16"
    case chargingProfilePurpose16To201 = "charging_profile_purpose_16_to_201"
    case setVariableStatus201To16 = "set_variable_status_201_to_16"
    case triggerMessage16To201 = "trigger_message_16_to_201"
    case unit201To16 = "unit_201_to_16"
    case measurand201To16 = "measurand_201_to_16"
    case errorCode201To16 = "error_code_201_to_16"
    case certificateUse201To16 = "certificate_use_201_to_16"
    case certificateUse16To201 = "certificate_use_16_to_201"
    case extendedTrigger201To16 = "extended_trigger_201_to_16"
    case extendedTrigger16To201 = "extended_trigger_16_to_201"
}
