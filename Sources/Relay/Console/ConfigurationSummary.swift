import OCPP
import RelayConfig
import RelayRecording

extension RelayConfiguration {
    /// The configuration in force, as the console's relay page shows it: every setting that shapes what the relay
    /// does, and no secret (passwords, hashes, tokens and the PostgreSQL password appear as whether they are set).
    public var consoleSummary: [(key: String, value: String)] {
        var rows: [(key: String, value: String)] = [
            ("listen", "\(listenHost):\(listenPort)\(listenerTLS == nil ? "" : " (TLS)")"),
            ("upstream", "\(upstream)"),
            ("upstream_version", upstreamVersion?.shortName ?? "passthrough"),
            ("upstream_extensions", upstreamExtensions.map(\.rawValue).sorted().joined(separator: ", ")),
            ("recordings.directory", recording.directory),
            ("recordings.roll_size", "\(recording.rollBytes) bytes"),
            ("recordings.roll_age", "\(recording.rollAge.components.seconds) s"),
            ("recordings.retention", recording.retention.map { "\($0.components.seconds) s" } ?? "forever"),
            ("limits.max_frame_size", "\(maxFrameBytes) bytes"),
            ("limits.max_connections", "\(maxConnections)"),
            ("limits.messages_per_second", messagesPerSecond == 0 ? "unlimited" : "\(messagesPerSecond)"),
            ("timeouts.upstream", "\(upstreamTimeout)"),
            ("timeouts.call", "\(callTimeout)"),
            ("timeouts.ping", "\(pingInterval)"),
            ("translation.mappings", mappingsDirectory ?? "built into the binary"),
            ("translation.state", stateIsShared ? "\(stateDatabasePath) (shared)" : stateDatabasePath),
            ("translation.early_start_answer", "\(earlyStartAnswer)"),
            ("allow", access.allowed.map { "\($0)" } ?? "everyone"),
            (
                "auth.passwords",
                access.passwords.map { "checked by the relay for \($0.count) chargers (hashes hidden)" }
                    ?? "not checked by the relay"
            ),
            ("auth.forward_authorization", "\(access.forwardAuthorization)"),
            ("auth.upstream_password_env", upstreamPassword == nil ? "not set" : "set (hidden)"),
            ("metrics.listen", metricsListen.map { "\($0.host):\($0.port)" } ?? "not served"),
            ("event_loops", "\(eventLoops)"),
        ]
        for route in routes {
            rows.append(
                (
                    "routes[\(route.name)]",
                    "\(route.chargers) → \(route.upstream) (\(route.upstreamVersion?.shortName ?? "passthrough"))"
                )
            )
        }
        for mirror in mirrors {
            rows.append(
                (
                    "mirrors[\(mirror.name)]",
                    "\(mirror.upstream) (\(mirror.mode.rawValue), \(mirror.upstreamVersion?.shortName ?? "as upstream"))"
                )
            )
        }
        if let console {
            rows.append(("console.users", console.users.keys.sorted().joined(separator: ", ")))
            rows.append(("console.token_env", console.token == nil ? "not set" : "set (hidden)"))
            rows.append(("console.redact_tokens", "\(console.redactTokens)"))
        }
        return rows
    }
}
