/// A named map between enumeration values of the two versions (`Mappings/enums.yaml`).
public struct EnumMap: Sendable, Hashable {
    /// Known values; a `nil` target means "no counterpart: drop".
    public var values: [String: String?]
    /// Unknown values pass through unchanged…
    public var passthrough: Bool
    /// …or become this.
    public var fallback: String?
    /// Where the values come from and go to, for `mappings check`: `VERSION Message path.to.field`.
    public var source: String?
    public var target: String?
    /// The line of the map in enums.yaml.
    public var line: Int?

    public init(values: [String: String?] = [:], passthrough: Bool = false, fallback: String? = nil) {
        self.values = values
        self.passthrough = passthrough
        self.fallback = fallback
    }

    /// The target value, or `nil` when the value has no counterpart.
    public func map(_ value: String) -> String? {
        if let known = values[value] { return known }
        return passthrough ? value : fallback
    }
}
