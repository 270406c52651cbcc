import Foundation

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
