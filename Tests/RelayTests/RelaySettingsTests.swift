import Foundation
import OCPP
import OCPPTransport
import Relay
import RelayRecording
import Testing

@testable import RelayConfig

@Suite("Settings")
struct RelaySettingsTests {
    @Test("a YAML file with every key resolves, units included")
    func yaml() throws {
        let settings = try RelaySettings.parse(
            yaml: """
                # relay.yaml
                listen: "0.0.0.0:9000"
                upstream: ws://backend.example:8080/steve/websocket/CentralSystemService/
                upstream_version: passthrough
                recordings:
                  directory: /var/lib/ocpp-relay
                  roll_size: 16MiB
                  roll_age: 30m
                  retention: 14d
                  compression_level: 9
                limits:
                  max_frame_size: 2MiB
                  max_connections: 5000
                timeouts:
                  upstream: 2500ms
                  close: 3s
                  shutdown: 4
                  handshake: 15s
                  ping: 45s
                event_loops: 2
                log_level: debug
                tls:
                  certificate: /etc/ocpp-relay/relay.pem
                  key: /etc/ocpp-relay/relay.key
                  client_ca: /etc/ocpp-relay/chargers-ca.pem
                upstream_tls:
                  ca: /etc/ocpp-relay/csms-ca.pem
                allow: [CP-1, "glob:ALF-*"]
                auth:
                  forward_authorization: false
                """
        )
        let c = try settings.resolve()
        #expect(c.listenHost == "0.0.0.0" && c.listenPort == 9000)
        #expect(c.upstream.host == "backend.example" && c.upstream.port == 8080)
        #expect(c.upstream.basePath == "/steve/websocket/CentralSystemService")
        #expect(c.upstreamVersion == nil)
        #expect(c.recording.directory == "/var/lib/ocpp-relay")
        #expect(c.recording.rollBytes == 16 << 20)
        #expect(c.recording.rollAge == .seconds(1800))
        #expect(c.recording.retention == .seconds(14 * 86_400))
        #expect(c.recording.compressionLevel == 9)
        #expect(c.maxFrameBytes == 2 << 20)
        #expect(c.maxConnections == 5000)
        #expect(c.upstreamTimeout == .milliseconds(2500))
        #expect(c.closeTimeout == .seconds(3))
        #expect(c.shutdownTimeout == .seconds(4))
        #expect(c.handshakeTimeout == .seconds(15))
        #expect(c.pingInterval == .seconds(45))
        #expect(c.eventLoops == 2)
        #expect(
            c.listenerTLS
                == ListenerTLS(
                    certificate: "/etc/ocpp-relay/relay.pem",
                    key: "/etc/ocpp-relay/relay.key",
                    clientCA: "/etc/ocpp-relay/chargers-ca.pem",
                    checkIdentity: true
                )
        )
        #expect(c.upstreamTLS?.ca == "/etc/ocpp-relay/csms-ca.pem" && c.upstreamTLS?.certificate == nil)
        #expect(c.access.isAllowed("ALF-9") && !c.access.isAllowed("CP-2"))
        #expect(!c.access.forwardAuthorization && c.access.passwords == nil)
    }

    @Test("flags override the file, field by field")
    func overrides() throws {
        let file = try RelaySettings.parse(
            yaml:
                "upstream: ws://a:1/x\nlisten: 127.0.0.1:1\nrecordings:\n  directory: fromfile\n  retention: forever\n"
        )
        let flags = RelaySettings(["listen": "127.0.0.1:2", "recordings.directory": "fromflag"])
        let c = try file.overridden(by: flags).resolve()
        #expect(c.listenPort == 2)
        #expect(c.upstream.host == "a")
        #expect(c.recording.directory == "fromflag")
        #expect(c.recording.retention == nil)
    }

    @Test("a flag and a file key that meet are both checked: a bad file value behind a flag is still an error")
    func shadowedChecked() throws {
        let flags = RelaySettings(["upstream": "ws://b:2/y", "limits.max_frame_size": "2MiB"])
        let bad = try RelaySettings.parse(yaml: "upstream: {reconnect_grace: banana}\n")
        #expect(throws: ConfigurationError.self) { try bad.overridden(by: flags).resolve() }
        let badSize = try RelaySettings.parse(yaml: "upstream: ws://a:1/x\nlimits:\n  max_frame_size: lots\n")
        do {
            _ = try badSize.overridden(by: flags).resolve()
            Issue.record("a bad limits.max_frame_size behind --max-frame-size was accepted")
        } catch {
            #expect(error.message.contains("max_frame_size") && error.message.contains("a flag overrides it"))
        }
        let good = try RelaySettings.parse(yaml: "upstream: ws://a:1/x\nlimits:\n  max_frame_size: 512KiB\n")
        let c = try good.overridden(by: flags).resolve()
        #expect(c.upstream.host == "b" && c.maxFrameBytes == 2 << 20)
    }

    @Test("defaults: pass-through, 1 MiB frames, Recordings/")
    func defaults() throws {
        let c = try RelaySettings(["upstream": "ws://127.0.0.1:9000"]).resolve()
        #expect(c.upstreamVersion == nil)
        #expect(c.maxFrameBytes == 1 << 20)
        #expect(c.recording.directory == "Recordings")
        #expect(c.listenHost == "127.0.0.1" && c.listenPort == 8180)
        #expect(c.upstream.path(for: try .init("CP 1")) == "/CP%201")
        #expect(!c.compressChargers && !c.compressUpstream && c.compressionWindowBits == 12)
        let compressed = try RelaySettings.parse(
            yaml: "upstream: ws://a:1\ncompression:\n  chargers: accept\n  upstream: offer\n  window_bits: 10"
        ).resolve()
        #expect(compressed.compressChargers && compressed.compressUpstream && compressed.compressionWindowBits == 10)
    }

    @Test(
        "mistakes are named clearly",
        arguments: [
            ("listen: nope\nupstream: ws://a:1", "listen address 'nope'"),
            ("upstream: http://a:1", "only ws:// and wss://"),
            ("upstream: ws://user:pw@a:1", "must not carry credentials"),
            ("upstream: ws://a:99999", "invalid port"),
            ("upstream: ws://a:1\nupstream_version: 3.0", "must be 1.6, 2.0.1, 2.1 or passthrough"),
            ("upstream: ws://a:1\nrecordings:\n  roll_size: lots", "recordings.roll_size: 'lots' is not a size"),
            ("upstream: ws://a:1\nlimits:\n  max_frame_size: 10", "limits.max_frame_size: 10 is below"),
            ("upstream: ws://a:1\ntimeouts:\n  upstream: soon", "timeouts.upstream: 'soon' is not a duration"),
            ("upstream: ws://a:1\nevent_loops: 0", "event_loops must be 1 to 64"),
            ("upstream: ws://a:1\nlimits:\n  max_connections: 0", "limits.max_connections must be at least 1"),
            ("upstream: ws://a:1\ntimeouts:\n  ping: 10ms", "timeouts.ping must be 0 (off) or at least 50ms"),
            ("upstream: [1, 2]", "upstream"),
            ("listen: 1.2.3.4:5", "no upstream"),
            ("listen: 0.0.0.0:1\nupstream: ws://a:1", "listening on 0.0.0.0 without TLS"),
            ("upstream: ws://a:1\ntls:\n  certificate: c\n  key: k\n  client_identity: serial", "tls.client_identity"),
            ("upstream: ws://a:1\nupstream_tls:\n  certificate: c", "go together"),
            ("upstream: ws://a:1\nauth:\n  passwords:\n    CP-1: hunter2", "auth.passwords[CP-1]"),
            ("upstream: ws://a:1\nallow: []", "allow needs at least one"),
            ("upstream: ws://a:1\ntimeout:\n  upstream: 5s", "unknown setting 'timeout'"),
            (
                "upstream: ws://a:1\ntimeouts:\n  upstrem: 5s",
                "configuration:3: unknown setting 'timeouts.upstrem' (known here: call, close"
            ),
            (
                "upstream: ws://a:1\ntls:\n  certificate: c\n  key: k\n  cert_chain: x",
                "unknown setting 'tls.cert_chain'"
            ),
            (
                "upstream: ws://a:1\nroutes:\n  - chargers: [A]\n    upstream_verison: '1.6'",
                "unknown setting 'routes[1].upstream_verison'"
            ),
            ("upstream: ws://a:1\nevent_loops: many", "event_loops must be a whole number"),
            ("upstream: ws://a:1\ncompression:\n  chargers: offer", "compression.chargers must be accept or off"),
            ("upstream: ws://a:1\ncompression:\n  upstream: accept", "compression.upstream must be offer or off"),
            ("upstream: ws://a:1\ncompression:\n  window_bits: 16", "compression.window_bits must be 9 … 15"),
        ]
    )
    func mistakes(yaml: String, expected: String) {
        do {
            _ = try RelaySettings.parse(yaml: yaml).resolve()
            Issue.record("expected an error for \(yaml)")
        } catch {
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test("upstream URLs: IPv6, default ports, trailing slashes")
    func urls() throws {
        let v6 = try UpstreamURL("ws://[::1]:9000/ocpp/")
        #expect(v6.host == "::1" && v6.port == 9000 && v6.basePath == "/ocpp")
        #expect(v6.hostHeader == "[::1]:9000")
        let plain = try UpstreamURL("ws://backend")
        #expect(plain.port == 80 && plain.basePath == "" && plain.hostHeader == "backend")
        #expect(plain.url(for: try .init("../x")) == "ws://backend/..%2Fx")
    }

    @Test("upstream URL templates put the percent-encoded id where {id} is, trailing slash kept")
    func templates() throws {
        let steve = try UpstreamURL("ws://steve:8180/steve/websocket/CentralSystemService/{id}")
        #expect(steve.path(for: try .init("CP 1")) == "/steve/websocket/CentralSystemService/CP%201")
        let slash = try UpstreamURL("ws://csms.example/ws/ocpp/{id}/")
        #expect(slash.url(for: try .init("CP-7")) == "ws://csms.example/ws/ocpp/CP-7/")
        let twice = try UpstreamURL("ws://b/{id}/ocpp/{id}")
        #expect(twice.path(for: try .init("a/b")) == "/a%2Fb/ocpp/a%2Fb")
        // A plain URL keeps meaning <url>/{id}.
        #expect(try UpstreamURL("ws://b/ocpp/").path(for: try .init("X")) == "/ocpp/X")
        #expect(throws: UpstreamURL.Invalid.self) { try UpstreamURL("ws://b/ocpp/{charger}") }
    }
}

@Suite("Translation state")
struct TranslationStateSettingTests {
    @Test("translation.state is a SQLite file path: a URL, an empty text or a folder is a clear error")
    func statePath() throws {
        func resolve(_ state: String) throws -> RelayConfiguration {
            try RelaySettings.parse(
                yaml: "upstream: ws://b/ocpp\nupstream_version: '2.0.1'\ntranslation:\n  state: '\(state)'\n"
            ).resolve()
        }
        #expect(try resolve("/var/lib/ocpp-relay/state.sqlite").stateDatabase == "/var/lib/ocpp-relay/state.sqlite")
        for bad in ["postgresql://relay:secret@db:5432/ocpp", "", NSTemporaryDirectory()] {
            do {
                _ = try resolve(bad)
                Issue.record("\(bad) was accepted")
            } catch let error as ConfigurationError {
                #expect(error.message.hasPrefix("translation.state"))
                #expect(!error.message.contains("secret"))  // a URL's password is never repeated
            }
        }
    }
}

@Suite("Shipped configuration")
struct ShippedConfigurationTests {
    @Test("Config/relay.yaml documents every key and resolves")
    func shipped() throws {
        let root = repositoryRoot()
        let text = try String(contentsOf: root.appendingPathComponent("Config/relay.yaml"), encoding: .utf8)
        let documented = DocumentedKeys.paths(in: text)
        let known = RelaySettings.documentedKeys
        #expect(known.count >= 40, "\(known.sorted())")
        #expect(known.subtracting(documented).sorted() == [], "keys the relay reads that Config/relay.yaml omits")
        #expect(documented.subtracting(known).sorted() == [], "keys Config/relay.yaml shows that the relay ignores")
        let settings = try RelaySettings.load(path: root.appendingPathComponent("Config/relay.yaml").path)
        let configuration = try settings.resolve()
        #expect(configuration.upstreamVersion == nil)
        #expect(configuration.callTimeout == .seconds(30))
        #expect(configuration.mappingsDirectory == nil)  // the tables built into the binary
        #expect(settings["recordings.retention"] == "30d")
    }

    @Test("Config/production.yaml (the container's and the systemd unit's starting point) resolves: TLS, metrics")
    func production() throws {
        let root = repositoryRoot()
        let configuration = try RelaySettings.load(path: root.appendingPathComponent("Config/production.yaml").path)
            .resolve()
        #expect(configuration.listenHost == "0.0.0.0" && configuration.listenerTLS != nil)
        #expect(configuration.upstream.scheme == .wss && configuration.upstream.isTemplate)
        #expect(configuration.metricsListen?.host == "0.0.0.0" && configuration.metricsListen?.port == 9464)
        #expect(configuration.recording.directory == "/var/lib/ocpp-relay/recordings")
    }
}

@Suite("Routes")
struct RouteTests {
    @Test("first match wins: exact ids, globs, regexes; the rest take the default")
    func routes() throws {
        let configuration = try RelaySettings.parse(
            yaml: """
                upstream: ws://old/ocpp
                upstream_version: "1.6"
                routes:
                  - name: pilot
                    chargers: [CP-0001, "glob:ALF-*-??"]
                    upstream: ws://new/ocpp
                    upstream_version: "2.0.1"
                  - chargers: ["regex:^TEST-[0-9]+$", "glob:ALF-*"]
                    upstream_version: passthrough
                """
        ).resolve()
        #expect(configuration.translates)
        let pilot = configuration.route(for: "CP-0001")
        #expect(pilot.upstream.host == "new" && pilot.upstreamVersion == .v201)
        #expect(pilot.reason == "route pilot (matched CP-0001)")
        #expect(configuration.route(for: "ALF-7-AB").reason == "route pilot (matched glob:ALF-*-??)")
        #expect(configuration.route(for: "ALF-7-ABC").reason == "route #2 (matched glob:ALF-*)")
        let test = configuration.route(for: "TEST-42")
        #expect(test.upstream.host == "old" && test.upstreamVersion == nil)
        let other = configuration.route(for: "CP-0002")
        #expect(other.upstreamVersion == .v16 && other.reason == "no route matched: default upstream")
        #expect(configuration.route(for: "TEST-42x").reason == "no route matched: default upstream")
    }

    @Test("a broken route is named")
    func broken() {
        #expect(throws: ConfigurationError.self) {
            try RelaySettings.parse(yaml: "upstream: ws://a\nroutes:\n  - chargers: [\"regex:([\"]\n").resolve()
        }
        #expect(throws: ConfigurationError.self) {
            try RelaySettings.parse(yaml: "upstream: ws://a\nroutes:\n  - chargers: []\n").resolve()
        }
    }
}

/// The folder holding Package.swift (shipped files are read from the repository).
func repositoryRoot(_ file: String = #filePath) -> URL {
    var root = URL(fileURLWithPath: file)
    while !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
        root.deleteLastPathComponent()
    }
    return root
}

@Suite("Mirror settings")
struct MirrorSettingsTests {
    static let base = "upstream: ws://old:9000/ocpp\n"

    @Test("a route's mirrors replace the top-level ones; defaults fill the rest")
    func routeReplaces() throws {
        let configuration = try RelaySettings.parse(
            yaml: Self.base + """
                mirrors:
                  - name: new-csms
                    upstream: ws://new:9000/ocpp/{id}
                    upstream_version: "2.0.1"
                routes:
                  - name: pilot
                    chargers: [CP-1]
                    mirrors:
                      - name: energy
                        upstream: ws://energy:80/ocpp
                        mode: secondary
                        commands: [TriggerMessage]
                        charger_id: "EM-{id}"
                        queue: 5
                  - name: others
                    chargers: ["glob:*"]
                """
        ).resolve()
        let pilot = configuration.route(for: "CP-1").mirrors
        #expect(pilot.map(\.name) == ["energy"])
        #expect(pilot.first?.commands == ["TriggerMessage"] && pilot.first?.queue == 5)
        #expect(pilot.first?.identity(for: try ChargePointIdentity("CP-1")).value == "EM-CP-1")
        let others = configuration.route(for: "CP-2").mirrors
        #expect(others.map(\.name) == ["new-csms"] && others.first?.mode == .shadow && others.first?.queue == 1000)
        #expect(others.first?.upstreamVersion == .v201)
    }

    @Test(
        "bad mirrors are refused with the setting named",
        arguments: [
            ("  - name: Bad_Name\n    upstream: ws://x/ocpp\n", "a-z, 0-9 and -"),
            ("  - name: a\n    upstream: ws://x/ocpp\n  - name: a\n    upstream: ws://y/ocpp\n", "two mirrors"),
            ("  - name: a\n    upstream: ws://x/ocpp\n    commands: [Reset]\n", "a shadow sends no commands"),
            (
                "  - name: a\n    upstream: ws://x/ocpp\n    mode: secondary\n    commands: [Rest]\n",
                "not an OCPP action"
            ),
            ("  - name: a\n    upstream: ws://x/ocpp\n    mode: primary\n", "shadow or secondary"),
            ("  - name: a\n", "needs an upstream"),
            ("  - name: a\n    upstream: ws://x/ocpp\n    colour: red\n", "unknown setting"),
        ]
    )
    func refused(yaml: String, message: String) {
        #expect {
            _ = try RelaySettings.parse(yaml: Self.base + "mirrors:\n" + yaml).resolve()
        } throws: { error in
            "\(error)".contains(message)
        }
    }
}
