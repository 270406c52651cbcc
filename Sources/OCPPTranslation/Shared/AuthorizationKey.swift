/// A charger's Basic-auth password in each version: 2.0.1's `SecurityCtrlr.BasicAuthPassword` is the password
/// (16 to 40 characters); 1.6's `AuthorizationKey` (Security Whitepaper) is the same password's bytes in hex,
/// 16 to 20 bytes, so 32 to 40 hex digits. Keys marked `encoding: hex` in configuration-keys.yaml convert this way.
enum AuthorizationKey {
    /// The 1.6 hex form of a password, or why it has none.
    static func hex(of password: String) -> Result<String, Untranslatable> {
        let bytes = Array(password.utf8)
        guard (16...20).contains(bytes.count) else {
            return .failure(
                Untranslatable(
                    message: "a 1.6 AuthorizationKey holds 16 to 20 bytes; this password has \(bytes.count)",
                    reasonCode: "InvalidPasswordLength"
                )
            )
        }
        let digits = Array("0123456789ABCDEF")
        return .success(String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] }))
    }

    /// The password a 1.6 AuthorizationKey holds, or `nil` when it is not hex of UTF-8 text.
    static func password(fromHex text: String) -> String? {
        let digits = Array(text.utf8)
        guard digits.count.isMultiple(of: 2), !digits.isEmpty else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
