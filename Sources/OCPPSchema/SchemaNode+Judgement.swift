import OCPP

/// A way a value breaks its schema: where, and which rule.
public struct SchemaViolation: Sendable, Hashable, CustomStringConvertible {
    public enum Rule: Sendable, Hashable {
        /// The value has another JSON type than the schema's.
        case type(expected: SchemaNode.Kind, got: String)
        /// A required member is missing.
        case required
        /// A member that a closed object does not take.
        case additionalProperty
        case maxLength(Int)
        case enumeration
        case format(String)
        case minimum(Double)
        case maximum(Double)
        case multipleOf(Double)
        case minItems(Int)
        case maxItems(Int)
    }

    /// Where, as a JSON path from the payload (`meterValue[0].sampledValue[1].value`; empty for the payload).
    public var path: String
    public var rule: Rule

    public init(path: String, rule: Rule) {
        self.path = path
        self.rule = rule
    }

    public var description: String {
        let at = path.isEmpty ? "the payload" : path
        switch rule {
        case .type(let expected, let got): return "\(at) is a \(got) where the schema wants \(expected.article)"
        case .required: return "\(at) is required and missing"
        case .additionalProperty: return "\(at) is not a member the schema knows"
        case .maxLength(let limit): return "\(at) is longer than \(limit) characters"
        case .enumeration: return "\(at) is not one of the schema's values"
        case .format(let format): return "\(at) is not a valid \(format)"
        case .minimum(let limit): return "\(at) is below \(Self.text(limit))"
        case .maximum(let limit): return "\(at) is above \(Self.text(limit))"
        case .multipleOf(let step): return "\(at) is not a multiple of \(Self.text(step))"
        case .minItems(let limit): return "\(at) has fewer than \(limit) elements"
        case .maxItems(let limit): return "\(at) has more than \(limit) elements"
        }
    }

    private static func text(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}

extension SchemaNode.Kind {
    fileprivate var article: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .integer: "an integer"
        case .number: "a number"
        case .boolean: "a boolean"
        case .any: "any value"
        }
    }
}

extension SchemaNode {
    /// The ways `value` breaks these facts, in document order (members before the required ones missing), at most
    /// `limit`. Allocates nothing for a valid value: paths are spelt only for what is reported.
    public func violations(in value: JSONValue, limit: Int = 8) -> [SchemaViolation] {
        var found: [SchemaViolation] = []
        check(value, &found, limit)
        return found
    }

    private func check(_ value: JSONValue, _ found: inout [SchemaViolation], _ limit: Int) {
        guard found.count < limit, kind != .any else { return }
        // Switched on the value alone (a tuple of kind and value would copy the value on the frame path).
        switch value {
        case .object(let members):
            guard kind == .object else { return Self.report(.type(expected: kind, got: "object"), &found, limit) }
            var hint = 0
            for member in members {
                if let facts = self.member(member.key, hint: &hint) {
                    let first = found.count
                    facts.check(member.value, &found, limit)
                    if found.count > first { PathComponent.member(member.key).prefix(&found[first...]) }
                } else if closed {
                    Self.report(.additionalProperty, at: .member(member.key), &found, limit)
                }
            }
            for name in required where !members.contains(where: { $0.key == name }) {
                Self.report(.required, at: .member(name), &found, limit)
            }
        case .array(let elements):
            guard kind == .array else { return Self.report(.type(expected: kind, got: "array"), &found, limit) }
            if let minItems, elements.count < minItems { Self.report(.minItems(minItems), &found, limit) }
            if let maxItems, elements.count > maxItems { Self.report(.maxItems(maxItems), &found, limit) }
            guard let items else { return }
            for index in elements.indices {
                let first = found.count
                items.check(elements[index], &found, limit)
                if found.count > first { PathComponent.index(index).prefix(&found[first...]) }
            }
        case .string(let text):
            guard kind == .string else { return Self.report(.type(expected: kind, got: "string"), &found, limit) }
            // utf8.count is O(1) and never below the character count: most strings need no counting.
            if let maxLength, text.utf8.count > maxLength, text.count > maxLength {
                Self.report(.maxLength(maxLength), &found, limit)
            }
            if !allows(text) { Self.report(.enumeration, &found, limit) }
            if format == "date-time", !RFC3339.isValid(text) { Self.report(.format("date-time"), &found, limit) }
        case .number(let text):
            switch kind {
            case .integer where !Self.isInteger(text):
                Self.report(.type(expected: .integer, got: "number with a fraction"), &found, limit)
            case .integer, .number:
                checkBounds(text, &found, limit)
            default:
                Self.report(.type(expected: kind, got: "number"), &found, limit)
            }
        case .bool:
            guard kind == .boolean else { return Self.report(.type(expected: kind, got: "boolean"), &found, limit) }
        case .null:
            Self.report(.type(expected: kind, got: "null"), &found, limit)
        }
    }

    private static func report(
        _ rule: SchemaViolation.Rule,
        at component: PathComponent? = nil,
        _ found: inout [SchemaViolation],
        _ limit: Int
    ) {
        guard found.count < limit else { return }
        found.append(SchemaViolation(path: component.map { $0.prefixing("") } ?? "", rule: rule))
    }

    private func checkBounds(_ text: String, _ found: inout [SchemaViolation], _ limit: Int) {
        let bounds = self.bounds
        guard !bounds.isEmpty, let number = Double(text) else { return }
        bounds.check(number) { Self.report($0, &found, limit) }
    }

    /// Whether a JSON number's text is an integer (`12`, `-3`; also `12.0`, as JSON Schema counts it).
    static func isInteger(_ text: String) -> Bool {
        if Int(text) != nil { return true }
        guard let value = Double(text) else { return false }
        return value == value.rounded() && abs(value) < 9e15
    }

    /// `value` with the type slips that can be read only one way mended: a number sent as a string of digits where
    /// the schema wants a number (`"500"` → `500`), a number where it wants a string (`500` → `"500"`), `"true"`
    /// or `"false"` where it wants a boolean. Returns the mended value and where it was mended; `nil` when nothing
    /// could be.
    public func normalised(_ value: JSONValue) -> (value: JSONValue, mended: [SchemaViolation])? {
        var mended: [SchemaViolation] = []
        let result = normalise(value, &mended)
        return mended.isEmpty ? nil : (result, mended)
    }

    private func normalise(_ value: JSONValue, _ mended: inout [SchemaViolation]) -> JSONValue {
        switch (kind, value) {
        case (.object, .object(var members)):
            for index in members.indices {
                guard let facts = properties[members[index].key] else { continue }
                let first = mended.count
                members[index].value = facts.normalise(members[index].value, &mended)
                PathComponent.member(members[index].key).prefix(&mended[first...])
            }
            return .object(members)
        case (.array, .array(var elements)):
            guard let items else { return value }
            for index in elements.indices {
                let first = mended.count
                elements[index] = items.normalise(elements[index], &mended)
                PathComponent.index(index).prefix(&mended[first...])
            }
            return .array(elements)
        case (.integer, .string(let text)) where Int(text) != nil && !text.hasPrefix("+"):
            mended.append(SchemaViolation(path: "", rule: .type(expected: .integer, got: "string")))
            return .number(String(Int(text)!))
        case (.number, .string(let text)) where RPCNumber.isJSONNumber(text):
            mended.append(SchemaViolation(path: "", rule: .type(expected: .number, got: "string")))
            return .number(text)
        case (.string, .number(let text)):
            mended.append(SchemaViolation(path: "", rule: .type(expected: .string, got: "number")))
            return .string(text)
        case (.boolean, .string(let text)) where text == "true" || text == "false":
            mended.append(SchemaViolation(path: "", rule: .type(expected: .boolean, got: "string")))
            return .bool(text == "true")
        default:
            return value
        }
    }
}

/// JSON's number grammar, for numbers sent as strings.
enum RPCNumber {
    static func isJSONNumber(_ text: String) -> Bool {
        guard let parsed = try? JSONParser.parse(text), case .number = parsed else { return false }
        return true
    }
}

/// One step of a JSON path, put in front of the paths found below it.
enum PathComponent {
    case member(String)
    case index(Int)

    func prefixing(_ path: String) -> String {
        switch self {
        case .member(let name): path.isEmpty || path.hasPrefix("[") ? name + path : "\(name).\(path)"
        case .index(let index): "[\(index)]" + (path.isEmpty || path.hasPrefix("[") ? path : ".\(path)")
        }
    }

    func prefix(_ violations: inout ArraySlice<SchemaViolation>) {
        for index in violations.indices { violations[index].path = prefixing(violations[index].path) }
    }
}
