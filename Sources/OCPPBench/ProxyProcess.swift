import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// CPU time and resident memory of processes, from /proc.
enum ProcStat {
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// utime + stime of a process, in seconds.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / ticksPerSecond
    }

    /// VmRSS in KiB.
    static func residentKiB(_ pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    /// The process and its children (nginx's workers).
    static func family(_ pid: Int32) -> [Int32] {
        var result = [pid]
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return result }
        for name in names {
            guard let child = Int32(name), child != pid,
                let text = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                let close = text.lastIndex(of: ")")
            else { continue }
            let fields = text[text.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == pid { result.append(child) }
        }
        return result
    }
}

/// A proxy under test, run as its own process: nginx, mitmproxy or the relay.
final class ProxyProcess {
    let name: String
    let process: Process
    let port: Int
    let directory: String

    init(name: String, process: Process, port: Int, directory: String) {
        self.name = name
        self.process = process
        self.port = port
        self.directory = directory
    }

    var pids: [Int32] { ProcStat.family(process.processIdentifier) }
    var cpuSeconds: Double { pids.map(ProcStat.cpuSeconds).reduce(0, +) }
    var residentKiB: Int { pids.map(ProcStat.residentKiB).reduce(0, +) }

    /// SIGTERM, then SIGKILL to the whole family if it is still there after `grace` seconds (mitmdump 11 does
    /// not exit on SIGTERM); never waits without a bound.
    func stop(grace: Double = 3) {
        if process.isRunning {
            let family = pids
            process.terminate()
            let deadline = Date().addingTimeInterval(grace)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                for pid in family { kill(pid, SIGKILL) }
                process.waitUntilExit()
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func waitForPort(_ port: Int, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(fd)
            if ok == 0 { return true }
            usleep(20_000)
        }
        return false
    }

    static func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "ocpp-bench-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// nginx as a plain WebSocket reverse proxy, with its own temporary configuration (never the system's).
    static func nginx(backendPort: Int, connections: Int) throws -> ProxyProcess {
        let directory = temporaryDirectory("nginx")
        let port = freePort()
        let config = """
            worker_processes 1;
            daemon off;
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log warn;
            worker_rlimit_nofile 20000;
            events { worker_connections \(max(1024, connections * 9 / 4 + 256)); }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                map $http_upgrade $connection_upgrade { default upgrade; '' close; }
                server {
                    listen 127.0.0.1:\(port) backlog=4096;
                    location / {
                        proxy_pass http://127.0.0.1:\(backendPort);
                        proxy_http_version 1.1;
                        proxy_set_header Upgrade $http_upgrade;
                        proxy_set_header Connection $connection_upgrade;
                        proxy_set_header Host $host;
                        proxy_read_timeout 3600s;
                        proxy_send_timeout 3600s;
                    }
                }
            }
            """
        try config.write(toFile: "\(directory)/nginx.conf", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try which("nginx", extra: ["/usr/sbin/nginx"]))
        process.arguments = ["-c", "\(directory)/nginx.conf", "-p", directory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard waitForPort(port) else { throw BenchError("nginx did not start (see \(directory)/error.log)") }
        return ProxyProcess(name: "nginx", process: process, port: port, directory: directory)
    }

    /// mitmproxy recording the traffic, as a user would run it.
    static func mitmproxy(backendPort: Int) throws -> ProxyProcess {
        let directory = temporaryDirectory("mitmproxy")
        let port = freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try which("mitmdump", extra: [".venv/bin/mitmdump"]))
        process.arguments = [
            "--mode", "reverse:http://127.0.0.1:\(backendPort)", "--listen-host", "127.0.0.1", "-p", "\(port)",
            "-w", "\(directory)/flows", "-q", "--set", "connection_strategy=lazy",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard waitForPort(port, seconds: 30) else { throw BenchError("mitmdump did not start") }
        return ProxyProcess(name: "mitmproxy", process: process, port: port, directory: directory)
    }

    /// The relay itself, recording; translating when `translate` is set.
    /// - Parameters:
    ///   - mirrorPort: set: a shadow mirror of the same version on that backend.
    ///   - upstreamVersion: "1.6": the backend is pinned to 1.6 (2.0.1 chargers are translated for it).
    ///   - journal: false: no write-ahead journal (each tick compressed and written on the event loop).
    ///   - verdicts: false: no frame judged against its schema (`validation.verdicts: 0`).
    static func relay(
        binary: String,
        backendPort: Int,
        translate: Bool,
        mappings: String?,
        mirrorPort: Int? = nil,
        upstreamVersion: String? = nil,
        sharedState: BenchPostgres? = nil,
        journal: Bool = true,
        verdicts: Bool = true,
        extraYAML: String = "",
        extraLimits: String = ""
    ) throws -> ProxyProcess {
        let relayName =
            sharedState != nil
            ? "relay-translating-pg"
            : translate
                ? "relay-translating"
                : mirrorPort != nil ? "relay-mirrored" : upstreamVersion != nil ? "relay-reverse" : "relay"
        let name = relayName + (journal ? "" : "-on-loop") + (verdicts ? "" : "-unjudged")
        let directory = temporaryDirectory(name)
        let port = freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        // The bench's chargers send far more than a real one: no per-charger rate limit (nginx has none either).
        let config = "\(directory)/relay.yaml"
        var yaml = "limits:\n  messages_per_second: 0\n" + extraLimits
        if !journal { yaml += "recordings:\n  journal_size: 0\n" }
        if !verdicts { yaml += "validation:\n  verdicts: 0\n" }
        yaml += extraYAML
        if let sharedState {
            yaml +=
                "translation:\n  state: \(sharedState.url)\n  state_password_env: \(BenchPostgres.passwordVariable)\n"
            process.environment = ProcessInfo.processInfo.environment.merging(
                [BenchPostgres.passwordVariable: BenchPostgres.password],
                uniquingKeysWith: { _, new in new }
            )
        }
        if let mirrorPort {
            yaml += "mirrors:\n  - name: shadow\n    upstream: ws://127.0.0.1:\(mirrorPort)/ocpp\n    mode: shadow\n"
        }
        _ = FileManager.default.createFile(atPath: config, contents: Data(yaml.utf8))
        var arguments = [
            "serve", "--listen", "127.0.0.1:\(port)", "--upstream", "ws://127.0.0.1:\(backendPort)/ocpp",
            "--recordings", "\(directory)/recordings", "--log-level", "error", "--config", config,
        ]
        if translate { arguments += ["--upstream-version", "2.0.1"] + (mappings.map { ["--mappings", $0] } ?? []) }
        if let upstreamVersion {
            arguments += ["--upstream-version", upstreamVersion] + (mappings.map { ["--mappings", $0] } ?? [])
        }
        process.arguments = arguments
        let log = "\(directory)/relay.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log) ?? FileHandle.nullDevice
        try process.run()
        guard waitForPort(port) else {
            if process.isRunning { process.terminate() }
            let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw BenchError("the relay did not start: \(said.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return ProxyProcess(
            name: name,
            process: process,
            port: port,
            directory: directory
        )
    }

    static func which(_ command: String, extra: [String]) throws -> String {
        let paths =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/\(command)" } + extra
        guard let found = paths.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BenchError("\(command) is not installed")
        }
        return found
    }
}

/// The benchmark could not run a part.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
