import Testing

@testable import OCPPTranslation

@Suite("AuthorizationKey")
struct AuthorizationKeyTests {
    @Test("a password becomes 1.6 hex and back; lengths 1.6 cannot hold are refused, not cut")
    func roundTrip() throws {
        let hex = try AuthorizationKey.hex(of: "n3w-Secret-2026!").get()
        #expect(hex == "6E33772D5365637265742D3230323621")
        #expect(AuthorizationKey.password(fromHex: hex) == "n3w-Secret-2026!")
        #expect(AuthorizationKey.password(fromHex: hex.lowercased()) == "n3w-Secret-2026!")
        #expect(throws: Untranslatable.self) { try AuthorizationKey.hex(of: "short").get() }
        #expect(throws: Untranslatable.self) { try AuthorizationKey.hex(of: String(repeating: "x", count: 21)).get() }
        #expect(AuthorizationKey.password(fromHex: "abc") == nil)
        #expect(AuthorizationKey.password(fromHex: "zz") == nil)
        #expect(AuthorizationKey.password(fromHex: "ff") == nil, "not UTF-8")
    }
}
