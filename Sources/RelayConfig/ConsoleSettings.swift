/// The console in the browser (`console.*`): off unless `console.listen` is set, and then only with credentials.
public struct ConsoleSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// User → password hash (`ocpp-relay auth hash`).
    public var users: [String: PasswordHash] = [:]
    /// A bearer token (from the environment variable `console.token_env` names), for scripts.
    public var token: String?
    /// How long a login lasts.
    public var sessionLifetime: Duration = .seconds(8 * 3600)
    /// Show idTokens as keyed pseudonyms (the replay's redaction), not as they are.
    public var redactTokens = false

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The settings are usable: somebody can log in.
    func check() throws(ConfigurationError) {
        guard !users.isEmpty || token != nil else {
            throw ConfigurationError(
                "console.listen needs credentials: console.users (hashes from `ocpp-relay auth hash`) or console.token_env"
            )
        }
    }
}
