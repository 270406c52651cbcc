import OCPP
import Testing

@Suite("Charge point identity")
struct ChargePointIdentityTests {
    @Test("the last path segment, percent-decoded, with any prefix")
    func parse() throws {
        let (prefix, id) = try ChargePointIdentity.parse(
            requestTarget: "/steve/websocket/CentralSystemService/CP%2001?token=1"
        )
        #expect(prefix == "/steve/websocket/CentralSystemService")
        #expect(id.value == "CP 01")
        #expect(try ChargePointIdentity.parse(requestTarget: "/ocpp/CP-7").identity.value == "CP-7")
        #expect(try ChargePointIdentity.parse(requestTarget: "/CP1").identity.value == "CP1")
    }

    @Test("re-encoding escapes everything that could change the upstream path")
    func encode() throws {
        #expect(try ChargePointIdentity("../../etc/passwd").pathSegment == "..%2F..%2Fetc%2Fpasswd")
        #expect(try ChargePointIdentity("..").pathSegment == "%2E%2E")
        #expect(try ChargePointIdentity("a b?c#d%").pathSegment == "a%20b%3Fc%23d%25")
        #expect(try ChargePointIdentity("Zähler").pathSegment == "Z%C3%A4hler")
        #expect(try ChargePointIdentity("CP_01-a.b~").pathSegment == "CP_01-a.b~")
    }

    @Test(
        "hostile identities are refused with a reason",
        arguments: [
            ("/ocpp/", IdentityError.Code.empty),
            ("/ocpp//", .empty),
            ("/ocpp/CP-7/", .empty),
            ("/ocpp/%00", .controlCharacter),
            ("/ocpp/a%0Ab", .controlCharacter),
            ("/ocpp/%zz", .invalidEncoding),
            ("/ocpp/%4", .invalidEncoding),
            ("/ocpp/%FF%FE", .invalidEncoding),
            ("noslash", .empty),
        ]
    )
    func hostile(target: String, code: IdentityError.Code) {
        #expect {
            try ChargePointIdentity.parse(requestTarget: target)
        } throws: { error in
            (error as? IdentityError)?.code == code
        }
    }

    @Test("a 300-character identity is accepted as data; a 2000-byte one is refused")
    func length() throws {
        let long = String(repeating: "x", count: 300)
        #expect(try ChargePointIdentity.parse(requestTarget: "/ocpp/" + long).identity.value == long)
        #expect(throws: IdentityError.self) {
            try ChargePointIdentity.parse(requestTarget: "/ocpp/" + String(repeating: "y", count: 2000))
        }
    }
}
