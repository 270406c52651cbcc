import Crypto
import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOPosix
import Relay
import RelayConfig
import RelayRecording

/// Who may use the console: users log in with a password (`console.users`, checked off the event loop) and get a
/// session cookie that expires; scripts send the bearer token from `console.token_env`. Everything else gets 401.
final class ConsoleAuth: Sendable {
    static let cookieName = "ocpp_relay_console"
    /// At most this many sessions at once; the oldest go first.
    static let sessionsKept = 1000

    private let settings: ConsoleSettings
    private let secure: Bool
    /// Sessions by cookie: their user and when they expire (nanoseconds on the relay's monotonic clock).
    private let sessions = NIOLockedValueBox<[String: (user: String, expires: UInt64)]>([:])
    private let clock: RelayClock
    /// Logins being checked: a few at a time, so that a flood of guesses cannot take the CPU (each costs a PBKDF2).
    private let checking = NIOLockedValueBox(0)
    static let concurrentLogins = 4

    init(settings: ConsoleSettings, secure: Bool, clock: RelayClock) {
        self.settings = settings
        self.secure = secure
        self.clock = clock
    }

    /// The user a request is from, if its credentials hold: the session cookie, or the bearer token.
    func user(of request: Request) -> String? {
        if let token = Self.bearer(request.headers[.authorization]), let expected = settings.token,
            Self.constantTimeEqual(token, expected)
        {
            return "token"
        }
        guard let id = request.cookies[Self.cookieName]?.value else { return nil }
        let now = clock.monotonic()
        return sessions.withLockedValue { sessions in
            guard let session = sessions[id] else { return nil }
            guard session.expires > now else {
                sessions[id] = nil
                return nil
            }
            return session.user
        }
    }

    /// Whether a login may be checked now; ``loginChecked()`` when it is done.
    func startLogin() -> Bool {
        checking.withLockedValue { count in
            guard count < Self.concurrentLogins else { return false }
            count += 1
            return true
        }
    }

    func loginChecked() {
        checking.withLockedValue { $0 -= 1 }
    }

    /// Checks a login (PBKDF2 on the thread pool) and opens a session: its cookie, or `nil`.
    func login(user: String, password: String) async -> Cookie? {
        // An unknown user costs the same work as a known one, so that timing does not tell which users exist.
        let hash = settings.users[user] ?? Self.decoy
        let verified = (try? await NIOThreadPool.singleton.runIfActive { hash.verify(password) }) ?? false
        guard settings.users[user] != nil else { return nil }
        guard verified else { return nil }
        let id = Self.randomToken()
        let lifetime = settings.sessionLifetime
        sessions.withLockedValue { sessions in
            let now = clock.monotonic()
            sessions = sessions.filter { $0.value.expires > now }
            if sessions.count >= Self.sessionsKept,
                let oldest = sessions.min(by: { $0.value.expires < $1.value.expires })
            {
                sessions[oldest.key] = nil
            }
            let (seconds, attoseconds) = lifetime.components
            sessions[id] = (user, now + UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000))
        }
        return Cookie(
            name: Self.cookieName,
            value: id,
            maxAge: Int(lifetime.components.seconds),
            path: "/",
            secure: secure,
            httpOnly: true,
            sameSite: .strict
        )
    }

    /// Ends the request's session; the cookie that clears it.
    func logout(_ request: Request) -> Cookie {
        if let id = request.cookies[Self.cookieName]?.value {
            _ = sessions.withLockedValue { $0.removeValue(forKey: id) }
        }
        return Cookie(
            name: Self.cookieName,
            value: "",
            maxAge: 0,
            path: "/",
            secure: secure,
            httpOnly: true,
            sameSite: .strict
        )
    }

    private static let decoy = PasswordHash.make(password: randomToken())

    private static func bearer(_ header: String?) -> String? {
        guard let header, header.lowercased().hasPrefix("bearer ") else { return nil }
        return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(SHA256.hash(data: Array(a.utf8)))
        let y = Array(SHA256.hash(data: Array(b.utf8)))
        var difference: UInt8 = 0
        for (p, q) in zip(x, y) { difference |= p ^ q }
        return difference == 0
    }

    private static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}

/// Lets through only requests with credentials (and the login itself); the others get 401, the console's page a
/// login form with it.
struct ConsoleAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let auth: ConsoleAuth

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        if request.uri.path == "/api/login" && request.method == .post || auth.user(of: request) != nil {
            response = try await next(request, context)
        } else if request.uri.path == "/" {
            response = ConsoleResponses.html(ConsoleAssets.loginPage(), status: .unauthorized)
        } else {
            response = ConsoleResponses.json(["error": "authentication required"], status: .unauthorized)
            response.headers[.wwwAuthenticate] = #"Bearer realm="ocpp-relay console""#
        }
        response.headers[.cacheControl] = "no-store"
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("Content-Security-Policy")!] =
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        return response
    }
}
