import OCPP
import OCPPSchema

/// OCPP 2.1 spoken on one side of rules written for 2.0.1: every message both versions have crosses the step as
/// itself, lowered to 2.0.1 on its way in from the 2.1 peer and lifted to 2.1 on its way out to it, by the two
/// versions' schema facts and the step's table (``StepTable``). Pure, owned by the engine's ``Effects``.
///
/// Lowering leaves out what 2.0.1 does not have (noted), maps 2.1 values of closed enumerations through the table,
/// gives tokens 2.0.1 cannot carry an alias or a 2.0.1 type (kept in ``state``, put back on the way down), cuts the
/// free texts the table names and refuses what cannot cross without changing its meaning. A payload 2.0.1's schema
/// already takes crosses unchanged, without a copy.
struct VersionStep: Sendable {
    /// The side that speaks 2.1.
    let side: Side
    let table: StepTable
    private(set) var state: StepState
    /// Whether ``state`` changed in a way that must be stored; forgotten once asked (``takeChange()``).
    private var changed = false

    /// 2.0.1's longest idToken.
    static let tokenLength = 36

    init(side: Side, table: StepTable, state: StepState) {
        self.side = side
        self.table = table
        self.state = state
    }

    mutating func takeChange() -> Bool {
        defer { changed = false }
        return changed
    }

    // MARK: Lowering

    /// A 2.1 CALL's payload (or a CALLRESULT's, `response`) as 2.0.1 takes it; throws what cannot cross.
    mutating func lower(
        _ payload: JSONValue,
        action: String,
        response: Bool,
        _ notes: inout some TranslationNotes
    ) throws(Untranslatable) -> JSONValue {
        let facts = SchemaFacts.ocpp201
        guard let node = response ? facts.response(action) : facts.request(action) else { return payload }
        if !response && action == "SignCertificate", let id = payload["requestId"]?.intValue {
            state.signRequests[payload["certificateType"]?.stringValue ?? "ChargingStationCertificate"] = id
            changed = true
        }
        guard !node.violations(in: payload, limit: 1).isEmpty else { return payload }
        var walk = Lowering(place: action + (response ? "Response" : "Request"), table: table)
        let result = walk.lower(payload, node, path: "", inArray: false, &state)
        changed = changed || walk.stateChanged
        if !walk.lost.isEmpty {
            notes.note(.lossy, action, "left out for OCPP 2.0.1: " + walk.lost.joined(separator: "; "))
        }
        switch result {
        case .value(let lowered): return lowered
        case .omit(let why), .reject(let why):
            throw Untranslatable(message: "\(why): OCPP 2.0.1 cannot carry it", reasonCode: "NotIn201")
        }
    }

    // MARK: Lifting

    /// A 2.0.1 CALL's payload (or a CALLRESULT's) as 2.1 takes it: tokens put back, requestIds returned, members
    /// 2.1 requires filled from the table.
    mutating func lift(
        _ payload: JSONValue,
        action: String,
        response: Bool,
        _ notes: inout some TranslationNotes
    ) -> JSONValue {
        var payload = payload
        if !response && action == "CertificateSigned" {
            let type = payload["certificateType"]?.stringValue ?? "ChargingStationCertificate"
            if let id = state.signRequests.removeValue(forKey: type) {
                if payload["requestId"] == nil { payload.set("requestId", .int(id)) }
                changed = true
            }
        }
        let facts = SchemaFacts.ocpp21
        guard let node = response ? facts.response(action) : facts.request(action) else { return payload }
        guard !state.tokens.isEmpty || !node.violations(in: payload, limit: 1).isEmpty else { return payload }
        var filled: [String] = []
        let lifted = lift(payload, node, place: action + (response ? "Response" : "Request"), path: "", &filled)
        if !filled.isEmpty {
            notes.note(.lossy, action, "OCPP 2.0.1 has no \(filled.joined(separator: ", ")); filled for OCPP 2.1")
        }
        return lifted
    }

    private func lift(
        _ value: JSONValue,
        _ node: SchemaNode,
        place: String,
        path: String,
        _ filled: inout [String]
    ) -> JSONValue {
        switch (node.kind, value) {
        case (.object, .object(var members)):
            if node.properties["idToken"] != nil, node.properties["type"] != nil,
                let token = value["idToken"]?.stringValue, let original = state.tokens[token]
            {
                for index in members.indices {
                    if members[index].key == "idToken" { members[index].value = .string(original.idToken) }
                    if members[index].key == "type" { members[index].value = .string(original.type) }
                }
            }
            for index in members.indices {
                guard let child = node.properties[members[index].key] else { continue }
                members[index].value = lift(
                    members[index].value,
                    child,
                    place: place,
                    path: path + members[index].key + ".",
                    &filled
                )
            }
            for name in node.required where !members.contains(where: { $0.key == name }) {
                if let value = table.fill["\(place) \(path)\(name)"] {
                    members.append((key: name, value: value))
                    filled.append("\(path)\(name) (\(value.jsonText))")
                }
            }
            return .object(members)
        case (.array, .array(let elements)):
            guard let items = node.items else { return value }
            return .array(elements.map { lift($0, items, place: place, path: path, &filled) })
        default:
            return value
        }
    }
}

/// One lowering walk over a 2.1 payload with 2.0.1's facts: what it left out, for the note.
private struct Lowering {
    let place: String
    let table: StepTable
    var lost: [String] = []
    var stateChanged = false

    enum Result {
        case value(JSONValue)
        /// The member cannot cross; the rest of its object can.
        case omit(String)
        /// The member cannot cross, and its object (or its array element) cannot without it.
        case reject(String)
    }

    init(place: String, table: StepTable) {
        self.place = place
        self.table = table
    }

    mutating func lower(
        _ value: JSONValue,
        _ node: SchemaNode,
        path: String,
        inArray: Bool,
        _ state: inout StepState
    ) -> Result {
        switch (node.kind, value) {
        case (.object, .object(var members)):
            if let tokenType = node.properties["type"], tokenType.enumeration != nil, node.properties["idToken"] != nil
            {
                token(&members, typeNode: tokenType, path: path, &state)
            }
            var kept: [(key: String, value: JSONValue)] = []
            kept.reserveCapacity(members.count)
            for (key, member) in members {
                guard let child = node.properties[key] else {
                    // An open object (customData) takes what it does not name; a closed one does not.
                    if !node.closed {
                        kept.append((key, member))
                    } else if !(place == "SignCertificateRequest" && key == "requestId") {
                        lost.append(path + key)
                    }
                    continue
                }
                switch lower(member, child, path: path + key + ".", inArray: false, &state) {
                case .value(let lowered): kept.append((key, lowered))
                case .omit(let why) where !node.required.contains(key):
                    lost.append(why)
                case .reject(let why) where !node.required.contains(key) && !inArray:
                    lost.append(why)
                case .omit(let why), .reject(let why):
                    return .reject(why)
                }
            }
            return .value(.object(kept))
        case (.array, .array(let elements)):
            guard let items = node.items else { return .value(value) }
            var kept: [JSONValue] = []
            kept.reserveCapacity(elements.count)
            for element in elements {
                switch lower(element, items, path: path, inArray: true, &state) {
                case .value(let lowered): kept.append(lowered)
                case .omit(let why), .reject(let why): lost.append("an element of \(trimmed(path)) (\(why))")
                }
            }
            if let minimum = node.minItems, kept.count < minimum {
                return .reject("\(trimmed(path)) has no element OCPP 2.0.1 can carry")
            }
            return .value(.array(kept))
        case (.string, .string(let text)):
            var text = text
            if !node.allows(text) {
                let place = "\(self.place) \(trimmed(path))"
                guard let mapped = table.enums[place]?.map(text) else {
                    return .reject("\(trimmed(path)) \(text) (no OCPP 2.0.1 value)")
                }
                lost.append("\(trimmed(path)) \(text) became \(mapped)")
                text = mapped
            }
            if let limit = node.maxLength, text.unicodeScalars.count > limit {
                guard table.mayTruncate(trimmed(path)) else {
                    return .omit("\(trimmed(path)) (\(text.unicodeScalars.count) characters; 2.0.1 allows \(limit))")
                }
                lost.append("\(trimmed(path)) cut to \(limit) characters")
                text = String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit)))
            }
            return .value(.string(text))
        case (.integer, .number(let text)) where Int(text) == nil:
            guard let number = Double(text), number.isFinite else { return .value(value) }
            let rounded = Int(number.rounded())
            lost.append("\(trimmed(path)) \(text) rounded to \(rounded)")
            return .value(.int(rounded))
        default:
            return .value(value)
        }
    }

    /// A 2.1 IdToken as 2.0.1 takes it: a type 2.0.1 lacks becomes the table's, a token over 36 characters an alias;
    /// either way the original is kept to be put back.
    private mutating func token(
        _ members: inout [(key: String, value: JSONValue)],
        typeNode: SchemaNode,
        path: String,
        _ state: inout StepState
    ) {
        guard let tokenIndex = members.firstIndex(where: { $0.key == "idToken" }),
            let typeIndex = members.firstIndex(where: { $0.key == "type" }),
            let token = members[tokenIndex].value.stringValue, let type = members[typeIndex].value.stringValue
        else { return }
        let loweredType = typeNode.allows(type) ? type : (table.idTokenTypes.map(type) ?? "Central")
        var lowered = token
        if token.unicodeScalars.count > VersionStep.tokenLength {
            let tokens = state.tokens
            lowered = TokenAlias.make(type: type, idToken: token) { tokens[$0].map { ($0.idToken, $0.type) } }
        }
        guard lowered != token || loweredType != type else { return }
        if state.tokens[lowered] != StepState.Token(idToken: token, type: type) {
            state.tokens[lowered] = StepState.Token(idToken: token, type: type)
            stateChanged = true
        }
        if lowered != token {
            lost.append("\(path)idToken: a \(token.unicodeScalars.count)-character token is \(lowered) (provision it)")
        }
        if loweredType != type { lost.append("\(path)type \(type) became \(loweredType)") }
        members[tokenIndex].value = .string(lowered)
        members[typeIndex].value = .string(loweredType)
    }

    private func trimmed(_ path: String) -> String {
        path.hasSuffix(".") ? String(path.dropLast()) : path
    }
}
