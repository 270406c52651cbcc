import OCPP
import Testing

@Suite("JSON parser")
struct JSONParserTests {
    @Test(
        "rejects what RFC 8259 rejects",
        arguments: [
            "01", "1.", ".5", "-", "1e", "+1", "[1,]", "{\"a\":1,}", "{a:1}", "'x'", "\"\\x\"", "\"\u{01}\"",
            "\"\\ud800\"", "tru", "nul", "[1 2]", "{\"a\" 1}", "\"unterminated", "[1]x", "NaN", "Infinity",
        ]
    )
    func rejects(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test("accepts surrogate pairs and keeps duplicate keys")
    func accepts() throws {
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == .string("😀"))
        let object = try JSONParser.parse(#"{"a":1,"a":2}"#)
        guard case .object(let members) = object else {
            Issue.record("expected an object")
            return
        }
        #expect(members.count == 2)
    }

    @Test("bounds nesting depth instead of recursing without end")
    func depth() throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { try JSONParser.parse(fine) }
    }

    @Test("invalid UTF-8 inside a string is an error, not a crash")
    func invalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }
}
