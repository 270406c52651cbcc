import Foundation

/// One recorded connection, possibly spanning several segments.
public struct ConnectionSummary: Sendable, Hashable {
    /// Unique across runs: `<runID>/<connection>`.
    public var key: String
    public var runID: String
    public var connection: UInt64
    public var charger: String
    public var subprotocol: String?
    public var start: UInt64
    /// When it ended; `nil` while open or when the relay stopped without closing it.
    public var end: UInt64?
    /// Time of the last record seen (the end, or where a torn recording stops).
    public var lastSeen: UInt64
    public var frames: Int
    /// Messages, each counted once even when recorded on both legs.
    public var messages: Int
    /// Payload bytes of those messages: what a plain log of the traffic would hold.
    public var textBytes: Int
    /// Compressed bytes attributed to this connection (its share of each flush).
    public var diskBytes: Int
    /// Segment files that hold its records, oldest first.
    public var segments: [String]
    /// How it ended (its first close record): who started the close, the code, the reason; `nil` while open.
    public var closedBy: String?
    public var closeCode: Int?
    public var closeReason: String?
    /// How many of its frames were invalid when the relay judged them; nil when it did not (`validation.verdicts`).
    public var invalid: Int?
}

/// The segments of a recordings folder, and the connections in them.
///
/// Uses each segment's index where it is complete; a segment without a finished index (a crash, or one
/// being written now) is scanned.
public struct RecordingCatalog {
    public let segments: [String]

    /// Finds the segments at `path`: a segment file, or a folder (searched recursively).
    public init(path: String) throws {
        try self.init(paths: [path])
    }

    /// Finds the segments at each path (segment files or folders: the recordings of several relays), in time
    /// order across them.
    public init(paths: [String]) throws {
        var found: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw RecordingReadError(.io, "\(path) does not exist")
            }
            guard isDirectory.boolValue else {
                found.append(path)
                continue
            }
            if let enumerator = FileManager.default.enumerator(atPath: path) {
                for case let name as String in enumerator where name.hasSuffix(RecordingConfiguration.segmentSuffix) {
                    found.append((path as NSString).appendingPathComponent(name))
                }
            }
        }
        // Names start with the UTC start time, so name order is time order (also across relays).
        segments = found.sorted { ($0 as NSString).lastPathComponent < ($1 as NSString).lastPathComponent }
    }

    /// The index entries of a segment, if its index is complete (has its `end` line).
    public static func completeIndex(ofSegment segment: String) -> [IndexEntry]? {
        let indexPath =
            String(segment.dropLast(RecordingConfiguration.segmentSuffix.count)) + RecordingConfiguration.indexSuffix
        guard let data = FileManager.default.contents(atPath: indexPath) else { return nil }
        let decoder = JSONDecoder()
        var entries: [IndexEntry] = []
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            guard let entry = try? decoder.decode(IndexEntry.self, from: Data(line)) else { return nil }
            entries.append(entry)
        }
        guard entries.first?.type == .segment, entries.last?.type == .end else { return nil }
        return entries
    }

    /// Every recorded connection, in start order.
    /// - Parameter problems: receives one line per segment that could not be read completely.
    public func connections(problems: (String) -> Void = { _ in }) throws -> [ConnectionSummary] {
        var byKey: [String: ConnectionSummary] = [:]
        func touch(_ key: String, runID: String, connection: UInt64, charger: String, time: UInt64, segment: String) {
            if byKey[key] == nil {
                byKey[key] = ConnectionSummary(
                    key: key,
                    runID: runID,
                    connection: connection,
                    charger: charger,
                    subprotocol: nil,
                    start: time,
                    end: nil,
                    lastSeen: time,
                    frames: 0,
                    messages: 0,
                    textBytes: 0,
                    diskBytes: 0,
                    segments: []
                )
            }
            if byKey[key]!.segments.last != segment { byKey[key]!.segments.append(segment) }
        }
        for segment in segments {
            if let index = Self.completeIndex(ofSegment: segment), let runID = index.first?.runID {
                for entry in index {
                    guard let connection = entry.connection, let charger = entry.charger else { continue }
                    let key = "\(runID)/\(connection)"
                    touch(
                        key,
                        runID: runID,
                        connection: connection,
                        charger: charger,
                        time: entry.time,
                        segment: segment
                    )
                    switch entry.type {
                    case .open:
                        if entry.resumed != true { byKey[key]!.start = entry.time }
                        if let sub = entry.subprotocol { byKey[key]!.subprotocol = sub }
                        if entry.judged == true, byKey[key]!.invalid == nil { byKey[key]!.invalid = 0 }
                    case .close, .continued:
                        byKey[key]!.frames += entry.frames ?? 0
                        byKey[key]!.messages += entry.messages ?? 0
                        byKey[key]!.textBytes += entry.textBytes ?? 0
                        byKey[key]!.diskBytes += entry.diskBytes ?? 0
                        if let invalid = entry.invalid { byKey[key]!.invalid = (byKey[key]!.invalid ?? 0) + invalid }
                        byKey[key]!.lastSeen = max(byKey[key]!.lastSeen, entry.time)
                        if entry.type == .close {
                            byKey[key]!.end = entry.time
                            byKey[key]!.closedBy = entry.closedBy
                            byKey[key]!.closeCode = entry.closeCode
                            byKey[key]!.closeReason = entry.closeReason
                        }
                    default: break
                    }
                }
                continue
            }
            // No complete index: scan the segment.
            var runID = "?"
            var rawPerConnection: [UInt64: Int] = [:]
            let outcome: SegmentReader.Outcome
            do {
                outcome = try SegmentReader(path: segment).forEach { record in
                    let key = "\(runID)/\(record.connection)"
                    switch record {
                    case .segmentHeader(let header): runID = header.runID
                    case .open(let open):
                        let key = "\(runID)/\(open.connection)"
                        touch(
                            key,
                            runID: runID,
                            connection: open.connection,
                            charger: open.charger,
                            time: open.time,
                            segment: segment
                        )
                        if !open.resumed { byKey[key]!.start = open.time }
                        if let sub = open.subprotocol { byKey[key]!.subprotocol = sub }
                        if open.judged == true, byKey[key]!.invalid == nil { byKey[key]!.invalid = 0 }
                    case .frame(let frame):
                        guard byKey[key] != nil else { return }
                        byKey[key]!.frames += frame.forwardedUnchanged ? 2 : 1
                        byKey[key]!.messages += 1
                        byKey[key]!.textBytes += frame.payload.count
                        byKey[key]!.lastSeen = max(byKey[key]!.lastSeen, frame.time)
                        rawPerConnection[frame.connection, default: 0] += frame.payload.count + 16
                    case .close(let close):
                        guard byKey[key] != nil else { return }
                        byKey[key]!.lastSeen = max(byKey[key]!.lastSeen, close.time)
                        byKey[key]!.end = close.time
                        if byKey[key]!.closedBy == nil {
                            byKey[key]!.closedBy = close.initiator
                            byKey[key]!.closeCode = close.code
                            byKey[key]!.closeReason = close.reason
                        }
                    case .error(let error):
                        guard byKey[key] != nil else { return }
                        byKey[key]!.lastSeen = max(byKey[key]!.lastSeen, error.time)
                    case .mirror(let outcome):
                        guard byKey[key] != nil else { return }
                        byKey[key]!.lastSeen = max(byKey[key]!.lastSeen, outcome.time)
                    case .verdict:
                        guard byKey[key] != nil else { return }
                        byKey[key]!.invalid = (byKey[key]!.invalid ?? 0) + 1
                    case .gap(let gap):
                        problems(
                            "\(segment): \(gap.frames) frames not recorded from \(Timestamp.rfc3339(gap.from)) to \(Timestamp.rfc3339(gap.to)) (\(gap.error))"
                        )
                    }
                }
            } catch {
                problems("\(segment): \(error)")
                continue
            }
            if let damage = outcome.damage { problems("\(segment): read up to a damaged record: \(damage)") }
            // Share the file's size out by raw bytes, as the writer does.
            let fileSize = (try? FileManager.default.attributesOfItem(atPath: segment)[.size] as? Int) ?? 0
            let raw = rawPerConnection.values.reduce(0, +)
            if raw > 0 {
                for (connection, bytes) in rawPerConnection {
                    byKey["\(runID)/\(connection)"]?.diskBytes += Int(Double(fileSize) * Double(bytes) / Double(raw))
                }
            }
        }
        return byKey.values.sorted { ($0.start, $0.key) < ($1.start, $1.key) }
    }

    /// The segments that may hold records of `charger`: those whose complete index names it, and every
    /// segment without a complete index.
    public func segments(forCharger charger: String) -> [String] {
        segments.filter { segment in
            guard let index = Self.completeIndex(ofSegment: segment) else { return true }
            return index.contains { $0.charger == charger }
        }
    }
}
