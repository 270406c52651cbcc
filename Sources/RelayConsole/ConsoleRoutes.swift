import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import OCPP
import OCPPSchema
import Relay
import RelayConfig
import RelayRecording
import RelayTools

/// The console's pages and API.
struct ConsoleRoutes: Sendable {
    let relay: RelayServer
    let auth: ConsoleAuth
    let sampler: MetricsSampler
    let redaction: ConsoleRedaction

    /// How many entries of a charger's recorded history one request returns (the latest).
    static let historyKept = 5000

    func add(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in ConsoleResponses.asset(ConsoleAssets.page, type: "text/html; charset=utf-8") }
        router.get("/console.js") { _, _ in
            ConsoleResponses.asset(ConsoleAssets.script, type: "text/javascript; charset=utf-8")
        }
        router.get("/console.css") { _, _ in
            ConsoleResponses.asset(ConsoleAssets.style, type: "text/css; charset=utf-8")
        }
        router.post("/api/login") { request, context in try await login(request, context) }
        router.post("/api/logout") { request, _ in
            var response = Response(status: .seeOther, headers: [.location: "/"])
            response.setCookie(auth.logout(request))
            return response
        }
        router.get("/api/session") { request, _ in ConsoleResponses.json(["user": auth.user(of: request) ?? ""]) }
        router.get("/api/chargers") { request, _ in
            ConsoleResponses.json(try await chargers(all: request.uri.queryParameters.get("all") == "1"))
        }
        router.get("/api/chargers/{id}/events") { _, context in
            events(of: try Self.identity(context))
        }
        router.get("/api/chargers/{id}/history") { _, context in
            // Reading segments is file I/O: on the thread pool, not the server's threads.
            let identity = try Self.identity(context)
            return try await NIOThreadPool.singleton.runIfActive { try history(of: identity) }
        }
        router.get("/api/chargers/{id}") { _, context in
            ConsoleResponses.json(try await charger(try Self.identity(context)))
        }
        router.get("/api/mirrors") { _, _ in mirrors() }
        router.get("/api/verdicts") { _, _ in verdicts() }
        router.get("/api/relay") { _, _ in relayInfo() }
        router.get("/api/metrics") { _, _ in
            ConsoleResponses.json(sampler.all(now: relay.metricsText(), time: relay.clock.wallSeconds))
        }
    }

    /// The charger a request's `{id}` names: a percent-encoded path segment, decoded by the relay's own identity
    /// rules (as a charger's request path is), so that `CP 7/ä` is `CP%207%2F%C3%A4` in every URL.
    static func identity(_ context: BasicRequestContext) throws -> String {
        let segment = try context.parameters.require("id")
        do {
            return try ChargePointIdentity(pathSegment: segment).value
        } catch {
            throw HTTPError(.badRequest, message: "not a charger identity: \(error.message)")
        }
    }

    // MARK: Login

    private struct Login: Decodable {
        var user: String
        var password: String
    }

    /// A JSON body (scripts) or the login form (the browser, without script).
    private func login(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard auth.startLogin() else {
            return ConsoleResponses.json(["error": "too many logins at once; try again"], status: .tooManyRequests)
        }
        defer { auth.loginChecked() }
        let isForm = request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") ?? false
        let body = try await request.body.collect(upTo: 16 * 1024)
        let credentials: Login?
        if isForm {
            let fields =
                URLComponents(string: "?" + String(buffer: body).replacingOccurrences(of: "+", with: "%20"))?
                .queryItems ?? []
            let value = { (name: String) in fields.first { $0.name == name }?.value }
            credentials = value("user").flatMap { user in value("password").map { Login(user: user, password: $0) } }
        } else {
            credentials = try? JSONDecoder().decode(Login.self, from: Data(body.readableBytesView))
        }
        guard let credentials, let cookie = await auth.login(user: credentials.user, password: credentials.password)
        else {
            return isForm
                ? ConsoleResponses.html(ConsoleAssets.loginPage(failed: true), status: .unauthorized)
                : ConsoleResponses.json(["error": "wrong user or password"], status: .unauthorized)
        }
        var response =
            isForm
            ? Response(status: .seeOther, headers: [.location: "/"]) : ConsoleResponses.json(["user": credentials.user])
        response.setCookie(cookie)
        return response
    }

    // MARK: One charger

    /// The charger's frames as they happen (server-sent events), from a bounded buffer: a browser that cannot keep
    /// up loses the oldest and is told how many (`event: dropped`).
    private func events(of identity: String) -> Response {
        let hub = relay.console
        let redaction = self.redaction
        let full = "\(ConsoleHub.maximumWatchers) viewers watch already; close one"
        guard hub.canWatch else { return ConsoleResponses.json(["error": full], status: .serviceUnavailable) }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: .init { writer in
                // Registered only once the stream runs, so that a response never sent leaves no viewer behind.
                guard let watcher = hub.watch(identity) else {
                    try await writer.write(
                        ByteBuffer(string: "event: full\ndata: \(JSONValue.string(full).jsonText)\n\n")
                    )
                    try await writer.finish(nil)
                    return
                }
                defer { hub.stop(watcher) }
                var annotator = FrameAnnotator(redaction: redaction)
                var reported = 0
                try await writer.write(ByteBuffer(string: "retry: 2000\n: watching \(identity)\n\n"))
                for await event in watcher.events {
                    if event.kind == .keepalive {
                        try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
                        continue
                    }
                    let dropped = watcher.dropped
                    if dropped != reported {
                        try await writer.write(ByteBuffer(string: "event: dropped\ndata: {\"dropped\":\(dropped)}\n\n"))
                        reported = dropped
                    }
                    try await writer.write(ByteBuffer(string: "data: \(annotator.json(event).jsonText)\n\n"))
                }
                try await writer.finish(nil)
            }
        )
    }

    /// The charger's recorded connections (the latest entries of `recordings show --format jsonl`), frames redacted.
    private func history(of identity: String) throws -> Response {
        var printer = RecordingPrinter(format: .jsonl, charger: identity)
        var entries: [JSONValue] = []
        var annotator = FrameAnnotator(redaction: redaction)
        _ = try printer.print(path: relay.configuration.recording.directory) { line in
            guard var entry = try? JSONParser.parse(line) else { return }
            // A frame forwarded unchanged is printed on both legs; the console shows it once, marked forwarded, as
            // it does live.
            if let previous = entries.last, Self.isForwardedCopy(entry, of: previous) {
                entries[entries.count - 1].set("forwarded", .bool(true))
                return
            }
            if let text = entry["text"]?.stringValue {
                let frame = annotator.annotate(text, connection: entry["connection"]?.stringValue ?? "")
                entry.set("text", .string(frame.text))
                if let action = frame.action { entry.set("action", .string(action)) }
            }
            entries.append(entry)
            if entries.count > 2 * Self.historyKept { entries.removeFirst(Self.historyKept) }
        }
        return ConsoleResponses.json(.array(Array(entries.suffix(Self.historyKept))))
    }

    /// Whether `entry` is the second line `recordings show` prints for a frame forwarded unchanged: the same text at
    /// the same time, out on the other leg right after it came in.
    static func isForwardedCopy(_ entry: JSONValue, of previous: JSONValue) -> Bool {
        guard entry["dir"]?.stringValue == "out", previous["dir"]?.stringValue == "in",
            let leg = entry["leg"]?.stringValue, let previousLeg = previous["leg"]?.stringValue,
            Set([leg, previousLeg]) == ["charger", "upstream"], previous["forwarded"] == nil
        else { return false }
        return entry["text"] == previous["text"] && entry["time"] == previous["time"]
            && entry["connection"] == previous["connection"]
    }

    // MARK: Mirrors and the relay

    private func mirrors() -> Response {
        let tally = relay.console.mirrorReport
        var rows: [JSONValue] = []
        for (mirror, actions) in tally.counts.sorted(by: { $0.key < $1.key }) {
            for (action, counts) in actions.sorted(by: { $0.key < $1.key }) {
                var row = JSONValue.object([
                    (key: "mirror", value: .string(mirror)), (key: "action", value: .string(action)),
                ])
                for kind in MirrorOutcome.Kind.allCases { row.set(kind.rawValue, .int(counts[kind.rawValue] ?? 0)) }
                rows.append(row)
            }
        }
        let divergences: [JSONValue] = tally.divergences.reversed().map { divergence in
            let outcome = divergence.outcome
            return .object([
                (key: "charger", value: .string(divergence.identity)),
                (key: "connection", value: .int(Int(outcome.connection))),
                // The connection as recordings name it: the charger page opens it from there.
                (key: "recorded", value: .string("\(relay.runID)/\(outcome.connection)")),
                (key: "time", value: .string(Timestamp.rfc3339(outcome.time))),
                (key: "mirror", value: .string(outcome.mirror)),
                (key: "action", value: .string(outcome.action)),
                (key: "messageId", value: .string(outcome.messageID)),
                (
                    key: "differences",
                    value: .array(
                        outcome.differences.map {
                            .object([
                                (key: "path", value: .string($0.path)),
                                (key: "primary", value: .string(redaction.value($0.primary, at: $0.path))),
                                (key: "mirror", value: .string(redaction.value($0.mirror, at: $0.path))),
                            ])
                        }
                    )
                ),
            ])
        }
        return ConsoleResponses.json(
            JSONValue.object([(key: "rows", value: .array(rows)), (key: "divergences", value: .array(divergences))])
        )
    }

    /// The verdicts' grouping (as `recordings verdicts --format jsonl` prints it, with the examples' charger and time
    /// but not their text, which the console would have to redact) and the latest invalid frames.
    private func verdicts() -> Response {
        let board = relay.console.verdictReport
        let rows = board.tally.rows(reasons: 3, exampleTexts: false)
        let latest: [JSONValue] = board.latest.reversed().map { latest in
            .object([
                (key: "charger", value: .string(latest.charger)),
                (key: "recorded", value: .string("\(relay.runID)/\(latest.connection)")),
                (key: "time", value: .string(Timestamp.rfc3339(latest.verdict.time))),
                (key: "group", value: .string(latest.group.title)),
                (key: "leg", value: .string(latest.verdict.leg.rawValue)),
                (key: "action", value: .string(latest.verdict.action)),
                (key: "reasons", value: .array(latest.verdict.reasons.map { .string($0) })),
            ])
        }
        return ConsoleResponses.json(
            JSONValue.object([
                (key: "frames", value: .int(board.tally.frames)), (key: "invalid", value: .int(board.tally.invalid)),
                (key: "rows", value: .array(rows)), (key: "latest", value: .array(latest)),
            ])
        )
    }

    private func relayInfo() -> Response {
        let now = relay.clock.wall()
        let configuration = relay.configuration.consoleSummary.map { [$0.key, $0.value] }
        return ConsoleResponses.json(
            RelayInfo(
                runID: relay.runID,
                version: RelayVersion.current,
                startedAt: Timestamp.rfc3339(relay.startedAt),
                uptimeSeconds: Int((now - min(now, relay.startedAt)) / 1_000_000),
                configuration: configuration
            )
        )
    }

    private struct RelayInfo: Encodable {
        var runID: String
        var version: String
        var startedAt: String
        var uptimeSeconds: Int
        var configuration: [[String]]
    }
}

/// Frames as the console shows them: redacted, with their message type, id and action (an answer gets the action
/// of the call it answers, remembered per connection).
struct FrameAnnotator {
    let redaction: ConsoleRedaction
    private var actions: [String: String] = [:]

    init(redaction: ConsoleRedaction) {
        self.redaction = redaction
    }

    mutating func annotate(
        _ text: String,
        connection: String
    ) -> (text: String, type: Int?, id: String?, action: String?) {
        guard let frame = try? RPCFrame.parse(text) else { return (text, nil, nil, nil) }
        let key = connection + "/" + frame.messageID
        let action: String?
        let type: Int
        switch frame {
        case .call(let call):
            action = call.action
            type = 2
            if actions.count > 4096 { actions.removeAll() }
            actions[key] = call.action
        case .callResult:
            action = actions.removeValue(forKey: key)
            type = 3
        case .callError:
            action = actions.removeValue(forKey: key)
            type = 4
        default:
            action = nil
            type = 0
        }
        return (redaction.frame(text, action: action), type, frame.messageID, action)
    }

    mutating func json(_ event: ConsoleEvent) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            (key: "kind", value: .string(event.kind.rawValue)), (key: "sequence", value: .int(Int(event.sequence))),
            (key: "number", value: .int(Int(event.number))), (key: "time", value: .int(Int(event.time))),
            (key: "connection", value: .int(Int(event.connection))), (key: "leg", value: .string(event.leg)),
            (key: "direction", value: .string(event.direction)), (key: "forwarded", value: .bool(event.forwarded)),
        ]
        if let cause = event.cause { members.append((key: "cause", value: .int(Int(cause)))) }
        if event.recordedAt > 0 { members.append((key: "recordedAt", value: .int(Int(event.recordedAt)))) }
        guard event.kind == .frame else {
            members.append((key: "text", value: .string(event.text)))
            return .object(members)
        }
        let frame = annotate(event.text, connection: "\(event.connection)")
        members.append((key: "text", value: .string(frame.text)))
        if let type = frame.type { members.append((key: "messageType", value: .int(type))) }
        if let id = frame.id { members.append((key: "messageId", value: .string(id))) }
        if let action = frame.action { members.append((key: "action", value: .string(action))) }
        return .object(members)
    }
}
