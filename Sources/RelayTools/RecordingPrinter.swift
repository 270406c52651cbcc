import Foundation
import OCPP
import RelayRecording

/// Prints recordings for people (`text`) or programs (`jsonl`).
///
/// The `jsonl` shape is a stable interface: one object per line; frames have `time` (RFC 3339 UTC,
/// milliseconds), `connection`, `charger`, `leg` (`charger`/`upstream`), `dir` (`in` received by the relay,
/// `out` sent by it), `version` and `text` (the exact frame text; binary frames carry `binary`, base64,
/// instead); connection events have `event` (`open`, `close`, `error`) instead of `text`. Frames of a mirror's
/// leg have `leg` `mirror` and `mirror` (its name); a mirror's answer that differs from the primary's is an
/// event `divergence` with `mirror`, `action`, `id` and `differences` (`path`, `primary`, `mirror`), and
/// messages a mirror never answered or never got are events `unanswered` and `dropped`.
public struct RecordingPrinter {
    public enum Format: String, Sendable, CaseIterable {
        case text, jsonl
    }

    public var format: Format
    public var charger: String?
    public var color: Bool

    private struct ConnectionInfo {
        var charger: String
        var version: String
        /// The upstream leg's version when it differs (translation).
        var upstreamVersion: String
        /// Each mirror's version.
        var mirrorVersions: [String: String]

        func version(of leg: Leg, mirror: String?) -> String {
            switch leg {
            case .charger: version
            case .upstream: upstreamVersion
            case .mirror: mirrorVersions[mirror ?? ""] ?? version
            }
        }
        var key: String
    }

    private var connections: [UInt64: ConnectionInfo] = [:]
    private var announced: Set<String> = []
    private var pendingActions: [String: String] = [:]
    private var runID = "?"

    public init(format: Format, charger: String? = nil, color: Bool = false) {
        self.format = format
        self.charger = charger
        self.color = color
    }

    /// Prints every record of the segments at `path` (a file or a folder) to `output`.
    /// - Returns: problems met (torn or damaged segments), one line each; they do not stop the output.
    public mutating func print(path: String, to output: (String) -> Void) throws -> [String] {
        try print(paths: [path], to: output)
    }

    /// Prints every record of the segments at `paths` to `output`. With several folders (several relays'
    /// recordings) the records are merged by time, so that a charger that moved between relays reads as one
    /// history.
    public mutating func print(paths: [String], to output: (String) -> Void) throws -> [String] {
        let catalog = try RecordingCatalog(paths: paths)
        let segments = charger.map { catalog.segments(forCharger: $0) } ?? catalog.segments
        var problems: [String] = []
        var merged: [(time: UInt64, line: String)] = []
        for segment in segments {
            connections = [:]
            let outcome: SegmentReader.Outcome
            do {
                outcome = try SegmentReader(path: segment).forEach { record in
                    for line in lines(for: record) {
                        if paths.count > 1 { merged.append((record.time, line)) } else { output(line) }
                    }
                }
            } catch {
                problems.append("\(segment): \(error)")
                continue
            }
            if let damage = outcome.damage {
                problems.append("\(segment): stopped at a damaged record (\(damage))")
            } else if outcome.tornBytes > 0 {
                problems.append(
                    "\(segment): ends in a partial record (\(outcome.tornBytes) bytes): the relay stopped while writing it"
                )
            }
        }
        // A stable sort: records of one time keep their recorded order.
        for entry in merged.enumerated().sorted(by: { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }) {
            output(entry.element.line)
        }
        return problems
    }

    /// The output lines for one record (none when filtered out).
    public mutating func lines(for record: Record) -> [String] {
        switch record {
        case .segmentHeader(let header):
            runID = header.runID
            return []
        case .open(let open):
            let version = open.subprotocol.map(OCPPVersion.shortName(ofSubprotocol:)) ?? ""
            let upstreamVersion = open.upstreamSubprotocol.map(OCPPVersion.shortName(ofSubprotocol:)) ?? version
            let key = "\(runID)/\(open.connection)"
            connections[open.connection] = ConnectionInfo(
                charger: open.charger,
                version: version,
                upstreamVersion: upstreamVersion,
                mirrorVersions: (open.mirrorSubprotocols ?? [:]).mapValues(OCPPVersion.shortName(ofSubprotocol:)),
                key: key
            )
            guard include(open.charger) else { return [] }
            if open.resumed && announced.contains(key) { return [] }
            announced.insert(key)
            return [render(open: open, key: key)]
        case .frame(let frame):
            guard let info = connections[frame.connection], include(info.charger) else { return [] }
            var lines = [
                render(
                    frame: frame,
                    info: info,
                    direction: frame.direction,
                    leg: frame.leg,
                    forwarded: frame.forwardedUnchanged
                )
            ]
            if frame.forwardedUnchanged && format == .jsonl {
                lines.append(
                    render(frame: frame, info: info, direction: .out, leg: frame.leg.opposite, forwarded: false)
                )
            }
            return lines
        case .close(let close):
            guard let info = connections[close.connection], include(info.charger) else { return [] }
            return [render(close: close, info: info)]
        case .error(let error):
            guard let info = connections[error.connection], include(info.charger) else { return [] }
            return [render(error: error, info: info)]
        case .gap(let gap):
            // Every connection of the loop may have lost records: shown whatever the filter.
            return [render(gap: gap)]
        case .mirror(let outcome):
            guard outcome.kind != .matched, let info = connections[outcome.connection], include(info.charger)
            else { return [] }
            return [render(outcome: outcome, info: info)]
        case .verdict(let verdict):
            guard let info = connections[verdict.connection], include(info.charger) else { return [] }
            return [render(verdict: verdict, info: info)]
        }
    }

    private func include(_ charger: String) -> Bool {
        self.charger == nil || self.charger == charger
    }

    // MARK: JSON lines

    private func json(_ members: [(String, JSONValue)]) -> String {
        JSONValue.object(members.map { (key: $0.0, value: $0.1) }).jsonText
    }

    private func render(open: ConnectionOpen, key: String) -> String {
        switch format {
        case .jsonl:
            var members: [(String, JSONValue)] = [
                ("time", .string(Timestamp.rfc3339(open.time))), ("connection", .string(key)),
                ("charger", .string(open.charger)), ("event", .string("open")), ("path", .string(open.path)),
                ("offered", .array(open.offeredSubprotocols.map { .string($0) })),
                ("subprotocol", open.subprotocol.map { .string($0) } ?? .null),
                ("remote", open.remoteAddress.map { .string($0) } ?? .null),
                ("upstream", open.upstreamURL.map { .string($0) } ?? .null),
                ("authorization", .bool(open.authorizationPresent)),
            ]
            if let user = open.authorizationUser { members.append(("user", .string(user))) }
            if let upstream = open.upstreamSubprotocol { members.append(("upstreamSubprotocol", .string(upstream))) }
            if open.resumed { members.append(("resumed", .bool(true))) }
            return json(members)
        case .text:
            let detail =
                "open \(open.path) offered [\(open.offeredSubprotocols.joined(separator: ", "))]"
                + (open.subprotocol.map { " → \($0)" } ?? "")
                + (open.upstreamSubprotocol.map { ", translated to \($0) upstream" } ?? "")
                + (open.remoteAddress.map { " from \($0)" } ?? "")
                + (open.upstreamURL.map { " upstream \($0)" } ?? "")
            return textLine(time: open.time, charger: open.charger, arrow: "", body: paint(detail, .yellow))
        }
    }

    private mutating func render(
        frame: FrameRecord,
        info: ConnectionInfo,
        direction: Direction,
        leg: Leg,
        forwarded: Bool
    ) -> String {
        switch format {
        case .jsonl:
            var members: [(String, JSONValue)] = [
                ("time", .string(Timestamp.rfc3339(frame.time))), ("connection", .string(info.key)),
                ("charger", .string(info.charger)), ("leg", .string(leg.rawValue)),
                ("dir", .string(direction.rawValue)),
                ("version", .string(info.version(of: leg, mirror: frame.mirror))),
            ]
            if leg == .mirror { members.insert(("mirror", .string(frame.mirror ?? "")), at: 4) }
            if frame.isText {
                members.append(("text", .string(frame.text)))
            } else {
                members.append(("binary", .string(Data(frame.payload).base64EncodedString())))
            }
            return json(members)
        case .text:
            let name = leg == .mirror ? "mirror \(frame.mirror ?? "")" : leg.rawValue
            let from = direction == .in ? name : "relay"
            let to = forwarded ? leg.opposite.rawValue : (direction == .in ? "relay" : name)
            return textLine(
                time: frame.time,
                charger: info.charger,
                arrow: "\(from) → \(to)",
                body: describe(frame, info: info, leg: leg, direction: direction)
            )
        }
    }

    private mutating func describe(_ frame: FrameRecord, info: ConnectionInfo, leg: Leg, direction: Direction) -> String
    {
        guard frame.isText else { return paint("binary message, \(frame.payload.count) bytes", .red) }
        let text = frame.text
        // Who sent the frame. A result that came in on a leg answers a CALL passed through from the other leg or one
        // the relay sent on this leg (translation); a result the relay sent on a leg answers that leg's peer.
        let name = leg == .mirror ? "mirror:\(frame.mirror ?? "")" : leg.rawValue
        let sender = direction == .in ? name : "relay-\(name)"
        let callers =
            direction == .in
            ? (leg == .mirror ? [] : [leg.opposite.rawValue]) + ["relay-\(name)"] : [name]
        func action(answering id: String) -> String? {
            for caller in callers {
                if let action = pendingActions.removeValue(forKey: "\(info.key) \(caller) \(id)") { return action }
            }
            return nil
        }
        guard let parsed = try? RPCFrame.parse(frame.payload) else {
            return paint("not an OCPP frame: ", .red) + text
        }
        switch parsed {
        case .call(let call), .send(let call):
            pendingActions["\(info.key) \(sender) \(call.messageID)"] = call.action
            return paint(call.action, .green) + " " + paint(call.messageID, .dim) + " " + call.payload.jsonText
        case .callResult(let result):
            let action = action(answering: result.messageID)
            return paint("\(action ?? "?").result", .blue) + " " + paint(result.messageID, .dim) + " "
                + result.payload.jsonText
        case .callError(let error), .callResultError(let error):
            let action = action(answering: error.messageID)
            return paint("\(action ?? "?").error \(error.errorCode)", .red) + " " + paint(error.messageID, .dim) + " "
                + error.errorDescription
        }
    }

    /// The verdict on the frame before it: a JSON line of its own (naming the frame by its time and a `frame` object
    /// of its leg and direction, so that it never passes for a frame), or a line under the frame.
    private func render(verdict: FrameVerdictRecord, info: ConnectionInfo) -> String {
        switch format {
        case .jsonl:
            return json([
                ("time", .string(Timestamp.rfc3339(verdict.time))), ("connection", .string(info.key)),
                ("charger", .string(info.charger)), ("event", .string("verdict")),
                (
                    "frame",
                    .object([
                        (key: "leg", value: .string(verdict.leg.rawValue)),
                        (key: "dir", value: .string(verdict.direction.rawValue)),
                    ])
                ),
                ("version", .string(info.version(of: verdict.leg, mirror: nil))), ("action", .string(verdict.action)),
                ("reasons", .array(verdict.reasons.map { .string($0) })),
            ])
        case .text:
            return textLine(
                time: verdict.time,
                charger: info.charger,
                arrow: "",
                body: paint("invalid \(verdict.action): \(verdict.reasons.joined(separator: "; "))", .red)
            )
        }
    }

    private func render(close: ConnectionClose, info: ConnectionInfo) -> String {
        switch format {
        case .jsonl:
            return json([
                ("time", .string(Timestamp.rfc3339(close.time))), ("connection", .string(info.key)),
                ("charger", .string(info.charger)), ("event", .string("close")), ("leg", .string(close.leg.rawValue)),
                ("initiator", .string(close.initiator)), ("code", .number(String(close.code))),
                ("reason", .string(close.reason)), ("refused", .bool(close.refused)),
            ])
        case .text:
            let what =
                close.refused
                ? "refused with HTTP \(close.code): \(close.reason)"
                : "close \(close.leg.rawValue) leg, code \(close.code) by \(close.initiator)"
                    + (close.reason.isEmpty ? "" : ": \(close.reason)")
            return textLine(
                time: close.time,
                charger: info.charger,
                arrow: "",
                body: paint(what, close.refused ? .red : .yellow)
            )
        }
    }

    private func render(error: ConnectionErrorEvent, info: ConnectionInfo) -> String {
        switch format {
        case .jsonl:
            return json(
                [
                    ("time", .string(Timestamp.rfc3339(error.time))), ("connection", .string(info.key)),
                    ("charger", .string(info.charger)), ("event", .string("error")),
                    ("leg", .string(error.leg.rawValue)),
                    ("message", .string(error.message)),
                ] + (error.mirror.map { [("mirror", JSONValue.string($0))] } ?? [])
            )
        case .text:
            return textLine(
                time: error.time,
                charger: info.charger,
                arrow: "",
                body: paint(
                    "error on \(error.mirror.map { "mirror \($0)" } ?? error.leg.rawValue) leg: \(error.message)",
                    .red
                )
            )
        }
    }

    private func render(outcome: MirrorOutcome, info: ConnectionInfo) -> String {
        let event = outcome.kind == .diverged ? "divergence" : outcome.kind.rawValue
        switch format {
        case .jsonl:
            return json([
                ("time", .string(Timestamp.rfc3339(outcome.time))), ("connection", .string(info.key)),
                ("charger", .string(info.charger)), ("event", .string(event)), ("leg", .string("mirror")),
                ("mirror", .string(outcome.mirror)), ("action", .string(outcome.action)),
                ("id", .string(outcome.messageID)),
                (
                    "differences",
                    .array(
                        outcome.differences.map { d in
                            .object([
                                (key: "path", value: .string(d.path)), (key: "primary", value: .string(d.primary)),
                                (key: "mirror", value: .string(d.mirror)),
                            ])
                        }
                    )
                ),
            ])
        case .text:
            let what: String
            switch outcome.kind {
            case .diverged:
                what =
                    "\(outcome.action) \(outcome.messageID) differs on mirror \(outcome.mirror): "
                    + outcome.differences.map { d in
                        "\(d.path.isEmpty ? "(message)" : d.path) primary \(d.primary) │ mirror \(d.mirror)"
                    }.joined(separator: "; ")
            case .unanswered:
                what = "\(outcome.action) \(outcome.messageID) unanswered by mirror \(outcome.mirror)"
            case .dropped:
                what = "\(outcome.action) \(outcome.messageID) dropped for mirror \(outcome.mirror): its queue was full"
            case .matched:
                what = "\(outcome.action) \(outcome.messageID) matched on mirror \(outcome.mirror)"
            }
            return textLine(time: outcome.time, charger: info.charger, arrow: "", body: paint(what, .red))
        }
    }

    private func render(gap: RecordingGap) -> String {
        switch format {
        case .jsonl:
            return json([
                ("time", .string(Timestamp.rfc3339(gap.time))), ("event", .string("gap")),
                ("from", .string(Timestamp.rfc3339(gap.from))), ("to", .string(Timestamp.rfc3339(gap.to))),
                ("frames", .number(String(gap.frames))), ("records", .number(String(gap.records))),
                ("error", .string(gap.error)),
            ])
        case .text:
            return textLine(
                time: gap.time,
                charger: "",
                arrow: "",
                body: paint(
                    "recording gap: \(gap.frames) frames (\(gap.records) records) not recorded from "
                        + "\(Timestamp.rfc3339(gap.from)) to \(Timestamp.rfc3339(gap.to)): \(gap.error)",
                    .red
                )
            )
        }
    }

    // MARK: Text layout

    private enum Paint: String {
        case dim = "2", red = "31", green = "32", yellow = "33", blue = "34", cyan = "36"
    }

    private func paint(_ text: String, _ paint: Paint) -> String {
        color ? "\u{1B}[\(paint.rawValue)m\(text)\u{1B}[0m" : text
    }

    private func textLine(time: UInt64, charger: String, arrow: String, body: String) -> String {
        let stamp = Timestamp.rfc3339(time)  // 2026-11-27T06:15:00.123Z
        let clock = String(stamp.dropFirst(11).dropLast())
        let shownCharger =
            charger.count > 16
            ? String(charger.prefix(15)) + "…" : charger.padding(toLength: 16, withPad: " ", startingAt: 0)
        let shownArrow = arrow.padding(toLength: 20, withPad: " ", startingAt: 0)
        return "\(String(stamp.prefix(10))) \(paint(clock, .dim)) \(paint(shownCharger, .cyan)) \(shownArrow) \(body)"
    }
}
