import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A PostgreSQL server of the benchmark's own (Debian's `postgresql`), on loopback in a temporary folder, for
/// the relay's shared translation state. PostgreSQL refuses to run as root: as root it runs as `postgres`.
final class BenchPostgres {
    let directory: String
    let port: Int
    private let asUser: [String]
    static let password = "ocpp-relay-bench"
    static let passwordVariable = "OCPP_RELAY_BENCH_DB_PASSWORD"

    var url: String { "postgresql://relay@127.0.0.1:\(port)/relay?sslmode=disable" }

    /// The server, or `nil` when PostgreSQL is not installed.
    static func start() throws -> BenchPostgres? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted().last,
            FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/initdb")
        else { return nil }
        return try BenchPostgres(bin: "/usr/lib/postgresql/\(version)/bin")
    }

    private let bin: String

    private init(bin: String) throws {
        self.bin = bin
        directory = ProxyProcess.temporaryDirectory("postgres")
        port = ProxyProcess.freePort()
        if geteuid() == 0 {
            try FileManager.default.setAttributes(
                [.ownerAccountName: "postgres", .posixPermissions: 0o700],
                ofItemAtPath: directory
            )
            asUser = ["/usr/sbin/runuser", "-u", "postgres", "--"]
        } else {
            asUser = []
        }
        let data = "\(directory)/data"
        try run("\(bin)/initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256")
        try run(
            "\(bin)/pg_ctl",
            "-D",
            data,
            "-l",
            "\(directory)/log",
            "-w",
            "-t",
            "60",
            "-o",
            "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1",
            "start"
        )
        try sql("CREATE ROLE relay LOGIN PASSWORD '\(Self.password)'")
        try sql("CREATE DATABASE relay OWNER relay")
    }

    /// A statement as the server's superuser, through its socket.
    private func sql(_ statement: String) throws {
        try run("/usr/bin/psql", "-h", directory, "-p", "\(port)", "-U", "postgres", "-d", "postgres", "-qc", statement)
    }

    private func run(_ arguments: String...) throws {
        // system(3), not Process: a child whose own child (the server) lives on is not always reaped by
        // Foundation's Process on Linux. The arguments are the benchmark's own, quoted for the shell.
        let errorsPath = "\(directory)-\(UUID().uuidString).err"
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let quoted = (asUser + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let status = system(quoted.joined(separator: " ") + " >/dev/null 2>'\(errorsPath)' </dev/null")
        guard status == 0 else {
            let said = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
            throw BenchError("\(arguments[0]) failed (\(status)): \(said)")
        }
    }

    /// CPU seconds of the server: the postmaster and its processes (a backend per relay connection).
    var cpuSeconds: Double {
        guard let text = try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ Int32($0) })
        else { return 0 }
        return ProcStat.family(pid).map(ProcStat.cpuSeconds).reduce(0, +)
    }

    func stop() {
        try? run("\(bin)/pg_ctl", "-D", "\(directory)/data", "-m", "immediate", "-w", "stop")
        try? FileManager.default.removeItem(atPath: directory)
    }
}
