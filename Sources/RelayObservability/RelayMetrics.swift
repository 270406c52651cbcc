import NIOCore
import OCPP
import Prometheus

/// What the relay counts, in Prometheus form (served by ``ObservabilityServer`` on `metrics.listen`).
///
/// Every label value comes from a bounded set (OCPP's actions, HTTP statuses, fixed reasons), so a peer cannot
/// create time series by inventing names. Metrics on the frame path are made once, up front, and looked up by
/// index: a forwarded frame costs an atomic increment, not a registry lookup.
public final class RelayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    private let connected: Gauge
    private let accepted: Counter
    private let tlsFailures: Counter
    private let recordingBytes: Counter
    private let recordingWriteErrors: Counter
    private let recordingLostFrames: Counter
    private let recordingFailing: Gauge
    /// Calls by direction and action (`OCPPAction.all`, then one slot for actions OCPP does not define).
    private let calls: [[Counter]]
    /// Results and errors by direction and the action of the call they answer (same layout), then by kind.
    private let answers: [[[Counter]]]
    /// Frames that are not OCPP RPC frames (or not scannable), by direction.
    private let other: [Counter]
    /// From a CALL forwarded to its answer, by who answered.
    private let callDuration: [DurationHistogram]

    static let directions = ["charger_to_upstream", "upstream_to_charger"]

    /// `ocpp_relay_<name>_<unit>` with its help text.
    private static func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ocpp_relay", metricName: name, unitName: unit, helpText: help)
    }

    /// A counter whose labels are known only when it is counted (off the frame path): the registry returns the
    /// same counter for the same name and labels.
    private func counter(_ name: String, _ help: String, labels: [(String, String)] = []) -> Counter {
        registry.makeCounter(descriptor: Self.descriptor(name, "total", help), labels: labels)
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let descriptor = Self.descriptor
        connected = registry.makeGauge(descriptor: descriptor("connected_chargers", "", "Chargers relayed now."))
        accepted = registry.makeCounter(
            descriptor: descriptor("connections_accepted", "total", "Charger connections relayed.")
        )
        tlsFailures = registry.makeCounter(
            descriptor: descriptor("tls_handshake_failures", "total", "TLS handshakes with chargers that failed.")
        )
        recordingBytes = registry.makeCounter(
            descriptor: descriptor("recording_written_bytes", "total", "Compressed bytes written to recordings.")
        )
        recordingLostFrames = registry.makeCounter(
            descriptor: descriptor(
                "recording_lost_frames",
                "total",
                "Frames forwarded but not recorded because the recordings could not be written."
            )
        )
        recordingFailing = registry.makeGauge(
            descriptor: descriptor("recording_failing", "", "1 while the recordings cannot be written, else 0.")
        )
        recordingWriteErrors = registry.makeCounter(
            descriptor: descriptor("recording_write_errors", "total", "Failed writes to recordings.")
        )
        let messages = descriptor("messages", "total", "OCPP messages relayed, by direction, type and action.")
        let actions = OCPPAction.all + ["other"]
        calls = Self.directions.map { direction in
            actions.map { action in
                registry.makeCounter(
                    descriptor: messages,
                    labels: [("direction", direction), ("type", "call"), ("action", action)]
                )
            }
        }
        answers = Self.directions.map { direction in
            ["result", "error"].map { type in
                (actions + ["unmatched"]).map { action in
                    registry.makeCounter(
                        descriptor: messages,
                        labels: [("direction", direction), ("type", type), ("action", action)]
                    )
                }
            }
        }
        other = Self.directions.map { direction in
            registry.makeCounter(
                descriptor: messages,
                labels: [("direction", direction), ("type", "other"), ("action", "")]
            )
        }
        let buckets: [Duration] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
            .seconds(30),
        ]
        callDuration = ["upstream", "charger"].map { answeredBy in
            registry.makeDurationHistogram(
                descriptor: descriptor(
                    "call_duration",
                    "seconds",
                    "From a call relayed to its answer, by who answered."
                ),
                labels: [("answered_by", answeredBy)],
                buckets: buckets
            )
        }
    }

    // MARK: Recorded by the relay

    package func recorded(bytes: Int, errors: Int, lostFrames: Int = 0) {
        recordingBytes.increment(by: Int64(bytes))
        if errors > 0 { recordingWriteErrors.increment(by: Int64(errors)) }
        if lostFrames > 0 { recordingLostFrames.increment(by: Int64(lostFrames)) }
    }

    package func connectionAccepted() {
        accepted.increment()
    }

    /// A charger over its message rate was slowed (counted once a minute per charger, as it is logged).
    package func rateLimited() {
        counter(
            "rate_limited",
            "Chargers slowed for sending more than limits.messages_per_second (once a minute each)."
        ).increment()
    }

    package func tlsHandshakeFailed() {
        tlsFailures.increment()
    }

    /// The Prometheus text, with the gauges that are read rather than counted brought up to date.
    package func exposition(connectedChargers: Int, recordingFailing failing: Bool = false) -> [UInt8] {
        connected.set(Double(connectedChargers))
        recordingFailing.set(failing ? 1.0 : 0.0)
        return registry.emitToBuffer()
    }

    package func refused(status: Int, by source: String) {
        counter(
            "connections_refused",
            "Charger connections refused, by HTTP status and by whom (relay or upstream).",
            labels: [("status", String(status)), ("by", source)]
        ).increment()
    }

    package func upstreamFailure(_ reason: String) {
        counter(
            "upstream_failures",
            "Upstream connections that failed: unreachable, timeout, lost.",
            labels: [("reason", reason)]
        ).increment()
    }

    /// A charger message's outcome on a mirror (`ocpp_relay_mirror_messages_total`); `cache` is the session's, so
    /// that the registry is asked once per action and outcome. Actions OCPP does not define count as `other`.
    package func mirrorMessage(_ mirror: String, action: String, outcome: String, cache: inout MirrorCounters) {
        let key = "\(action) \(outcome)"
        if let counter = cache.counters[key] {
            counter.increment()
            return
        }
        let counter = counter(
            "mirror_messages",
            "Charger messages on mirrors, by how the mirror's answer compared with the primary's.",
            labels: [
                ("mirror", mirror), ("action", OCPPAction.all.contains(action) ? action : "other"),
                ("outcome", outcome),
            ]
        )
        cache.counters[key] = counter
        counter.increment()
    }

    /// A mirror's call the relay refused (shadow, or not among a secondary's commands).
    package func mirrorCallRefused(_ mirror: String, action: String) {
        counter(
            "mirror_calls_refused",
            "Calls from mirrors that the relay refused instead of passing to the charger.",
            labels: [("mirror", mirror), ("action", OCPPAction.all.contains(action) ? action : "other")]
        ).increment()
    }

    /// A mirror's leg came up (+1) or went (-1): `ocpp_relay_mirror_connected`.
    package func mirrorConnected(_ mirror: String, by delta: Int) {
        registry.makeGauge(
            descriptor: Self.descriptor("mirror_connected", "", "Chargers whose leg to this mirror is up."),
            labels: [("mirror", mirror)]
        ).increment(by: Double(delta))
    }

    package func translationDiagnostic(_ kind: String) {
        counter(
            "translation_diagnostics",
            "Translation notes: lossy, untranslatable, malformed, invalid (refused by the schema), normalised, send "
                + "(a 2.1 SEND not forwarded to an older peer), refusedAnswer (a 2.1 peer's CALLRESULTERROR).",
            labels: [("kind", kind)]
        ).increment()
    }

    /// Calls the relay owed a backend and could not deliver within `timeouts.drain` after the charger left.
    package func drainUndelivered(_ calls: Int) {
        counter(
            "drain_undelivered_calls",
            "Calls owed a backend and not delivered within timeouts.drain after their charger left."
        ).increment(by: Int64(calls))
    }

    /// A charger's CALL the relay refused because it breaks its version's schema (`validation.reject_invalid_calls`).
    package func refusedInvalid(version: String, action: String) {
        counter(
            "validation_refused_calls",
            "Charger calls refused by the relay for breaking their version's schema, by version and action.",
            labels: [("version", version), ("action", OCPPAction.all.contains(action) ? action : "other")]
        ).increment()
    }

    /// Peers' frames judged against their version's schema (`validation.verdicts`), on the charger's or the
    /// upstream's leg.
    package func framesJudged(_ frames: Int, version: String, leg: String) {
        counter(
            "frames_judged",
            "Frames chargers and backends sent, judged against their OCPP version's schema, by version and leg.",
            labels: [("version", version), ("leg", leg)]
        ).increment(by: Int64(frames))
    }

    /// Judged frames that break their version's schema (or are no OCPP frames: action `(not OCPP)`), by version,
    /// leg and action (`Action`, `Action.result`, `Action.error`; only actions the version defines).
    package func invalidFrames(_ frames: Int, version: String, leg: String, action: String) {
        counter(
            "invalid_frames",
            "Frames chargers and backends sent that break their OCPP version's schema, by version, leg and action.",
            labels: [("version", version), ("leg", leg), ("action", action)]
        ).increment(by: Int64(frames))
    }

    // MARK: Handshake slots (`limits.handshakes`)

    /// A charger's handshake began waiting for a slot (`true`), or stopped (it got one, or its connection closed).
    package func handshakeWaiting(_ waiting: Bool) {
        let gauge = registry.makeGauge(
            descriptor: Self.descriptor(
                "handshakes_waiting",
                "",
                "Chargers whose request is in, waiting for a handshake slot (limits.handshakes) before their dial."
            )
        )
        if waiting {
            gauge.increment()
            counter("handshakes_waited", "Handshakes that waited for a slot (limits.handshakes).").increment()
        } else {
            gauge.decrement()
        }
    }

    // MARK: The grace of a lost upstream (`timeouts.reconnect_grace`)

    /// A charger kept while its upstream is redialled (`entered`), or no longer (`false`).
    package func grace(entered: Bool) {
        let gauge = registry.makeGauge(
            descriptor: Self.descriptor(
                "upstream_grace_chargers",
                "",
                "Chargers kept connected while their lost upstream is dialled again."
            )
        )
        if entered { gauge.increment() } else { gauge.decrement() }
    }

    /// A redial of a lost upstream ended: `accepted`, `refused` (an HTTP status) or `failed`.
    package func redial(_ outcome: String) {
        counter(
            "upstream_redials",
            "Redials of a lost upstream within its grace, by outcome: accepted, refused, failed.",
            labels: [("outcome", outcome)]
        ).increment()
    }

    /// What became of the charger's messages while its upstream was redialled: `held` (delivered on the new
    /// connection, or given up with the grace), `answered_locally` (Heartbeats), `dropped` (over the limit, or
    /// answers of calls of the lost connection), `resent` (calls the lost connection never answered).
    package func graceMessage(_ outcome: String, count: Int = 1) {
        counter(
            "upstream_grace_messages",
            "Charger messages during a lost upstream's grace: held, answered_locally, dropped, resent.",
            labels: [("outcome", outcome)]
        ).increment(by: Int64(count))
    }

    /// A grace ended without an upstream: `expired`, or `refused` by the backend (401, 403, 404).
    package func graceGivenUp(_ reason: String) {
        counter(
            "upstream_grace_given_up",
            "Chargers closed because their upstream did not come back within the grace (expired) or refused them.",
            labels: [("reason", reason)]
        ).increment()
    }

    func call(direction: Int, action: Int?) {
        calls[direction][action ?? OCPPAction.all.count].increment()
    }

    func answer(direction: Int, isError: Bool, action: Int?, matched: Bool) {
        let slot = matched ? (action ?? OCPPAction.all.count) : OCPPAction.all.count + 1
        answers[direction][isError ? 1 : 0][slot].increment()
    }

    func otherMessage(direction: Int) {
        other[direction].increment()
    }

    func callAnswered(by direction: Int, nanoseconds: Int64) {
        callDuration[direction].recordNanoseconds(nanoseconds)
    }
}

/// The call one session relayed in each direction that waits for its answer: for the action label of the answer and
/// the call-duration histogram. OCPP-J allows one outstanding call per direction: each direction is a ``CallLane``
/// (by the hash of the message id, holding the action's index) whose calls are sent as they come (a second call
/// replaces the first, whose answer then counts as unmatched); no allocation per session.
package struct PendingCalls {
    private var fromCharger = CallLane<UInt64, Int?>()
    private var fromUpstream = CallLane<UInt64, Int?>()

    package init() {}

    /// Counts a frame and pairs answers with their calls. `direction`: 0 charger → upstream, 1 the other way.
    /// Returns the action of a call (its index in ``OCPPAction/all``), if OCPP defines it.
    @discardableResult
    package mutating func observe(
        _ bytes: UnsafeRawBufferPointer,
        direction: Int,
        metrics: RelayMetrics,
        now: Duration
    ) -> Int? {
        guard let header = RPCFrameHeader.scan(bytes) else {
            metrics.otherMessage(direction: direction)
            return nil
        }
        if header.messageType == 2 {
            metrics.call(direction: direction, action: header.action)
            if direction == 0 {
                fromCharger.sent(header.action, id: header.messageIDHash, at: now)
            } else {
                fromUpstream.sent(header.action, id: header.messageIDHash, at: now)
            }
            return header.action
        } else {
            // An answer travels the other way from its call.
            let sentAt = (direction == 0 ? fromUpstream : fromCharger).outstanding?.sentAt
            let call =
                direction == 0
                ? fromUpstream.answered(header.messageIDHash) : fromCharger.answered(header.messageIDHash)
            metrics.answer(
                direction: direction,
                isError: header.messageType == 4,
                action: call ?? nil,
                matched: call != nil
            )
            if call != nil, let sentAt {
                // Answered by the peer this answer came from: upstream for charger calls.
                let waited = (now - sentAt).components
                let nanoseconds = waited.seconds * 1_000_000_000 + waited.attoseconds / 1_000_000_000
                metrics.callAnswered(by: 1 - direction, nanoseconds: nanoseconds)
            }
            return nil
        }
    }
}

/// One mirror's counters of one session, by action and outcome, made when first counted (see
/// ``RelayMetrics/mirrorMessage(_:action:outcome:cache:)``).
package struct MirrorCounters {
    fileprivate var counters: [String: Counter] = [:]

    package init() {}
}
