/// A version's schema facts laid out for ``ConformanceScan``: every ``SchemaNode`` a plain value in one buffer, found
/// by its index, member names and enumeration values as bytes in another. Judging a frame then reads memory and
/// touches no reference count (walking the `SchemaNode` classes retained and released a node, an array or a table at
/// every member: a third of the judging). Made once per version, with its facts; never changes.
final class CompiledSchema: @unchecked Sendable {
    /// The index that stands for "any value" (a node of kind `any`, an array without element facts).
    static let any = -1

    struct Node {
        /// Never `any`: such nodes are compiled as ``CompiledSchema/any``.
        var kind: SchemaNode.Kind
        var closed: Bool
        var dateTime: Bool
        /// More than 64 required members: the scan's mask cannot follow them (none in OCPP's schemas).
        var tooManyRequired: Bool
        var requiredMask: UInt64
        var maxLength: Int
        var minItems: Int
        var maxItems: Int
        /// An array's element, as an index into ``Tables/nodes``; ``CompiledSchema/any`` for any element.
        var items: Int
        /// This object's members in ``Tables/members``.
        var members: Range<Int>
        /// This string's values in ``Tables/texts``, when it has an enumeration.
        var enumeration: Range<Int>?
        var bounds: NumberBounds
    }

    struct Member {
        /// The name's bytes in ``Tables/bytes``.
        var name: Range<Int>
        var node: Int
        var requiredBit: UInt64
    }

    /// Where everything lies: plain pointers, copied into each scan.
    struct Tables {
        var nodes: UnsafeBufferPointer<Node>
        var members: UnsafeBufferPointer<Member>
        /// Enumeration values' bytes in ``bytes``.
        var texts: UnsafeBufferPointer<Range<Int>>
        var bytes: UnsafeBufferPointer<UInt8>
    }

    let tables: Tables
    /// Each compiled root's index, by its node.
    private let roots: [ObjectIdentifier: Int]

    init(_ roots: some Sequence<SchemaNode>) {
        var builder = Builder()
        var indices: [ObjectIdentifier: Int] = [:]
        for root in roots { indices[ObjectIdentifier(root)] = builder.index(of: root) }
        self.roots = indices
        tables = Tables(
            nodes: UnsafeBufferPointer(Self.copy(builder.nodes)),
            members: UnsafeBufferPointer(Self.copy(builder.members)),
            texts: UnsafeBufferPointer(Self.copy(builder.texts)),
            bytes: UnsafeBufferPointer(Self.copy(builder.bytes))
        )
    }

    deinit {
        UnsafeMutableBufferPointer(mutating: tables.nodes).deallocate()
        UnsafeMutableBufferPointer(mutating: tables.members).deallocate()
        UnsafeMutableBufferPointer(mutating: tables.texts).deallocate()
        UnsafeMutableBufferPointer(mutating: tables.bytes).deallocate()
    }

    /// The index of a node given to ``init(_:)`` as a root.
    func index(of root: SchemaNode) -> Int? { roots[ObjectIdentifier(root)] }

    private static func copy<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, array.count))
        _ = buffer.initialize(from: array)
        return UnsafeMutableBufferPointer(rebasing: buffer[0..<array.count])
    }

    /// Numbers every node once, shared definitions included.
    private struct Builder {
        var nodes: [Node] = []
        var members: [Member] = []
        var texts: [Range<Int>] = []
        var bytes: [UInt8] = []
        var numbered: [ObjectIdentifier: Int] = [:]

        mutating func index(of node: SchemaNode) -> Int {
            if node.kind == .any { return CompiledSchema.any }
            if let index = numbered[ObjectIdentifier(node)] { return index }
            let index = nodes.count
            numbered[ObjectIdentifier(node)] = index
            // A bit per required member (the first 64), set by the member of that name.
            let required = Array(node.required.prefix(64).enumerated())
            func bits(_ name: String) -> UInt64 {
                required.reduce(0) { $1.element == name ? $0 | 1 << UInt64($1.offset) : $0 }
            }
            nodes.append(
                Node(
                    kind: node.kind,
                    closed: node.closed,
                    dateTime: node.format == "date-time",
                    tooManyRequired: node.required.count > 64,
                    requiredMask: required.reduce(0) { $0 | 1 << UInt64($1.offset) },
                    maxLength: node.maxLength ?? .max,
                    minItems: node.minItems ?? 0,
                    maxItems: node.maxItems ?? .max,
                    items: CompiledSchema.any,
                    members: 0..<0,
                    enumeration: nil,
                    bounds: node.bounds
                )
            )
            // Children after their parent's slot is taken: a node's members are laid out together, in schema order.
            let first = members.count
            members += node.members.map {
                Member(name: text($0.name), node: CompiledSchema.any, requiredBit: bits($0.name))
            }
            nodes[index].members = first..<members.count
            for (offset, member) in node.members.enumerated() {
                members[first + offset].node = self.index(of: member.node)
            }
            if let items = node.items { nodes[index].items = self.index(of: items) }
            if let enumeration = node.enumeration {
                let start = texts.count
                texts += enumeration.map { text($0) }
                nodes[index].enumeration = start..<texts.count
            }
            return index
        }

        private mutating func text(_ string: String) -> Range<Int> {
            let start = bytes.count
            bytes += string.utf8
            return start..<bytes.count
        }
    }
}

/// A number's bounds in a schema (`minimum`, `maximum`, `multipleOf`).
struct NumberBounds: Sendable {
    var minimum: Double?
    var maximum: Double?
    var multipleOf: Double?

    var isEmpty: Bool { minimum == nil && maximum == nil && multipleOf == nil }

    /// Reports each bound `number` breaks.
    func check(_ number: Double, _ report: (SchemaViolation.Rule) -> Void) {
        if let minimum, number < minimum { report(.minimum(minimum)) }
        if let maximum, number > maximum { report(.maximum(maximum)) }
        if let multipleOf, multipleOf > 0 {
            let ratio = number / multipleOf
            if abs(ratio - ratio.rounded()) > 1e-9 * max(1, abs(ratio)) {
                report(.multipleOf(multipleOf))
            }
        }
    }
}
