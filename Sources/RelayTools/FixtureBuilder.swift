import OCPP
import OCPPReplay
import RelayRecording

/// Cuts fixtures out of recordings: one charger's connection, optionally narrowed to a time window or to
/// one transaction (with the connection's BootNotification kept in front, so the fixture replays alone).
public enum FixtureBuilder {
    public struct Selection: Sendable {
        public var charger: String?
        /// `<run>/<n>` as `recordings list` shows it; default: the charger's first connection with frames.
        public var connection: String?
        /// Only entries in [from, to] (µs since the epoch).
        public var from: UInt64?
        public var to: UInt64?
        /// Only this transaction: a 1.6 transactionId or a 2.0.1 transaction id.
        public var transaction: String?

        public init(
            charger: String? = nil,
            connection: String? = nil,
            from: UInt64? = nil,
            to: UInt64? = nil,
            transaction: String? = nil
        ) {
            self.charger = charger
            self.connection = connection
            self.from = from
            self.to = to
            self.transaction = transaction
        }
    }

    /// Builds a fixture from a recording (folder or segment) or returns an existing fixture file's content.
    public static func fixture(from path: String, selection: Selection) throws -> Fixture {
        try fixture(from: [path], selection: selection)
    }

    /// Every connection with frames in a recording (of one charger, or of all), each as a fixture, in the order
    /// they began: a recorded fleet to replay.
    public static func fixtures(from paths: [String], charger: String? = nil) throws -> [Fixture] {
        let lines = try entries(paths, charger: charger)
        var connections: [String] = []
        var seen = Set<String>()
        for line in lines where line["text"] != nil {
            if let connection = line["connection"]?.stringValue, seen.insert(connection).inserted {
                connections.append(connection)
            }
        }
        let grouped = Dictionary(grouping: lines) { $0["connection"]?.stringValue ?? "" }
        let path = paths.joined(separator: ", ")
        return try connections.map { connection in
            let entries = grouped[connection] ?? []
            let selection = Selection(charger: entries.first?["charger"]?.stringValue, connection: connection)
            return Fixture(
                header: header(entries, kept: entries, path: path, selection: selection, connection: connection),
                entries: try entries.map { try FixtureEntry($0) }
            )
        }
    }

    /// The recording's entries as `recordings show --format jsonl` gives them.
    private static func entries(_ paths: [String], charger: String?) throws -> [JSONValue] {
        var printer = RecordingPrinter(format: .jsonl, charger: charger)
        var lines: [JSONValue] = []
        var parseError: (any Error)?
        _ = try printer.print(paths: paths) { line in
            do { lines.append(try JSONParser.parse(line)) } catch { parseError = error }
        }
        if let parseError { throw parseError }
        return lines
    }

    /// Builds a fixture from the recordings of several relays (merged by time).
    public static func fixture(from paths: [String], selection: Selection) throws -> Fixture {
        let path = paths.joined(separator: ", ")
        let lines = try entries(paths, charger: selection.charger)
        let connections = lines.compactMap { $0["connection"]?.stringValue }
        guard
            let connection = selection.connection
                ?? lines.first(where: { $0["text"] != nil })?["connection"]?.stringValue
        else {
            throw FixtureError("no recorded frames\(selection.charger.map { " of charger \($0)" } ?? "") in \(path)")
        }
        guard connections.contains(connection) else { throw FixtureError("no connection \(connection) in \(path)") }
        var entries = lines.filter { $0["connection"]?.stringValue == connection }
        let all = entries
        if let from = selection.from { entries = entries.filter { (time($0) ?? 0) >= from } }
        if let to = selection.to { entries = entries.filter { (time($0) ?? 0) <= to } }
        if let transaction = selection.transaction {
            entries = try transactionEntries(all, transaction)
        }
        guard !entries.isEmpty else { throw FixtureError("the selection is empty") }
        return Fixture(
            header: header(all, kept: entries, path: path, selection: selection, connection: connection),
            entries: try entries.map { try FixtureEntry($0) }
        )
    }

    private static func time(_ entry: JSONValue) -> UInt64? {
        entry["time"]?.stringValue.flatMap { Timestamp.parse(rfc3339: $0) }
    }

    private static func frame(_ entry: JSONValue) -> RPCFrame? {
        entry["text"]?.stringValue.flatMap { try? RPCFrame.parse($0) }
    }

    /// From the CALL that started the transaction to the answer of the one that ended it, on both legs,
    /// after the connection's BootNotification exchange and the backend's calls (with their answers) that
    /// came between the boot and the transaction.
    private static func transactionEntries(_ entries: [JSONValue], _ transaction: String) throws -> [JSONValue] {
        var startIndex: Int?
        var endCallID: String?
        var endIndex: Int?
        // 1.6: the StartTransaction whose answer carries the id; 2.0.1: TransactionEvent Started/Ended with it.
        for (index, entry) in entries.enumerated() {
            guard let parsed = frame(entry) else { continue }
            switch parsed {
            case .callResult(let result) where result.payload["transactionId"]?.jsonText == transaction:
                startIndex = entries[..<index].lastIndex {
                    frame($0)?.messageID == result.messageID && frame($0)?.action == "StartTransaction"
                }
            case .call(let call)
            where call.action == "StopTransaction" && call.payload["transactionId"]?.jsonText == transaction:
                endCallID = call.messageID
            case .call(let call)
            where call.action == "TransactionEvent"
                && call.payload.value(at: "transactionInfo.transactionId")?.stringValue == transaction:
                if call.payload["eventType"]?.stringValue == "Started" { startIndex = startIndex ?? index }
                if call.payload["eventType"]?.stringValue == "Ended" { endCallID = call.messageID }
            case .callResult(let result) where result.messageID == endCallID:
                endIndex = index
            default:
                continue
            }
            if endIndex != nil { break }
        }
        guard var start = startIndex else {
            throw FixtureError("no transaction \(transaction) in the selected connection")
        }
        var end = endIndex ?? entries.count - 1
        // A forwarded frame is recorded on both legs, one entry after the other: keep both copies.
        func sameFrame(_ a: Int, _ b: Int) -> Bool {
            guard entries.indices.contains(a), entries.indices.contains(b), let x = frame(entries[a]),
                let y = frame(entries[b])
            else {
                return false
            }
            return x.messageID == y.messageID && x.messageTypeID == y.messageTypeID
        }
        while sameFrame(start - 1, start) { start -= 1 }
        while sameFrame(end, end + 1) { end += 1 }
        // Keep the boot exchange in front so the fixture is self-contained, with the backend's own calls
        // between the boot and the transaction (a backend that asks after every boot asks again on replay).
        var boot: [JSONValue] = []
        if let bootCall = entries[..<start].firstIndex(where: { frame($0)?.action == "BootNotification" }) {
            let id = frame(entries[bootCall])?.messageID
            var backendCalls: Set<String> = []
            for entry in entries[bootCall..<start] {
                guard case .call(let call) = frame(entry), let leg = entry["leg"]?.stringValue,
                    let direction = entry["dir"]?.stringValue
                else { continue }
                if (leg == "upstream" && direction == "in") || (leg == "charger" && direction == "out") {
                    backendCalls.insert("\(leg) \(call.messageID)")
                }
            }
            boot = entries[..<start].enumerated().filter { index, entry in
                guard let f = frame(entry) else { return entry["event"]?.stringValue == "open" }
                if f.messageID == id || f.action == "BootNotification" { return true }
                return index > bootCall && backendCalls.contains("\(entry["leg"]?.stringValue ?? "") \(f.messageID)")
            }.map(\.element)
        }
        return boot + Array(entries[start...end])
    }

    private static func header(
        _ all: [JSONValue],
        kept: [JSONValue],
        path: String,
        selection: Selection,
        connection: String
    ) -> FixtureHeader {
        let chargerFrames = all.filter { $0["leg"]?.stringValue == "charger" }
        let boot = chargerFrames.compactMap(frame).first { $0.action == "BootNotification" }
        var vendor: String?
        var model: String?
        var firmware: String?
        if case .call(let call) = boot {
            vendor =
                (call.payload["chargePointVendor"] ?? call.payload.value(at: "chargingStation.vendorName"))?.stringValue
            model = (call.payload["chargePointModel"] ?? call.payload.value(at: "chargingStation.model"))?.stringValue
            firmware =
                (call.payload["firmwareVersion"] ?? call.payload.value(at: "chargingStation.firmwareVersion"))?
                .stringValue
        }
        let version =
            chargerFrames.first?["version"]?.stringValue ?? all.first { $0["version"] != nil }?["version"]?.stringValue
            ?? ""
        let upstream = all.first { $0["leg"]?.stringValue == "upstream" && $0["version"] != nil }?["version"]?
            .stringValue
        var source = "\(path) connection \(connection)"
        if let t = selection.transaction { source += " transaction \(t)" }
        if selection.from != nil || selection.to != nil {
            source +=
                " window \(selection.from.map(Timestamp.rfc3339) ?? "…")–\(selection.to.map(Timestamp.rfc3339) ?? "…")"
        }
        return FixtureHeader(
            charger: all.first?["charger"]?.stringValue ?? "",
            version: version,
            upstreamVersion: upstream == version ? nil : upstream,
            vendor: vendor,
            model: model,
            firmware: firmware,
            relayVersion: RelayVersion.current,
            recorded: kept.first?["time"]?.stringValue,
            source: source
        )
    }
}
