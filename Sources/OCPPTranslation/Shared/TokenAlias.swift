/// Stand-ins for tokens longer than an older version allows (1.6's idTag has 20 characters, 2.x's idToken 36):
/// never a truncation, which could bill two tokens to one account.
public enum TokenAlias {
    /// A deterministic alias: "X" and 13 base32 characters of a 64-bit FNV-1a digest of type and token
    /// (another digest character on the rare collision).
    ///
    /// - Parameter holder: the token an alias already stands for, if any.
    public static func make(
        type: String,
        idToken: String,
        holder: (String) -> (idToken: String, type: String)?
    ) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var salt = 0
        while true {
            for byte in "\(type):\(idToken):\(salt)".utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0100_0000_01b3
            }
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
            var text = "X"
            var bits = hash
            for _ in 0..<13 {
                text.append(alphabet[Int(bits & 31)])
                bits >>= 5
            }
            if let other = holder(text), other.idToken != idToken || other.type != type {
                salt += 1
                continue
            }
            return text
        }
    }
}
