import OCPP

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a frame's bytes against its schema facts without building a `JSONValue` tree, and says only one thing for
/// sure: that the frame is well-formed JSON and its payload keeps every rule. Anything else (a broken rule, a JSON
/// error, or what it does not read itself: an escape or a non-ASCII byte in a string, nesting deeper than the
/// parser's bound) is "not sure", and the caller judges the frame the long way, which finds the exact reasons.
///
/// Most frames keep their schema, and this is the whole cost of judging them (no allocation), where parsing into a
/// tree, walking it and releasing it cost a tree's worth of allocations per frame.
struct ConformanceScan {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private let schema: CompiledSchema.Tables
    private static let any = CompiledSchema.any

    init(_ bytes: UnsafeBufferPointer<UInt8>, schema: CompiledSchema.Tables) {
        self.bytes = bytes
        self.schema = schema
    }

    /// What the scan read of a frame's envelope: its type, its id's and action's bytes, where its payload starts.
    struct Envelope {
        var messageType: UInt8
        var messageID: Range<Int>
        var action: Range<Int>?
    }

    /// Reads a CALL's, SEND's or CALLRESULT's envelope up to its payload, as `RPCFrame.parse` would accept it: a
    /// one-digit type, an id of 1 to 36 plain bytes, a CALL's non-empty action. nil for anything else.
    mutating func envelope() -> Envelope? {
        guard take(UInt8(ascii: "[")) else { return nil }
        skipSpace()
        guard index < bytes.count, [2, 3, 6].contains(bytes[index] &- 0x30) else { return nil }
        let type = bytes[index] - 0x30
        index += 1
        guard index < bytes.count, !Self.isDigit(bytes[index]) else { return nil }
        guard take(UInt8(ascii: ",")), let id = plainString(),
            (1...RPCFrame.maximumMessageIDLength).contains(id.count)
        else { return nil }
        var action: Range<Int>?
        if type != 3 {
            guard take(UInt8(ascii: ",")), let name = plainString(), !name.isEmpty else { return nil }
            action = name
        }
        guard take(UInt8(ascii: ",")) else { return nil }
        skipSpace()
        return Envelope(messageType: type, messageID: id, action: action)
    }

    /// Reads the payload (an object keeping the rules of node `node`) and the frame's end.
    mutating func payloadConforms(to node: Int) -> Bool {
        payloadRange(conformingTo: node) != nil
    }

    /// Reads the payload (an object keeping the rules of node `node`) and the frame's end: the payload's bytes.
    mutating func payloadRange(conformingTo node: Int) -> Range<Int>? {
        let start = index
        guard node != Self.any, schema.nodes[node].kind == .object, index < bytes.count,
            bytes[index] == UInt8(ascii: "{"),
            value(node, depth: 1)
        else { return nil }
        let end = index
        guard take(UInt8(ascii: "]")) else { return nil }
        skipSpace()
        return index == bytes.count ? start..<end : nil
    }

    /// The bytes of `range`.
    func slice(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[range])
    }

    // MARK: Values

    /// Reads one value; true when it is well-formed and keeps node `node`'s rules (any value for ``any``).
    private mutating func value(_ node: Int, depth: Int) -> Bool {
        skipSpace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            return object(node, depth: depth + 1)
        case UInt8(ascii: "["):
            return array(node, depth: depth + 1)
        case UInt8(ascii: "\""):
            guard let range = plainString() else { return false }
            return node == Self.any || allows(ascii: range, node)
        case UInt8(ascii: "t"):
            return literal("true") && (node == Self.any || schema.nodes[node].kind == .boolean)
        case UInt8(ascii: "f"):
            return literal("false") && (node == Self.any || schema.nodes[node].kind == .boolean)
        case UInt8(ascii: "n"):
            return literal("null") && node == Self.any
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard let number = number() else { return false }
            return node == Self.any || allows(number: number.range, integral: number.integral, node)
        default:
            return false
        }
    }

    private mutating func object(_ node: Int, depth: Int) -> Bool {
        guard depth <= JSONParser.defaultMaximumDepth else { return false }
        let facts = node == Self.any ? nil : schema.nodes[node]
        if let facts, facts.kind != .object || facts.tooManyRequired { return false }
        index += 1
        var seen: UInt64 = 0
        var hint = facts?.members.lowerBound ?? 0
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return facts.map { $0.requiredMask == 0 } ?? true
        }
        while true {
            skipSpace()
            guard let name = plainString(), take(UInt8(ascii: ":")) else { return false }
            var member = Self.any
            if let facts {
                if let found = self.member(name, of: facts, hint: &hint) {
                    member = found.node
                    seen |= found.requiredBit
                } else if facts.closed {
                    return false
                }
            }
            guard value(member, depth: depth), let next = endOfMember(UInt8(ascii: "}")) else { return false }
            if next { continue }
            return facts.map { seen == $0.requiredMask } ?? true
        }
    }

    private mutating func array(_ node: Int, depth: Int) -> Bool {
        guard depth <= JSONParser.defaultMaximumDepth else { return false }
        let facts = node == Self.any ? nil : schema.nodes[node]
        if let facts, facts.kind != .array { return false }
        index += 1
        var count = 0
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
        } else {
            while true {
                guard value(facts?.items ?? Self.any, depth: depth), let next = endOfMember(UInt8(ascii: "]")) else {
                    return false
                }
                count += 1
                if !next { break }
            }
        }
        guard let facts else { return true }
        return count >= facts.minItems && count <= facts.maxItems
    }

    // MARK: Facts

    /// The member of `facts` named by the bytes of `name`, looked for from `hint` on (where the last one found was
    /// followed: payloads mostly keep the schema's order); updates `hint`.
    private func member(_ name: Range<Int>, of facts: CompiledSchema.Node, hint: inout Int) -> CompiledSchema.Member? {
        let members = facts.members
        guard !members.isEmpty else { return nil }
        var at = members.contains(hint) ? hint : members.lowerBound
        for _ in members {
            let candidate = schema.members[at]
            if equal(candidate.name, name) {
                hint = at + 1
                return candidate
            }
            at = at + 1 == members.upperBound ? members.lowerBound : at + 1
        }
        return nil
    }

    /// Whether the schema's text at `text` is the frame's text at `range`.
    private func equal(_ text: Range<Int>, _ range: Range<Int>) -> Bool {
        guard text.count == range.count else { return false }
        guard !text.isEmpty else { return true }
        return memcmp(schema.bytes.baseAddress! + text.lowerBound, bytes.baseAddress! + range.lowerBound, text.count)
            == 0
    }

    /// Whether a string of printable ASCII (each byte one character) keeps node `node`'s rules.
    private func allows(ascii range: Range<Int>, _ node: Int) -> Bool {
        let facts = schema.nodes[node]
        guard facts.kind == .string, range.count <= facts.maxLength else { return false }
        if let values = facts.enumeration, !values.contains(where: { equal(schema.texts[$0], range) }) { return false }
        return !facts.dateTime || RFC3339.isValid(bytes: slice(range))
    }

    /// Whether a number's text keeps node `node`'s rules.
    private func allows(number range: Range<Int>, integral: Bool, _ node: Int) -> Bool {
        let facts = schema.nodes[node]
        guard facts.kind == .integer || facts.kind == .number else { return false }
        // A short number's String is stored inline: no allocation.
        let needsText = (facts.kind == .integer && !(integral && range.count < 19)) || !facts.bounds.isEmpty
        guard needsText else { return true }
        let text = String(decoding: slice(range), as: UTF8.self)
        if facts.kind == .integer, !SchemaNode.isInteger(text) { return false }
        guard !facts.bounds.isEmpty, let number = Double(text) else { return true }
        var broken = false
        facts.bounds.check(number) { _ in broken = true }
        return !broken
    }

    /// After a member or element: true when a `,` follows, false at the `closing` bracket, nil for anything else.
    private mutating func endOfMember(_ closing: UInt8) -> Bool? {
        skipSpace()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: ","):
            index += 1
            return true
        case closing:
            index += 1
            return false
        default:
            return nil
        }
    }

    // MARK: Tokens

    /// A string of printable ASCII without escapes: the range of its text. nil for anything else (the long way reads
    /// escapes and validates UTF-8).
    private mutating func plainString() -> Range<Int>? {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return start..<index - 1
            }
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        return nil
    }

    /// A number as RFC 8259 writes it: its range, and whether it is written as an integer.
    private mutating func number() -> (range: Range<Int>, integral: Bool)? {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, Self.isDigit(bytes[index]) else { return nil }
        if bytes[index] == UInt8(ascii: "0") { index += 1 } else { skipDigits() }
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            integral = false
            guard skipDigits() > 0 else { return nil }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            integral = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            guard skipDigits() > 0 else { return nil }
        }
        return (start..<index, integral)
    }

    @discardableResult
    private mutating func skipDigits() -> Int {
        let start = index
        while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
        return index - start
    }

    private mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
        index += count
        return true
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
}

/// A CALL that keeps its version's schema, as ``SchemaFacts/conformingCall(_:)`` found its parts in the frame's
/// bytes.
public struct ConformingCall: Sendable, Equatable {
    /// The message id's bytes (plain ASCII, no quotes).
    public var messageID: Range<Int>
    public var action: String
    /// The payload object's bytes, braces included.
    public var payload: Range<Int>
}

extension SchemaFacts {
    /// A CALL whose frame is well-formed JSON, whose strings are all printable ASCII without escapes, and whose
    /// payload keeps its request's schema (``ConformanceScan``): where its parts are. nil for anything else, a CALL
    /// the scan is not sure of included: the caller then takes the long way (parse, judge the tree).
    public func conformingCall(_ bytes: UnsafeBufferPointer<UInt8>) -> ConformingCall? {
        var scan = ConformanceScan(bytes, schema: compiled.tables)
        guard let envelope = scan.envelope(), envelope.messageType == 2, let name = envelope.action,
            let known = OCPPAction.index(of: UnsafeRawBufferPointer(scan.slice(name))),
            let schema = request(OCPPAction.all[known]), let node = compiled.index(of: schema),
            let payload = scan.payloadRange(conformingTo: node)
        else { return nil }
        return ConformingCall(messageID: envelope.messageID, action: OCPPAction.all[known], payload: payload)
    }
}
