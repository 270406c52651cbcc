import OCPP

extension MappingTables {
    /// Applies field rules to a payload: the generic mapper behind `request:`/`response:` in the message tables.
    func apply(
        _ rules: [FieldRule],
        to payload: JSONValue,
        action: String,
        _ notes: inout some TranslationNotes
    ) throws(Untranslatable) -> JSONValue {
        var result = JSONValue.object([])
        for rule in rules {
            guard var value = rule.constant ?? rule.source.flatMap({ payload.value(at: $0) }) ?? rule.defaultValue
            else {
                continue
            }
            if let name = rule.enumName {
                guard case .string(let text) = value else {
                    throw Untranslatable(message: "\(rule.source ?? rule.target) is not a string")
                }
                guard let mapped = enums[name, default: EnumMap()].map(text) else {
                    notes.note(.lossy, action, "\(rule.target): \(text) has no counterpart; left out")
                    continue
                }
                value = .string(mapped)
            }
            if let limit = rule.maxLength, case .string(let text) = value, text.count > limit {
                throw Untranslatable(
                    message:
                        "\(rule.source ?? rule.target) is \(text.count) characters; the other version allows \(limit)",
                    reasonCode: "ValueTooLong"
                )
            }
            if rule.format == .string, !(value.stringValue != nil) {
                value = .string(value.jsonText)
            }
            result.set(path: rule.target, value)
        }
        return result
    }

}
