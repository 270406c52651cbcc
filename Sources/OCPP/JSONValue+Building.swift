extension JSONValue {
    /// An integer number.
    public static func int(_ value: Int) -> JSONValue { .number(String(value)) }

    /// An object from key–value pairs, leaving out `nil` values: OCPP omits absent optional fields
    /// (`null`, `{}` and `[]` are not allowed for them).
    public static func object(omittingNil pairs: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        .object(pairs.compactMap { key, value in value.map { (key: key, value: $0) } })
    }

    /// The number as a `Double`, if this is a number.
    public var doubleValue: Double? {
        if case .number(let n) = self { return Double(n) }
        return nil
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The boolean, if this is one.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The value at a dotted path (`idToken.idToken`), through objects only.
    public func value(at path: String) -> JSONValue? {
        // Walks the path in place: translations read paths on every message, so no keys are allocated.
        var current = self
        var rest = Substring(path)
        while true {
            let end = rest.firstIndex(of: ".") ?? rest.endIndex
            let key = rest[..<end]
            guard case .object(let members) = current,
                let next = members.first(where: { $0.key.utf8.elementsEqual(key.utf8) })?.value
            else { return nil }
            current = next
            guard end < rest.endIndex else { return current }
            rest = rest[rest.index(after: end)...]
        }
    }

    /// Sets (or, with `nil`, removes) the member `key` of an object; does nothing to other values.
    public mutating func set(_ key: String, _ newValue: JSONValue?) {
        guard case .object(var members) = self else { return }
        if let index = members.firstIndex(where: { $0.key == key }) {
            if let newValue {
                members[index].value = newValue
            } else {
                members.remove(at: index)
            }
        } else if let newValue {
            members.append((key: key, value: newValue))
        }
        self = .object(members)
    }

    /// Sets the value at a dotted path, creating intermediate objects.
    public mutating func set(path: String, _ newValue: JSONValue?) {
        let keys = path.split(separator: ".").map(String.init)
        guard let first = keys.first else { return }
        if keys.count == 1 {
            set(first, newValue)
            return
        }
        var child = self[first] ?? .object([])
        child.set(path: keys.dropFirst().joined(separator: "."), newValue)
        set(first, child)
    }
}
