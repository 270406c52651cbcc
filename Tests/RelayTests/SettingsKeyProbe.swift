import Foundation

/// The YAML keys a `Decodable` reads, found by decoding it from a probe that pretends every key is present: nested
/// settings are probed in turn (`recordings.roll_size`), arrays of them once (`routes[].chargers`), maps of user
/// data (`auth.passwords`) are leaves. So a test can compare the keys the relay knows with a documented file.
struct SettingsKeyProbe {
    static func keys<T: Decodable>(of type: T.Type) throws -> Set<String> {
        let found = Found()
        _ = try T(from: ProbeDecoder(path: "", found: found))
        return found.keys
    }

    final class Found {
        var keys: Set<String> = []
    }

    struct ProbeDecoder: Decoder {
        let path: String
        let found: Found
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            KeyedDecodingContainer(Keyed<Key>(path: path, found: found))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(path: path + "[]", found: found) }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single() }
    }

    /// A dummy for each leaf type (a map of user data too: its keys are not settings), nil for anything else.
    static func leaf<T>(_ type: T.Type) -> T? {
        switch type {
        case is String.Type: "1" as? T
        case is Int.Type: 1 as? T
        case is Double.Type: 1.0 as? T
        case is Bool.Type: true as? T
        case is [String: String].Type: [String: String]() as? T
        default: nil
        }
    }

    /// A leaf's dummy, or a nested value probed in turn.
    static func value<T: Decodable>(_ type: T.Type, path: String, found: Found) throws -> T {
        try leaf(type) ?? T(from: ProbeDecoder(path: path, found: found))
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let path: String
        let found: Found
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { [] }

        func name(_ key: Key) -> String {
            let name = path.isEmpty ? key.stringValue : "\(path).\(key.stringValue)"
            found.keys.insert(name)
            return name
        }

        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try SettingsKeyProbe.value(type, path: name(key), found: found)
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
            KeyedDecodingContainer(Keyed<N>(path: name(key), found: found))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            Unkeyed(path: name(key) + "[]", found: found)
        }
        func superDecoder() throws -> any Decoder { ProbeDecoder(path: path, found: found) }
        func superDecoder(forKey key: Key) throws -> any Decoder { ProbeDecoder(path: name(key), found: found) }
    }

    /// One element, probed.
    struct Unkeyed: UnkeyedDecodingContainer {
        let path: String
        let found: Found
        var codingPath: [any CodingKey] { [] }
        var count: Int? { 1 }
        var currentIndex = 0
        var isAtEnd: Bool { currentIndex >= 1 }

        mutating func decodeNil() throws -> Bool { false }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            currentIndex += 1
            return try SettingsKeyProbe.value(type, path: path, found: found)
        }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
            currentIndex += 1
            return KeyedDecodingContainer(Keyed<N>(path: path, found: found))
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            currentIndex += 1
            return Unkeyed(path: path + "[]", found: found)
        }
        mutating func superDecoder() throws -> any Decoder { ProbeDecoder(path: path, found: found) }
    }

    struct Single: SingleValueDecodingContainer {
        var codingPath: [any CodingKey] { [] }
        func decodeNil() -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            guard let value = SettingsKeyProbe.leaf(type) else {
                throw DecodingError.typeMismatch(type, .init(codingPath: [], debugDescription: "probe"))
            }
            return value
        }
    }
}

/// The key paths a commented YAML example documents: every `key:` line, commented out or not, placed by its
/// indentation (`- key:` starts an array element).
enum DocumentedKeys {
    static func paths(in text: String) -> Set<String> {
        var stack: [(indent: Int, key: String)] = []
        var found: Set<String> = []
        let pattern = /^(\s*)(- )?([a-z][a-z0-9_]*):(\s|$)/
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            // A commented-out line keeps its indentation: `  # state: …` is a key inside the block above.
            var line = String(raw)
            if let hash = line.firstIndex(where: { $0 != " " }), line[hash] == "#" {
                var rest = line[line.index(after: hash)...]
                if rest.first == " " { rest = rest.dropFirst() }
                line = String(line[..<hash]) + rest
            }
            guard let match = line.firstMatch(of: pattern) else { continue }
            // An element's keys sit where its first key does (after `- `); the array is the key above them.
            let element = match.output.2 != nil
            let indent = match.output.1.count + (element ? 2 : 0)
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            if element, let last = stack.last, !last.key.hasSuffix("[]") { stack[stack.count - 1].key += "[]" }
            let key = String(match.output.3)
            let path = (stack.map(\.key) + [key]).joined(separator: ".")
            found.insert(path)
            stack.append((indent, key))
        }
        return found
    }
}
