import OCPP

extension TranslationSession {
    /// 2.0.1 `ChargingProfileType` → 1.6 `ChargingProfile`.
    func chargingProfile16(
        _ profile: JSONValue,
        action: String,
        _ out: inout [TranslationOutput]
    ) throws(Untranslatable) -> JSONValue {
        guard let purpose = profile["chargingProfilePurpose"]?.stringValue else {
            throw Untranslatable(message: "chargingProfilePurpose is required")
        }
        guard let purpose16 = tables.enumMap("charging_profile_purpose_201_to_16").map(purpose) else {
            throw Untranslatable(
                message: "\(purpose) profiles do not exist in OCPP 1.6",
                reasonCode: "UnsupportedPurpose"
            )
        }
        guard let schedules = profile["chargingSchedule"]?.arrayValue, let schedule = schedules.first else {
            throw Untranslatable(message: "chargingSchedule is required")
        }
        if schedules.count > 1 {
            throw Untranslatable(
                message: "a 1.6 profile holds one schedule; this one has \(schedules.count)",
                reasonCode: "TooManySchedules"
            )
        }
        var periods: [JSONValue] = []
        for period in schedule["chargingSchedulePeriod"]?.arrayValue ?? [] {
            if period["phaseToUse"] != nil {
                out.append(.diagnostic(.init(kind: .lossy, action: action, message: "phaseToUse has no 1.6 field")))
            }
            periods.append(
                .object(omittingNil: [
                    "startPeriod": period["startPeriod"], "limit": period["limit"],
                    "numberPhases": period["numberPhases"],
                ])
            )
        }
        if schedule["salesTariff"] != nil {
            out.append(.diagnostic(.init(kind: .lossy, action: action, message: "salesTariff has no 1.6 field")))
        }
        var transactionNumber: JSONValue?
        if let id = profile["transactionId"]?.stringValue {
            guard let transaction = state.transaction(id: id) else {
                throw Untranslatable(message: "transaction \(id) is unknown", reasonCode: "UnknownTransaction")
            }
            transactionNumber = .number(String(transaction.number))
        }
        let schedule16 = JSONValue.object(omittingNil: [
            "duration": schedule["duration"], "startSchedule": schedule["startSchedule"],
            "chargingRateUnit": schedule["chargingRateUnit"], "chargingSchedulePeriod": .array(periods),
            "minChargingRate": schedule["minChargingRate"],
        ])
        return .object(omittingNil: [
            "chargingProfileId": profile["id"], "transactionId": transactionNumber, "stackLevel": profile["stackLevel"],
            "chargingProfilePurpose": .string(purpose16), "chargingProfileKind": profile["chargingProfileKind"],
            "recurrencyKind": profile["recurrencyKind"], "validFrom": profile["validFrom"],
            "validTo": profile["validTo"],
            "chargingSchedule": schedule16,
        ])
    }

    mutating func setChargingProfile(_ call: RPCFrame.Call, _ out: inout [TranslationOutput]) throws(Untranslatable) {
        guard let evseId = call.payload["evseId"]?.intValue, let profile = call.payload["chargingProfile"] else {
            throw Untranslatable(message: "evseId and chargingProfile are required")
        }
        let profile16: JSONValue
        do throws(Untranslatable) {
            profile16 = try chargingProfile16(profile, action: call.action, &out)
        } catch {
            answer(call, status: "Rejected", reason: error.reasonCode, info: error.message, &out)
            return
        }
        let payload = JSONValue.object([
            (key: "connectorId", value: .int(tables.topology.connector(evseId: evseId, connectorId: nil))),
            (key: "csChargingProfiles", value: profile16),
        ])
        toCharger(call, "SetChargingProfile", payload, .statusMap("set_charging_profile_status_16_to_201"), &out)
    }
}
