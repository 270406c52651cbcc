import OCPP
import Testing

@Suite("JSON serialization")
struct JSONSerializationTests {
    @Test("strings: quotes, backslashes and control characters are escaped, everything else is copied as UTF-8")
    func escapes() throws {
        #expect(JSONValue.string("plain").jsonText == #""plain""#)
        #expect(
            JSONValue.string("a\"b\\c\nd\re\tf\u{08}g\u{0C}h\u{01}\u{1F}").jsonText
                == #""a\"b\\c\nd\re\tf\bg\fh\u0001\u001f""#
        )
        #expect(JSONValue.string("é😀/").jsonText == "\"é😀/\"")
        for text in [
            "", "\"", "\\", "x\u{0}y", "end\\", "ünï\u{7F}cödé \u{2028}", String(repeating: "ab\"", count: 100),
        ] {
            #expect(try JSONParser.parse(JSONValue.string(text).jsonText) == .string(text), "\(text)")
        }
    }

    @Test("a frame's members keep their order and numbers their text")
    func structure() throws {
        let value = JSONValue.object([
            (key: "z", value: .number("1.50")), (key: "a", value: .array([.bool(true), .null, .string("k\"")])),
            (key: "e", value: .object([])),
        ])
        #expect(value.jsonText == #"{"z":1.50,"a":[true,null,"k\""],"e":{}}"#)
    }
}
