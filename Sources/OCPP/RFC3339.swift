/// RFC 3339 date-times as microseconds since the Unix epoch, without Foundation: for re-basing payload
/// timestamps during a replay, and for comparing a payload's time with another (a reservation's expiry).
public enum RFC3339 {
    /// Whether `text` is a date-time ``parse(_:)`` reads; without allocating for a native string.
    public static func isValid(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { parse(bytes: $0) != nil } ?? (parse(text) != nil)
    }

    /// Whether `bytes` are a date-time ``parse(_:)`` reads.
    public static func isValid(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        parse(bytes: bytes) != nil
    }

    /// Parses `2026-11-27T06:00:00Z`, `…00.123Z` or `…00+01:00`; nil for anything else.
    public static func parse(_ text: String) -> (micros: Int64, fractionDigits: Int)? {
        text.utf8.withContiguousStorageIfAvailable { parse(bytes: $0) }
            ?? Array(text.utf8).withUnsafeBufferPointer { parse(bytes: $0) }
    }

    private static func parse(bytes c: UnsafeBufferPointer<UInt8>) -> (micros: Int64, fractionDigits: Int)? {
        guard c.count >= 20, c[4] == 0x2D, c[7] == 0x2D, c[10] == 0x54 || c[10] == 0x74, c[13] == 0x3A, c[16] == 0x3A
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard (0x30...0x39).contains(c[i]) else { return nil }
                value = value * 10 + Int(c[i] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction = 0
        var digits = 0
        if index < c.count, c[index] == 0x2E {
            index += 1
            while index < c.count, (0x30...0x39).contains(c[index]) {
                if digits < 6 { fraction = fraction * 10 + Int(c[index] - 0x30) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
        }
        var micros = Int64(fraction)
        for _ in min(digits, 6)..<6 { micros *= 10 }
        var offset = 0
        guard index < c.count else { return nil }
        switch c[index] {
        case 0x5A, 0x7A:
            index += 1
        case 0x2B, 0x2D:
            guard index + 6 == c.count, c[index + 3] == 0x3A, let h = number(index + 1..<index + 3),
                let m = number(index + 4..<index + 6)
            else { return nil }
            offset = (h * 60 + m) * 60 * (c[index] == 0x2B ? 1 : -1)
            index += 6
        default:
            return nil
        }
        guard index == c.count else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offset)
        return (seconds * 1_000_000 + micros, digits)
    }

    /// UTC, with milliseconds when `fractionDigits` > 0.
    public static func format(_ micros: Int64, fractionDigits: Int) -> String {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let remainder = micros - seconds * 1_000_000
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let secondOfDay = Int(seconds - Int64(days) * 86_400)
        let (year, month, day) = civilFromDays(days)
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        var text =
            "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
        if fractionDigits > 0 { text += "." + pad(Int(remainder / 1000), 3) }
        return text + "Z"
    }

    // Howard Hinnant's civil-date algorithms.
    static func daysFromCivil(_ y: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y - 1 : y
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z: Int) -> (Int, Int, Int) {
        let z = z + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
