import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Wall-clock times as microseconds since the Unix epoch, and their RFC 3339 spelling.
public enum Timestamp {
    /// Now, in microseconds since the Unix epoch.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
    }

    /// `2026-11-27T06:15:00.123Z` (UTC, milliseconds).
    public static func rfc3339(_ micros: UInt64) -> String {
        let (date, time) = components(micros)
        let millis = Int(micros / 1_000 % 1_000)
        return "\(date)T\(time).\(pad(millis, 3))Z"
    }

    /// `20261127T061500Z`, for file names.
    public static func compact(_ micros: UInt64) -> String {
        let (date, time) = components(micros)
        return date.replacingOccurrences(of: "-", with: "") + "T" + time.replacingOccurrences(of: ":", with: "") + "Z"
    }

    /// Parses `2026-11-27T06:15:00Z`, optionally with a fraction (`.123Z`); UTC only.
    public static func parse(rfc3339 text: String) -> UInt64? {
        let chars = Array(text.utf8)
        guard chars.count >= 20, chars.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(chars[i]) else { return nil }
                value = value * 10 + Int(chars[i] - UInt8(ascii: "0"))
            }
            return value
        }
        guard chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"), chars[10] == UInt8(ascii: "T"),
            chars[13] == UInt8(ascii: ":"), chars[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900)
        t.tm_mon = Int32(month - 1)
        t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour)
        t.tm_min = Int32(minute)
        t.tm_sec = Int32(second)
        let seconds = timegm(&t)
        guard seconds >= 0 else { return nil }
        var micros = UInt64(seconds) * 1_000_000
        if chars[19] == UInt8(ascii: ".") {
            let digits = chars[20..<(chars.count - 1)]
            guard !digits.isEmpty, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
            else { return nil }
            let padded = Array((Array(digits) + Array("000000".utf8)).prefix(6))
            micros += UInt64(String(decoding: padded, as: UTF8.self)) ?? 0
        } else if chars.count != 20 {
            return nil
        }
        return micros
    }

    private static func components(_ micros: UInt64) -> (String, String) {
        var seconds = time_t(micros / 1_000_000)
        var t = tm()
        gmtime_r(&seconds, &t)
        let date = "\(pad(Int(t.tm_year) + 1900, 4))-\(pad(Int(t.tm_mon) + 1, 2))-\(pad(Int(t.tm_mday), 2))"
        let time = "\(pad(Int(t.tm_hour), 2)):\(pad(Int(t.tm_min), 2)):\(pad(Int(t.tm_sec), 2))"
        return (date, time)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
