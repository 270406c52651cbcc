import OCPP

/// GetVariables for a 1.6 charger: which results are known already, and which keys to ask for.
struct GetVariablesJob: Sendable {
    /// One entry per requested variable, in order: a finished result, or the key whose value fills it.
    var results: [JSONValue]
    var pendingKeys: [Int: ConfigurationKeyMapping]
}

/// SetVariables for a 1.6 charger: one ChangeConfiguration at a time, results gathered in order.
struct SetVariablesJob: Sendable {
    var upstreamID: String
    var results: [JSONValue]
    /// Entries still to send: index into `results`, the key and the 1.6 value.
    var remaining: [(index: Int, key: String, value: String)]
    var current: Int?
    /// The entry that sets the charger's password, and the password (announced when the charger accepts it).
    var password: (index: Int, value: String)?
}

/// The 2.0.1 device model of a 1.6 charger: GetVariables, SetVariables and reports, backed by
/// GetConfiguration/ChangeConfiguration through `configuration-keys.yaml`.
extension ForwardRules {
    private static func variableResult(
        _ request: JSONValue,
        status: String,
        value: String? = nil,
        statusKey: String = "attributeStatus"
    ) -> JSONValue {
        .object(omittingNil: [
            statusKey: .string(status),
            "attributeType": request["attributeType"],
            "attributeValue": value.map { .string(String($0.prefix(2500))) },
            "component": request["component"] ?? .object([]),
            "variable": request["variable"] ?? .object([]),
        ])
    }

    /// The key behind a requested component/variable, or the status to answer when there is none.
    private func lookup(_ request: JSONValue) -> Result<ConfigurationKeyMapping, UnknownVariable> {
        let component = request.value(at: "component.name")?.stringValue ?? ""
        let variable = request.value(at: "variable.name")?.stringValue ?? ""
        let instance = request.value(at: "variable.instance")?.stringValue
        if let mapping = tables.configurationKey(component: component, variable: variable, instance: instance) {
            return .success(mapping)
        }
        let knownComponent =
            component == tables.legacyComponent || tables.configurationKeys.contains { $0.component == component }
            || tables.syntheticVariables.contains { $0.component == component }
        return .failure(UnknownVariable(status: knownComponent ? "UnknownVariable" : "UnknownComponent"))
    }

    private struct UnknownVariable: Error {
        let status: String
    }

    /// A 1.6 value as 2.0.1 (item by item for lists), or back.
    private static func convert(_ value: String, _ map: [String: String], reverse: Bool) -> String {
        guard !map.isEmpty else { return value }
        let table = reverse ? Dictionary(map.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a }) : map
        return value.split(separator: ",", omittingEmptySubsequences: false)
            .map { item in
                let trimmed = String(item).trimmingSpaces
                return table[trimmed] ?? trimmed
            }
            .joined(separator: ",")
    }

    mutating func getVariables(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        var job = GetVariablesJob(results: [], pendingKeys: [:])
        for request in call.payload["getVariableData"]?.arrayValue ?? [] {
            let index = job.results.count
            if let type = request["attributeType"]?.stringValue, type != "Actual" {
                job.results.append(Self.variableResult(request, status: "NotSupportedAttributeType"))
                continue
            }
            let component = request.value(at: "component.name")?.stringValue
            let variable = request.value(at: "variable.name")?.stringValue
            if let synthetic = tables.syntheticVariables.first(where: {
                $0.component == component && $0.variable == variable
            }) {
                job.results.append(Self.variableResult(request, status: "Accepted", value: synthetic.value))
                continue
            }
            switch lookup(request) {
            case .success(let mapping):
                job.results.append(request)
                job.pendingKeys[index] = mapping
            case .failure(let unknown):
                job.results.append(Self.variableResult(request, status: unknown.status))
            }
        }
        guard !job.pendingKeys.isEmpty else {
            io.reply(to: .upstream, call.messageID, .object([(key: "getVariableResult", value: .array(job.results))]))
            return
        }
        let keys = Set(job.pendingKeys.values.map(\.key)).sorted()
        io.toCharger(
            call,
            as: "GetConfiguration",
            .object([(key: "key", value: .array(keys.map { .string($0) }))]),
            .getVariables(job)
        )
    }

    func finishGetVariables(_ job: GetVariablesJob, _ payload: JSONValue) -> JSONValue {
        var values: [String: String?] = [:]
        for entry in payload["configurationKey"]?.arrayValue ?? [] {
            if let key = entry["key"]?.stringValue { values[key] = .some(entry["value"]?.stringValue) }
        }
        var results = job.results
        for (index, mapping) in job.pendingKeys {
            let request = results[index]
            if let value = values[mapping.key] {
                results[index] = Self.variableResult(
                    request,
                    status: "Accepted",
                    value: value.map { Self.convert($0, mapping.values, reverse: false) }
                )
            } else {
                results[index] = Self.variableResult(request, status: "UnknownVariable")
            }
        }
        return .object([(key: "getVariableResult", value: .array(results))])
    }

    mutating func setVariables(_ call: RPCFrame.Call, _ io: inout Effects<Self>) {
        var job = SetVariablesJob(upstreamID: call.messageID, results: [], remaining: [])
        for request in call.payload["setVariableData"]?.arrayValue ?? [] {
            let index = job.results.count
            job.results.append(Self.variableResult(request, status: "Rejected"))
            if let type = request["attributeType"]?.stringValue, type != "Actual" {
                job.results[index] = Self.variableResult(request, status: "NotSupportedAttributeType")
                continue
            }
            let component = request.value(at: "component.name")?.stringValue
            let variable = request.value(at: "variable.name")?.stringValue
            if tables.syntheticVariables.contains(where: { $0.component == component && $0.variable == variable }) {
                continue  // reported by the relay, read-only: Rejected
            }
            switch lookup(request) {
            case .success(let mapping):
                var value = Self.convert(request["attributeValue"]?.stringValue ?? "", mapping.values, reverse: true)
                if mapping.hexEncoded {
                    switch AuthorizationKey.hex(of: value) {
                    case .success(let hex):
                        job.password = (index, value)
                        value = hex
                    case .failure(let why):
                        io.note(.untranslatable, call.action, "\(mapping.key): \(why.message)")
                        continue
                    }
                }
                if mapping.readOnly || value.count > 500 {
                    io.note(
                        .untranslatable,
                        call.action,
                        "\(mapping.key): \(mapping.readOnly ? "not settable through the relay" : "value longer than 1.6's 500 characters")"
                    )
                    continue
                }
                job.remaining.append((index, mapping.key, value))
            case .failure(let unknown):
                job.results[index] = Self.variableResult(request, status: unknown.status)
            }
        }
        continueSetVariables(job, itemStatus: nil, &io)
    }

    /// Records the result of the ChangeConfiguration in flight and sends the next, or answers the backend.
    mutating func continueSetVariables(_ job: SetVariablesJob, itemStatus: String?, _ io: inout Effects<Self>) {
        var job = job
        if let current = job.current, let status = itemStatus {
            if status == "Accepted", let password = job.password, password.index == current {
                io.emit(.passwordChanged(password.value))
            }
            let request = job.results[current]
            job.results[current] = .object(
                (request.objectMembers.filter { $0.key != "attributeStatus" }) + [
                    (key: "attributeStatus", value: .string(status))
                ]
            )
        }
        guard !job.remaining.isEmpty else {
            io.reply(to: .upstream, job.upstreamID, .object([(key: "setVariableResult", value: .array(job.results))]))
            return
        }
        let next = job.remaining.removeFirst()
        job.current = next.index
        io.sendCharger(
            "ChangeConfiguration",
            .object([(key: "key", value: .string(next.key)), (key: "value", value: .string(next.value))]),
            answering: Caller(messageID: job.upstreamID, action: "SetVariables"),
            .setVariables(job)
        )
    }

    mutating func baseReport(_ call: RPCFrame.Call, _ io: inout Effects<Self>) throws(Untranslatable) {
        guard let requestId = call.payload["requestId"]?.intValue else {
            throw Untranslatable(message: "requestId is required")
        }
        // Accept now; the report follows once the charger has told its configuration.
        io.reply(to: .upstream, call.messageID, .object([(key: "status", value: .string("Accepted"))]))
        io.sendCharger("GetConfiguration", .object([]), answering: Caller(call), .baseReport(requestId: requestId))
    }

    /// NotifyReport(s) built from a GetConfiguration.conf, plus the relay's own variables.
    mutating func sendReport(requestId: Int, configuration: JSONValue, _ io: inout Effects<Self>) {
        var entries: [JSONValue] = []
        var limits: [String: String] = [:]  // "component.variable" → maxLimit
        let keys = configuration["configurationKey"]?.arrayValue ?? []
        for entry in keys {
            guard let key = entry["key"]?.stringValue else { continue }
            if let limit = tables.configurationKeys.first(where: { $0.key == key && $0.characteristic == "maxLimit" }) {
                if let value = entry["value"]?.stringValue { limits["\(limit.component).\(limit.variable)"] = value }
            }
        }
        for entry in keys {
            guard let key = entry["key"]?.stringValue else { continue }
            if tables.configurationKeys.contains(where: { $0.key == key && $0.characteristic != nil }) { continue }
            let mapping = tables.configurationKey(key)
            let readOnly = entry["readonly"]?.boolValue ?? false || mapping.readOnly
            var attribute = JSONValue.object(omittingNil: [
                "type": .string("Actual"),
                "value": entry["value"]?.stringValue.map {
                    .string(String(Self.convert($0, mapping.values, reverse: false).prefix(2500)))
                },
                "mutability": .string(readOnly ? "ReadOnly" : "ReadWrite"),
            ])
            if attribute["value"] == nil { attribute.set("value", nil) }
            let limit = limits["\(mapping.component).\(mapping.variable)"].flatMap(Self.decimal)
            entries.append(
                Self.reportEntry(
                    component: mapping.component,
                    variable: mapping.variable,
                    instance: mapping.variableInstance,
                    attribute: attribute,
                    maxLimit: limit
                )
            )
        }
        for synthetic in tables.syntheticVariables {
            entries.append(
                Self.reportEntry(
                    component: synthetic.component,
                    variable: synthetic.variable,
                    instance: nil,
                    attribute: .object([
                        (key: "type", value: .string("Actual")), (key: "value", value: .string(synthetic.value)),
                        (key: "mutability", value: .string("ReadOnly")),
                    ]),
                    maxLimit: nil
                )
            )
        }
        let pageSize = 50
        let generatedAt = now()
        let pages = stride(from: 0, to: max(entries.count, 1), by: pageSize).map {
            Array(entries[$0..<min($0 + pageSize, entries.count)])
        }
        for (seqNo, page) in pages.enumerated() {
            let payload = JSONValue.object(omittingNil: [
                "requestId": .int(requestId), "generatedAt": .string(generatedAt),
                "tbc": .bool(seqNo < pages.count - 1),
                "seqNo": .int(seqNo), "reportData": page.isEmpty ? nil : .array(page),
            ])
            io.sendUpstream("NotifyReport", payload, .relay)
        }
    }

    private static func reportEntry(
        component: String,
        variable: String,
        instance: String?,
        attribute: JSONValue,
        maxLimit: JSONValue?
    ) -> JSONValue {
        .object([
            (key: "component", value: .object([(key: "name", value: .string(component))])),
            (
                key: "variable",
                value: .object(omittingNil: ["name": .string(variable), "instance": instance.map(JSONValue.string)])
            ),
            (key: "variableAttribute", value: .array([attribute])),
            (
                key: "variableCharacteristics",
                value: .object(omittingNil: [
                    "dataType": .string("string"), "maxLimit": maxLimit, "supportsMonitoring": .bool(false),
                ])
            ),
        ])
    }
}

extension JSONValue {
    /// The members, if this is an object.
    var objectMembers: [(key: String, value: JSONValue)] {
        if case .object(let members) = self { return members }
        return []
    }
}
