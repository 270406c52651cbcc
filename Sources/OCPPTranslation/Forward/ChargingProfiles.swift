import OCPP

extension ForwardRules {
    /// 2.0.1 `ChargingProfileType` → 1.6 `ChargingProfile`.
    func chargingProfile16(
        _ profile: JSONValue,
        action: String,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) -> JSONValue {
        guard let purpose = profile["chargingProfilePurpose"]?.stringValue else {
            throw Untranslatable(message: "chargingProfilePurpose is required")
        }
        guard let purpose16 = tables.enumMap(.chargingProfilePurpose201To16).map(purpose) else {
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
                io.note(.lossy, action, "phaseToUse has no 1.6 field")
            }
            periods.append(
                .object(omittingNil: [
                    "startPeriod": period["startPeriod"], "limit": period["limit"],
                    "numberPhases": period["numberPhases"],
                ])
            )
        }
        if schedule["salesTariff"] != nil {
            io.note(.lossy, action, "salesTariff has no 1.6 field")
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

    mutating func setChargingProfile(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let evseId = call.payload["evseId"]?.intValue, let profile = call.payload["chargingProfile"] else {
            throw Untranslatable(message: "evseId and chargingProfile are required")
        }
        let profile16: JSONValue
        do throws(Untranslatable) {
            profile16 = try chargingProfile16(profile, action: call.action, &io)
        } catch {
            answer(call, status: "Rejected", reason: error.reasonCode, info: error.message, &io)
            return
        }
        let payload = JSONValue.object([
            (key: "connectorId", value: .int(tables.topology.connector(evseId: evseId, connectorId: nil))),
            (key: "csChargingProfiles", value: profile16),
        ])
        io.toCharger(call, as: "SetChargingProfile", payload, .setChargingProfile(evseId: evseId, profile: profile))
    }

    mutating func clearChargingProfile(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        let p = call.payload
        var payload = JSONValue.object(omittingNil: ["id": p["chargingProfileId"]])
        if let criteria = p["chargingProfileCriteria"] {
            if let evseId = criteria["evseId"]?.intValue {
                payload.set("connectorId", .int(tables.topology.connector(evseId: evseId, connectorId: nil)))
            }
            if let purpose = criteria["chargingProfilePurpose"]?.stringValue {
                guard let purpose16 = tables.enumMap(.chargingProfilePurpose201To16).map(purpose) else {
                    answer(
                        call,
                        status: "Unknown",
                        reason: "UnsupportedPurpose",
                        info: "\(purpose) profiles do not exist in OCPP 1.6",
                        &io
                    )
                    return
                }
                payload.set("chargingProfilePurpose", .string(purpose16))
            }
            payload.set("stackLevel", criteria["stackLevel"])
        }
        io.toCharger(call, as: "ClearChargingProfile", payload, .clearChargingProfile(request: p))
    }

    /// Whether an installed profile matches ClearChargingProfile's id or criteria.
    static func matches(_ installed: ForwardState.InstalledProfile, clear request: JSONValue) -> Bool {
        if let id = request["chargingProfileId"] { return installed.profile["id"] == id }
        let criteria = request["chargingProfileCriteria"] ?? .object([])
        if let evseId = criteria["evseId"]?.intValue, evseId != installed.evseId { return false }
        if let purpose = criteria["chargingProfilePurpose"], purpose != installed.profile["chargingProfilePurpose"] {
            return false
        }
        if let level = criteria["stackLevel"], level != installed.profile["stackLevel"] { return false }
        return true
    }

    /// GetChargingProfiles, which 1.6 has not: answered from the profiles installed through the relay,
    /// reported with ReportChargingProfiles per EVSE.
    mutating func getChargingProfiles(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let requestId = call.payload["requestId"]?.intValue, let criteria = call.payload["chargingProfile"] else {
            throw Untranslatable(message: "requestId and chargingProfile are required")
        }
        let evseFilter = call.payload["evseId"]?.intValue
        let ids = criteria["chargingProfileId"]?.arrayValue
        let matching = state.chargingProfiles.filter { installed in
            if let evseFilter, installed.evseId != evseFilter { return false }
            if let purpose = criteria["chargingProfilePurpose"], purpose != installed.profile["chargingProfilePurpose"]
            {
                return false
            }
            if let level = criteria["stackLevel"], level != installed.profile["stackLevel"] { return false }
            if let ids, let id = installed.profile["id"], !ids.contains(id) { return false }
            if criteria["chargingLimitSource"]?.arrayValue.map({ !$0.contains(.string("CSO")) }) == true {
                return false
            }
            return true
        }
        guard !matching.isEmpty else {
            answer(call, status: "NoProfiles", &io)
            return
        }
        answer(call, status: "Accepted", &io)
        let evses = Array(Set(matching.map(\.evseId))).sorted()
        for (index, evseId) in evses.enumerated() {
            let payload = JSONValue.object([
                (key: "requestId", value: .int(requestId)),
                (key: "chargingLimitSource", value: .string("CSO")),
                (key: "chargingProfile", value: .array(matching.filter { $0.evseId == evseId }.map(\.profile))),
                (key: "tbc", value: .bool(index < evses.count - 1)),
                (key: "evseId", value: .int(evseId)),
            ])
            io.sendUpstream("ReportChargingProfiles", payload, .relay)
        }
    }
}
