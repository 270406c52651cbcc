import CZlib
import Foundation

/// Decodes records from decompressed recording bytes, tolerating a torn tail.
public struct RecordDecoder {
    /// The outcome of one decoding step.
    public enum Step: Sendable {
        /// A complete, checked record.
        case record(Record)
        /// A complete record of a kind this reader does not know (written by a newer relay); skipped.
        case skipped
        /// More bytes are needed.
        case needMoreData
    }

    private static let decoder = JSONDecoder()

    private var buffer: [UInt8] = []
    private var position = 0
    private var sawMagic = false

    public init() {}

    /// Bytes received but not yet decoded into a record: at the end of a file, the torn tail.
    public var pendingByteCount: Int { buffer.count - position }

    /// Adds decompressed bytes.
    public mutating func feed<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        if position > 0 && position > buffer.count / 2 {
            buffer.removeFirst(position)
            position = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Decodes the next record, or says that more data is needed.
    /// - Throws: ``RecordingReadError`` when the bytes are not a recording or a record is corrupt.
    public mutating func next() throws(RecordingReadError) -> Step {
        if !sawMagic {
            guard pendingByteCount >= RecordFormat.magic.count else { return .needMoreData }
            let head = Array(buffer[position..<position + 7])
            guard head == Array(RecordFormat.magic.prefix(7)) else {
                throw RecordingReadError(.notARecording, "not an ocpp-relay recording (bad magic)")
            }
            let version = Int(buffer[position + 7])
            guard version <= RecordFormat.version else {
                throw RecordingReadError(
                    .unsupportedVersion,
                    "recording format version \(version) is newer than this relay reads (\(RecordFormat.version))"
                )
            }
            position += RecordFormat.magic.count
            sawMagic = true
        }
        guard pendingByteCount >= 8 else { return .needMoreData }
        let length = Int(readUInt32(at: position))
        let crc = readUInt32(at: position + 4)
        guard length >= 10, length <= RecordFormat.maximumBodyLength else {
            throw RecordingReadError(.corrupt, "record length \(length) is out of range")
        }
        guard pendingByteCount >= 8 + length else { return .needMoreData }
        let bodyStart = position + 8
        let actual = buffer.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress! + bodyStart, UInt32(length))) }
        guard actual == crc else {
            throw RecordingReadError(.corrupt, "record checksum mismatch")
        }
        position = bodyStart + length
        return try decodeBody(buffer[bodyStart..<bodyStart + length])
    }

    private func readUInt32(at offset: Int) -> UInt32 {
        UInt32(buffer[offset]) | UInt32(buffer[offset + 1]) << 8 | UInt32(buffer[offset + 2]) << 16
            | UInt32(buffer[offset + 3]) << 24
    }

    private func decodeBody(_ body: ArraySlice<UInt8>) throws(RecordingReadError) -> Step {
        var index = body.startIndex
        let kindByte = body[index]
        index += 1
        var time: UInt64 = 0
        for shift in 0..<8 {
            time |= UInt64(body[index + shift]) << (8 * UInt64(shift))
        }
        index += 8
        var connection: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < body.endIndex, shift < 64 else {
                throw RecordingReadError(.corrupt, "bad connection number")
            }
            let byte = body[index]
            index += 1
            connection |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        let rest = body[index...]
        guard let kind = RecordFormat.Kind(rawValue: kindByte) else { return .skipped }
        switch kind {
        case .frame:
            guard rest.count >= 2 else { throw RecordingReadError(.corrupt, "frame record too short") }
            let flags = rest[rest.startIndex]
            let opcode = rest[rest.startIndex + 1]
            return .record(
                .frame(
                    FrameRecord(
                        connection: connection,
                        time: time,
                        leg: flags & RecordFormat.FrameFlags.upstream != 0 ? .upstream : .charger,
                        direction: flags & RecordFormat.FrameFlags.out != 0 ? .out : .in,
                        opcode: opcode,
                        payload: Array(rest.dropFirst(2)),
                        forwardedUnchanged: flags & RecordFormat.FrameFlags.forwardedUnchanged != 0
                    )
                )
            )
        case .open: return .record(.open(try decodeJSON(ConnectionOpen.self, rest)))
        case .close: return .record(.close(try decodeJSON(ConnectionClose.self, rest)))
        case .error: return .record(.error(try decodeJSON(ConnectionErrorEvent.self, rest)))
        case .header: return .record(.segmentHeader(try decodeJSON(SegmentHeader.self, rest)))
        case .gap: return .record(.gap(try decodeJSON(RecordingGap.self, rest)))
        case .verdict: return .record(.verdict(try decodeJSON(FrameVerdictRecord.self, rest)))
        case .mirrorFrame:
            var reader = BodyReader(bytes: rest)
            guard let flags = reader.byte(), let opcode = reader.byte(), let mirror = reader.shortString() else {
                throw RecordingReadError(.corrupt, "mirror frame record too short")
            }
            return .record(
                .frame(
                    FrameRecord(
                        connection: connection,
                        time: time,
                        leg: .mirror,
                        direction: flags & RecordFormat.FrameFlags.out != 0 ? .out : .in,
                        opcode: opcode,
                        payload: Array(reader.rest),
                        mirror: mirror
                    )
                )
            )
        case .endConnection, .overflow:
            return .skipped
        case .mirrorOutcome:
            var reader = BodyReader(bytes: rest)
            guard let kind = reader.byte().flatMap({ Int($0) < RecordFormat.outcomeKinds.count ? $0 : nil }),
                let mirror = reader.shortString(), let action = reader.shortString(), let id = reader.longString()
            else { throw RecordingReadError(.corrupt, "mirror outcome record too short") }
            let differences =
                reader.rest.isEmpty ? [] : try decodeJSON([MirrorOutcome.Difference].self, reader.rest)
            return .record(
                .mirror(
                    MirrorOutcome(
                        connection: connection,
                        time: time,
                        mirror: mirror,
                        action: action,
                        kind: RecordFormat.outcomeKinds[Int(kind)],
                        messageID: id,
                        differences: differences
                    )
                )
            )
        }
    }

    /// Reads the length-prefixed parts of a record body.
    private struct BodyReader {
        var bytes: ArraySlice<UInt8>

        var rest: ArraySlice<UInt8> { bytes }

        mutating func byte() -> UInt8? { bytes.popFirst() }

        mutating func shortString() -> String? {
            guard let count = byte().map(Int.init), bytes.count >= count else { return nil }
            defer { bytes = bytes.dropFirst(count) }
            return String(decoding: bytes.prefix(count), as: UTF8.self)
        }

        mutating func longString() -> String? {
            guard let low = byte(), let high = byte() else { return nil }
            let count = Int(low) | Int(high) << 8
            guard bytes.count >= count else { return nil }
            defer { bytes = bytes.dropFirst(count) }
            return String(decoding: bytes.prefix(count), as: UTF8.self)
        }
    }

    private func decodeJSON<T: Decodable>(_ type: T.Type, _ bytes: ArraySlice<UInt8>) throws(RecordingReadError) -> T {
        do {
            return try Self.decoder.decode(type, from: Data(bytes))
        } catch {
            throw RecordingReadError(.corrupt, "undecodable \(type) record: \(error)")
        }
    }
}

/// Why a recording could not be read (completely).
public struct RecordingReadError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case notARecording, unsupportedVersion, corrupt, io, compression
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
