import Foundation

/// Where the database is (`postgresql://USER@HOST[:PORT]/DB[?sslmode=disable|prefer|require|verify-full]`).
public struct PostgresLocation: Sendable, Equatable {
    public var user: String
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: String

    public init(url: String) throws(ConfigurationError) {
        guard let components = URLComponents(string: url),
            ["postgresql", "postgres"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else {
            throw ConfigurationError("translation.state: write postgresql://USER@HOST[:PORT]/DATABASE, not \(url)")
        }
        if components.password != nil {
            throw ConfigurationError(
                "translation.state: no password in the URL; name its environment variable in translation.state_password_env"
            )
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw ConfigurationError("translation.state: \(url) names no database") }
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(mode) else {
            throw ConfigurationError(
                "translation.state: sslmode \(mode) (disable, prefer, require, verify-ca, verify-full)"
            )
        }
        self.user = user
        self.host = host
        self.port = components.port ?? 5432
        self.database = database
        self.sslMode = mode
    }

    /// The URL without secrets (there are none in it), for logs and errors.
    public var description: String { "postgresql://\(user)@\(host):\(port)/\(database)?sslmode=\(sslMode)" }
}
