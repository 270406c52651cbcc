import Foundation
import Hummingbird
import OCPP

/// Responses of the console: JSON, the pages and their assets.
enum ConsoleResponses {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static let jsonType = "application/json; charset=utf-8"

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        asset(Array((try? encoder.encode(value)) ?? Data("{}".utf8)), type: jsonType, status: status)
    }

    /// JSON built as a tree (the frames' and recordings' own, kept as they are).
    static func json(_ value: JSONValue) -> Response {
        asset(Array(value.jsonText.utf8), type: jsonType)
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        asset(Array(text.utf8), type: "text/html; charset=utf-8", status: status)
    }

    static func asset(_ bytes: [UInt8], type: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The console's pages, built into the binary.
enum ConsoleAssets {
    static let page = PackageResources.console_html
    static let script = PackageResources.console_js
    static let style = PackageResources.console_css

    /// The login form: self-contained (the console's own files need a login), and working without script; after a
    /// failed login it says so (never which of the two was wrong).
    static func loginPage(failed: Bool = false) -> String {
        let said =
            failed
            ? #"<p id="login-error" role="alert" style="color: #b3261e">Wrong user name or password.</p>"# : ""
        return loginForm.replacingOccurrences(of: "<!-- said -->", with: said)
    }

    private static let loginForm = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>ocpp-relay console: log in</title>
        <meta name="viewport" content="width=device-width, initial-scale=1"></head>
        <body style="font-family: system-ui, sans-serif; max-width: 22rem; margin: 4rem auto; color: #1d2733">
        <h1 style="font-size: 1.3rem">ocpp-relay console</h1>
        <p>This console shows charger traffic: log in.</p>
        <!-- said -->
        <form method="post" action="/api/login">
        <p><label>User<br><input name="user" autocomplete="username" required autofocus></label></p>
        <p><label>Password<br><input name="password" type="password" autocomplete="current-password" required></label></p>
        <p><button type="submit">Log in</button></p>
        </form></body></html>
        """
}
