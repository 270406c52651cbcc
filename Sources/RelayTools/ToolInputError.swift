/// A file an offline tool reads is missing or wrong; the message names it and says why.
public struct ToolInputError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
