/// The stateful steps written in Swift that an entry of `messages.yaml` may name (`transform:`), one type per
/// direction: the name is checked when the tables load, and the translator switches over the cases exhaustively.
public enum Transform: Sendable, Hashable, CustomStringConvertible {
    case charger(ChargerTransform)
    case backend(BackendTransform)

    /// The name as the tables write it.
    public var description: String {
        switch self {
        case .charger(let transform): transform.rawValue
        case .backend(let transform): transform.rawValue
        }
    }

    /// Whether the relay answers the message itself, so that the entry names no message on the other side.
    public var isLocal: Bool {
        switch self {
        case .charger: false
        case .backend(let transform): transform == .getTransactionStatus || transform == .getChargingProfiles
        }
    }
}

/// Steps for messages from a 1.6 charger.
public enum ChargerTransform: String, Sendable, Hashable, CaseIterable {
    case bootNotification, statusNotification, authorize, startTransaction, stopTransaction, meterValues
    case diagnosticsStatusNotification, firmwareStatusNotification
}

/// Steps for messages from a 2.0.1 backend.
public enum BackendTransform: String, Sendable, Hashable, CaseIterable {
    case requestStartTransaction, requestStopTransaction, reset, changeAvailability, unlockConnector, triggerMessage
    case getVariables, setVariables, getBaseReport, setChargingProfile, getCompositeSchedule, sendLocalList, getLog
    case updateFirmware, getTransactionStatus, clearChargingProfile, getChargingProfiles
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
}
