import OCPP

/// What one OCPP version's official JSON schemas say about its messages: for each action, the facts of its request
/// and its response (types, members, required members, closed objects, lengths, enumerations, formats, bounds,
/// array sizes).
///
/// The facts are derived from the schemas that ship in the pinned `ocpp` package by `generate_facts.py` beside this
/// file, never written by hand, and built into the binary (`Facts/`). They are read once, on first use.
public struct SchemaFacts: Sendable {
    /// The version's short name (`1.6`, `2.0.1`, `2.1`).
    public let version: String
    private let requests: [String: SchemaNode]
    private let responses: [String: SchemaNode]
    /// The same facts laid out for judging bytes (``ConformanceScan``).
    let compiled: CompiledSchema

    /// The facts of a request (a CALL's payload, or a SEND's).
    public func request(_ action: String) -> SchemaNode? { requests[action] }

    /// The facts of a response (a CALLRESULT's payload); `nil` for a message that has none.
    public func response(_ action: String) -> SchemaNode? { responses[action] }

    /// Every action the version defines.
    public var actions: Dictionary<String, SchemaNode>.Keys { requests.keys }

    public static let ocpp16 = SchemaFacts(file: "ocpp16.json")
    public static let ocpp201 = SchemaFacts(file: "ocpp201.json")
    public static let ocpp21 = SchemaFacts(file: "ocpp21.json")

    /// The facts of a version the relay speaks.
    public static func of(_ version: OCPPVersion) -> SchemaFacts {
        switch version {
        case .v16: ocpp16
        case .v201: ocpp201
        case .v21: ocpp21
        }
    }

    /// Reads the generated facts built into the binary: anything it cannot read is a build defect.
    init(file: String) {
        guard let text = Self.builtInFiles[file], let document = try? JSONParser.parse(text),
            let version = document["version"]?.stringValue,
            case .object(let definitions)? = document["definitions"],
            case .object(let messages)? = document["messages"]
        else { preconditionFailure("the generated schema facts cannot be read") }
        var loader = Loader(definitions: Dictionary(definitions.map { ($0.key, $0.value) }) { a, _ in a })
        var requests: [String: SchemaNode] = [:]
        var responses: [String: SchemaNode] = [:]
        for (action, entry) in messages {
            if let request = entry["request"] { requests[action] = loader.node(request) }
            if let response = entry["response"] { responses[action] = loader.node(response) }
        }
        self.version = version
        self.requests = requests
        self.responses = responses
        self.compiled = CompiledSchema(Array(requests.values) + Array(responses.values))
    }

    /// Builds nodes, each shared definition once.
    private struct Loader {
        let definitions: [String: JSONValue]
        var built: [String: SchemaNode] = [:]

        mutating func node(_ facts: JSONValue) -> SchemaNode {
            if let name = facts["ref"]?.stringValue {
                if let node = built[name] { return node }
                guard let definition = definitions[name] else { preconditionFailure("schema facts: no \(name)") }
                let node = self.node(definition)
                built[name] = node
                return node
            }
            let kind = SchemaNode.Kind(rawValue: facts["type"]?.stringValue ?? "any") ?? .any
            var properties: [String: SchemaNode] = [:]
            var order: [String] = []
            if case .object(let members)? = facts["properties"] {
                for (name, member) in members {
                    properties[name] = node(member)
                    order.append(name)
                }
            }
            return SchemaNode(
                kind: kind,
                properties: properties,
                propertyOrder: order,
                required: facts["required"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                closed: facts["closed"]?.boolValue ?? false,
                items: facts["items"].map { node($0) },
                minItems: facts["minItems"]?.intValue,
                maxItems: facts["maxItems"]?.intValue,
                maxLength: facts["maxLength"]?.intValue,
                enumeration: facts["enum"]?.arrayValue?.compactMap(\.stringValue),
                format: facts["format"]?.stringValue,
                minimum: facts["minimum"]?.doubleValue,
                maximum: facts["maximum"]?.doubleValue,
                multipleOf: facts["multipleOf"]?.doubleValue
            )
        }
    }
}

/// The facts of one value in a message: its JSON type and the constraints on it. Shared between the messages that
/// use the same definition.
public final class SchemaNode: Sendable {
    public enum Kind: String, Sendable, Hashable {
        case object, array, string, integer, number, boolean
        /// Any JSON value (2.x DataTransfer's `data`).
        case any
    }

    public let kind: Kind
    /// An object's members by name, and their order in the schema.
    public let properties: [String: SchemaNode]
    public let propertyOrder: [String]
    /// The members in schema order, for the judgement's lookups: a payload's members mostly come in that order, and
    /// comparing short names beats hashing them (measured on the frame path).
    let members: [(name: String, node: SchemaNode)]
    public let required: [String]
    /// Whether an object takes no members beyond ``properties`` (`additionalProperties: false`).
    public let closed: Bool
    /// An array's element.
    public let items: SchemaNode?
    public let minItems: Int?
    public let maxItems: Int?
    /// A string's limits.
    public let maxLength: Int?
    public let enumeration: [String]?
    private let enumerationSet: Set<String>?
    /// Small enumerations are searched, large ones hashed.
    private static let searchedEnumeration = 12
    /// `date-time` or `uri`.
    public let format: String?
    /// A number's limits.
    public let minimum: Double?
    public let maximum: Double?
    public let multipleOf: Double?
    var bounds: NumberBounds { NumberBounds(minimum: minimum, maximum: maximum, multipleOf: multipleOf) }

    init(
        kind: Kind,
        properties: [String: SchemaNode],
        propertyOrder: [String],
        required: [String],
        closed: Bool,
        items: SchemaNode?,
        minItems: Int?,
        maxItems: Int?,
        maxLength: Int?,
        enumeration: [String]?,
        format: String?,
        minimum: Double?,
        maximum: Double?,
        multipleOf: Double?
    ) {
        self.kind = kind
        self.properties = properties
        self.propertyOrder = propertyOrder
        self.members = propertyOrder.compactMap { name in properties[name].map { (name, $0) } }
        self.required = required
        self.closed = closed
        self.items = items
        self.minItems = minItems
        self.maxItems = maxItems
        self.maxLength = maxLength
        self.enumeration = enumeration
        self.enumerationSet = enumeration.flatMap { $0.count > Self.searchedEnumeration ? Set($0) : nil }
        self.format = format
        self.minimum = minimum
        self.maximum = maximum
        self.multipleOf = multipleOf
    }

    /// Whether `text` is one of the enumeration's values (any text when there is no enumeration).
    public func allows(_ text: String) -> Bool {
        guard let enumeration else { return true }
        return enumerationSet?.contains(text) ?? enumeration.contains(text)
    }

    /// The facts of member `name`, looked for from `hint` on (the place after the last one found); updates `hint`.
    func member(_ name: String, hint: inout Int) -> SchemaNode? {
        let count = members.count
        guard count > 0 else { return nil }
        var index = hint < count ? hint : 0
        for _ in 0..<count {
            if members[index].name == name {
                hint = index + 1
                return members[index].node
            }
            index = index + 1 == count ? 0 : index + 1
        }
        return nil
    }

    /// The facts at a dotted member path (`idTagInfo.status`), looking through arrays.
    public func node(at path: some StringProtocol) -> SchemaNode? {
        var current: SchemaNode = self
        for name in path.split(separator: ".") {
            while current.kind == .array, let items = current.items { current = items }
            guard let next = current.properties[String(name)] else { return nil }
            current = next
        }
        return current
    }
}
