/// Reads the bytes of a frame that ``OCPPSchema/SchemaFacts/conformingCall(_:)`` found well-formed and plain (every
/// string printable ASCII without escapes): objects member by member and arrays element by element, as byte ranges,
/// without a tree. Every read is bounds-checked and says `nil` or `false` to anything it did not expect, so a
/// light path that meets a frame it does not know falls back to the tree rather than guessing.
struct PlainJSON {
    let bytes: UnsafeBufferPointer<UInt8>

    /// Calls `body` with each member's name (without quotes) and value of the object at `range`, in order, until it
    /// says `false`; `false` when `range` is not an object or `body` said `false`.
    func members(of range: Range<Int>, _ body: (_ name: Range<Int>, _ value: Range<Int>) -> Bool) -> Bool {
        items(of: range, open: UInt8(ascii: "{"), close: UInt8(ascii: "}")) { start in
            guard let name = string(at: start) else { return nil }
            var index = skipSpace(from: name.upperBound + 1)
            guard index < range.upperBound, bytes[index] == UInt8(ascii: ":") else { return nil }
            index = skipSpace(from: index + 1)
            guard let end = valueEnd(from: index), body(name, index..<end) else { return nil }
            return end
        }
    }

    /// Calls `body` with each element of the array at `range`, in order, until it says `false`; `false` when
    /// `range` is not an array or `body` said `false`.
    func elements(of range: Range<Int>, _ body: (_ element: Range<Int>) -> Bool) -> Bool {
        items(of: range, open: UInt8(ascii: "["), close: UInt8(ascii: "]")) { start in
            guard let end = valueEnd(from: start), body(start..<end) else { return nil }
            return end
        }
    }

    /// The text of the string whose value is `range` (without its quotes); `nil` when it is not a string.
    func string(_ range: Range<Int>) -> Range<Int>? {
        guard range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\""),
            bytes[range.upperBound - 1] == UInt8(ascii: "\"")
        else { return nil }
        return range.lowerBound + 1..<range.upperBound - 1
    }

    /// The integer written at `range` as `-?[0-9]{1,18}`; `nil` for anything else (a fraction, an exponent, a
    /// number too long to be sure of).
    func integer(_ range: Range<Int>) -> Int? {
        var index = range.lowerBound
        let negative = index < range.upperBound && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard (1...18).contains(range.upperBound - index) else { return nil }
        var value = 0
        while index < range.upperBound {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
            index += 1
        }
        return negative ? -value : value
    }

    /// Whether the bytes of `range` spell `text`.
    func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
        range.count == text.utf8CodeUnitCount
            && UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount).elementsEqual(
                bytes[range]
            )
    }

    /// A meter value (1.6 or 2.0.1): its timestamp (a string, quotes included) and its samples' array; `nil` for
    /// any other member or a repeated one.
    func meterValue(_ range: Range<Int>) -> (timestamp: Range<Int>, samples: Range<Int>)? {
        var seen = SeenMembers()
        var timestamp, samples: Range<Int>?
        let read = members(of: range) { name, value in
            if equals(name, "timestamp") {
                return seen.keep(0, value, in: &timestamp) && string(value) != nil
            } else if equals(name, "sampledValue") {
                return seen.keep(1, value, in: &samples)
            }
            return false
        }
        guard read, let timestamp, let samples else { return nil }
        return (timestamp, samples)
    }

    /// Writes the meter values of `array` (1.6 or 2.0.1) as the other version's into `out`: each one's timestamp as it
    /// came, and its samples as `sample` writes them (after a comma between them); the first timestamp. `nil` when
    /// `sample` refuses one (`false`) or a meter value has none: the tree path's.
    func rewriteMeterValues(
        _ array: Range<Int>,
        into out: inout [UInt8],
        sample: (_ range: Range<Int>, _ out: inout [UInt8]) -> Bool
    ) -> Range<Int>? {
        var first: Range<Int>?
        out.append(UInt8(ascii: "["))
        let read = elements(of: array) { value in
            guard let (timestamp, samples) = meterValue(value) else { return false }
            if first != nil { out.append(UInt8(ascii: ",")) }
            first = first ?? timestamp
            out.append(contentsOf: #"{"timestamp":"#.utf8)
            out.append(contentsOf: bytes[timestamp])
            out.append(contentsOf: #","sampledValue":["#.utf8)
            var count = 0
            let wrote = elements(of: samples) { range in
                if count > 0 { out.append(UInt8(ascii: ",")) }
                count += 1
                return sample(range, &out)
            }
            out.append(contentsOf: "]}".utf8)
            return wrote && count > 0
        }
        out.append(UInt8(ascii: "]"))
        return read ? first : nil
    }

    /// Whether the bytes of `range` spell `text`.
    func matches(_ range: Range<Int>, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { $0.elementsEqual(bytes[range]) }
    }

    /// Appends `,"name":"text"` for a plain string's text as it came, when there is one.
    func copyMember(_ name: StaticString, _ text: Range<Int>?, to out: inout [UInt8]) {
        guard let text else { return }
        out.append(contentsOf: #",""#.utf8)
        out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        out.append(contentsOf: #"":""#.utf8)
        out.append(contentsOf: bytes[text])
        out.append(UInt8(ascii: "\""))
    }

    /// The bytes of `range` as a string.
    func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    // MARK: Reading

    /// The items of a container at `range`, each read by `item` from its first byte to the byte after it.
    private func items(of range: Range<Int>, open: UInt8, close: UInt8, _ item: (Int) -> Int?) -> Bool {
        guard range.count >= 2, range.upperBound <= bytes.count, bytes[range.lowerBound] == open,
            bytes[range.upperBound - 1] == close
        else { return false }
        var index = skipSpace(from: range.lowerBound + 1)
        if index == range.upperBound - 1 { return true }
        while true {
            guard let end = item(index) else { return false }
            index = skipSpace(from: end)
            guard index < range.upperBound else { return false }
            if bytes[index] == close { return index == range.upperBound - 1 }
            guard bytes[index] == UInt8(ascii: ",") else { return false }
            index = skipSpace(from: index + 1)
        }
    }

    /// A string starting at `start`: its text's range (the closing quote is at its upper bound).
    private func string(at start: Int) -> Range<Int>? {
        guard start < bytes.count, bytes[start] == UInt8(ascii: "\"") else { return nil }
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""): return start + 1..<index
            case UInt8(ascii: "\\"): return nil
            default: index += 1
            }
        }
        return nil
    }

    /// The byte after the value starting at `start`: containers by their nesting (their strings have no escapes),
    /// strings by their closing quote, numbers and literals by the byte that ends them.
    private func valueEnd(from start: Int) -> Int? {
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return string(at: start).map { $0.upperBound + 1 }
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                case UInt8(ascii: "\""):
                    guard let text = string(at: index) else { return nil }
                    index = text.upperBound
                default: break
                }
                index += 1
            }
            return nil
        default:
            var index = start
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09:
                    return index > start ? index : nil
                default: index += 1
                }
            }
            return nil
        }
    }

    private func skipSpace(from start: Int) -> Int {
        var index = start
        while index < bytes.count,
            bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D
                || bytes[index] == 0x09
        {
            index += 1
        }
        return index
    }
}

/// The members an object had: a repeated one is the tree path's (it reads the first; the light path does not guess).
struct SeenMembers {
    private var bits: UInt8 = 0

    /// Marks member `bit`; `false` when it was there already.
    mutating func first(_ bit: Int) -> Bool {
        defer { bits |= 1 << bit }
        return bits & (1 << bit) == 0
    }

    func has(_ bit: Int) -> Bool { bits & (1 << bit) != 0 }

    /// Keeps `value` in `slot` as member `bit`: `false` when the member came already or its value is not the kind
    /// expected (`nil`).
    mutating func keep<Value>(_ bit: Int, _ value: Value?, in slot: inout Value?) -> Bool {
        slot = value
        return first(bit) && value != nil
    }
}
