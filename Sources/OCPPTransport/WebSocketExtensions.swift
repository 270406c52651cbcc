/// The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): a comma-separated list of extensions, each a name with
/// `;`-separated parameters, a parameter with or without a value, a value a token or a quoted string.
public enum WebSocketExtensions {
    /// One extension of the header: its name and parameters (a quoted value unquoted).
    public struct Element: Sendable, Equatable {
        public var name: String
        public var parameters: [(name: String, value: String?)]

        public init(name: String, parameters: [(name: String, value: String?)] = []) {
            self.name = name
            self.parameters = parameters
        }

        public static func == (lhs: Element, rhs: Element) -> Bool {
            lhs.name == rhs.name && lhs.parameters.elementsEqual(rhs.parameters) { $0 == $1 }
        }
    }

    /// The elements of the header's values, in order; empty items are skipped.
    public static func elements(in values: some Sequence<Substring>) -> [Element] {
        var elements: [Element] = []
        for value in values {
            for item in split(value, on: ",") {
                let fields = split(item, on: ";")
                guard let name = fields.first.map(trimmed), !name.isEmpty else { continue }
                let parameters = fields.dropFirst().compactMap { field -> (name: String, value: String?)? in
                    let pair = field.split(separator: "=", maxSplits: 1).map(trimmed)
                    guard let key = pair.first, !key.isEmpty else { return nil }
                    guard pair.count == 2 else { return (key, nil) }
                    let value = pair[1]
                    if value.count >= 2, value.first == "\"", value.last == "\"" {
                        return (key, String(value.dropFirst().dropLast()))
                    }
                    return (key, value)
                }
                elements.append(Element(name: name, parameters: parameters))
            }
        }
        return elements
    }

    /// `text` split on `separator` outside double quotes.
    private static func split(_ text: Substring, on separator: Character) -> [Substring] {
        var parts: [Substring] = []
        var quoted = false
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "\"" {
                quoted.toggle()
            } else if text[index] == separator, !quoted {
                parts.append(text[start..<index])
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        parts.append(text[start..<text.endIndex])
        return parts
    }

    private static func trimmed(_ text: Substring) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
