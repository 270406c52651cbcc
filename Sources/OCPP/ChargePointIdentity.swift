/// The identity of a charging station, taken from the last segment of the WebSocket request path.
///
/// An identity is data, never a file name or a path: it is only ever percent-encoded into a URL or written
/// into a record. Decoding rejects what no charger legitimately sends (control characters, invalid
/// UTF-8, broken escapes) and bounds the length.
public struct ChargePointIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The longest identity accepted, in UTF-8 bytes after percent-decoding.
    /// (OCPP itself says 48 characters; real fleets and test tools go beyond, so the relay is lenient.)
    public static let maximumLength = 1024

    /// The decoded identity.
    public let value: String

    public init(_ value: String) throws(IdentityError) {
        guard !value.isEmpty else { throw IdentityError(.empty, "the charge point identity is empty") }
        guard value.utf8.count <= Self.maximumLength else {
            throw IdentityError(.tooLong, "the charge point identity is longer than \(Self.maximumLength) bytes")
        }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw IdentityError(.controlCharacter, "the charge point identity contains a control character")
        }
        self.value = value
    }

    public var description: String { value }

    /// The identity a percent-encoded URL path segment names (the console's `/api/chargers/CP%207%2F%C3%A4`), by
    /// the same rules as a charger's request path.
    public init(pathSegment: some StringProtocol) throws(IdentityError) {
        try self.init(Self.percentDecode(Substring(pathSegment)))
    }

    /// The identity percent-encoded as one URL path segment: everything but RFC 3986 unreserved characters
    /// is escaped, so `/`, `..` tricks and spaces cannot change the upstream path.
    public var pathSegment: String {
        var output = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                output.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                output += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        // A segment of only dots would mean "this" or "parent" directory to a server.
        if output == "." || output == ".." {
            output = output.replacingDots()
        }
        return output
    }

    /// Splits a request target (`/prefix/CP%2001?x=1`) into its prefix and the decoded identity.
    /// The identity is exactly the last segment: `/ocpp/CP01/` has an empty one and is refused, since
    /// reading it as `ocpp` would connect a misconfigured charger under another's name.
    public static func parse(
        requestTarget: String
    ) throws(IdentityError) -> (prefix: String, identity: ChargePointIdentity) {
        var path = Substring(requestTarget)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            path = path[..<query]
        }
        guard let slash = path.lastIndex(of: "/") else {
            throw IdentityError(.empty, "the request path has no charge point identity")
        }
        let segment = path[path.index(after: slash)...]
        let prefix = String(path[..<slash])
        let decoded = try percentDecode(segment)
        return (prefix, try ChargePointIdentity(decoded))
    }

    static func percentDecode(_ segment: Substring) throws(IdentityError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(segment.utf8.count)
        var iterator = segment.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw IdentityError(.invalidEncoding, "the charge point identity has a broken %-escape")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw IdentityError(.invalidEncoding, "the charge point identity is not valid UTF-8")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    fileprivate func replacingDots() -> String {
        String(repeating: "%2E", count: count)
    }
}

/// Why a request path does not name a usable charge point identity.
public struct IdentityError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case empty, tooLong, controlCharacter, invalidEncoding
    }
    public let code: Code
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
