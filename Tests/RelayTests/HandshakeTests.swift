import Testing

@testable import Relay

@Suite("Handshake")
struct HandshakeTests {
    @Test(
        "recorded paths keep parameter names but never their values",
        arguments: [
            ("/ocpp/CP1", "/ocpp/CP1"),
            ("/ocpp/CP1?token=s3cret", "/ocpp/CP1?token=redacted"),
            ("/ocpp/CP1?a=1&flag&b=x%3Dy", "/ocpp/CP1?a=redacted&flag&b=redacted"),
            ("/ocpp/CP1?", "/ocpp/CP1?"),
        ]
    )
    func recordablePath(uri: String, recorded: String) {
        #expect(Handshake.recordablePath(uri) == recorded)
    }
}
