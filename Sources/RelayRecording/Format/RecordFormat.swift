import CZlib
import Foundation

/// The byte layout of a recording, inside its gzip stream.
///
/// ```
/// stream  := magic record*
/// magic   := "OCPPREC" 0x01                      (8 bytes; the last byte is the format version)
/// record  := length:u32le crc32:u32le body        (crc32 of body, zlib's polynomial)
/// body    := kind:u8 time:u64le connection:varint rest
/// kind 1  frame   rest := flags:u8 opcode:u8 payload   (flags: 1 upstream leg, 2 sent by relay, 4 forwarded unchanged)
/// kind 2  open    rest := JSON (ConnectionOpen)
/// kind 3  close   rest := JSON (ConnectionClose)
/// kind 4  error   rest := JSON (ConnectionErrorEvent)
/// kind 5  header  rest := JSON (SegmentHeader)
/// kind 6  gap     rest := JSON (RecordingGap)
/// kind 7  mirror frame    rest := flags:u8 opcode:u8 nameLength:u8 name payload   (flags: 2 sent by relay)
/// kind 8  mirror outcome  rest := outcome:u8 nameLength:u8 name actionLength:u8 action idLength:u16le id
///                                 differences (JSON array, diverged only)
/// kind 9  verdict rest := JSON (FrameVerdictRecord), right after the invalid frame it judges
/// ```
/// A reader that meets a kind it does not know skips the record; a record whose length or CRC does not
/// check out ends the readable prefix (the tail of a file cut off by a crash).
public enum RecordFormat {
    /// The version written into the magic and the segment header.
    public static let version = 1
    /// The 8 bytes every decompressed stream starts with.
    public static let magic: [UInt8] = Array("OCPPREC".utf8) + [UInt8(version)]
    /// Bodies longer than this are treated as corruption (frames are bounded far below it).
    public static let maximumBodyLength = 256 << 20

    enum Kind: UInt8 {
        case frame = 1, open = 2, close = 3, error = 4, header = 5, gap = 6, mirrorFrame = 7, mirrorOutcome = 8,
            verdict = 9
        /// Journal-only kinds: instructions from the event loop to the segment writer, never written to a segment
        /// (a reader would skip them anyway). `endConnection`: the connection is over; `overflow`: records the
        /// journal could not take (rest: JSON ``RecordingGap``).
        case endConnection = 0xF0, overflow = 0xF1
    }

    /// Outcome numbers of kind 8, in ``MirrorOutcome/Kind`` order.
    static let outcomeKinds = MirrorOutcome.Kind.allCases

    enum FrameFlags {
        static let upstream: UInt8 = 1
        static let out: UInt8 = 2
        static let forwardedUnchanged: UInt8 = 4
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Appends a frame record without building a `FrameRecord` (the relay's hot path).
    public static func appendFrame(
        to output: inout [UInt8],
        connection: UInt64,
        time: UInt64,
        leg: Leg,
        direction: Direction,
        opcode: UInt8,
        forwardedUnchanged: Bool,
        payload: UnsafeRawBufferPointer
    ) {
        var flags: UInt8 = 0
        if leg == .upstream { flags |= FrameFlags.upstream }
        if direction == .out { flags |= FrameFlags.out }
        if forwardedUnchanged { flags |= FrameFlags.forwardedUnchanged }
        appendRecord(to: &output, kind: .frame, time: time, connection: connection) { body in
            body.append(flags)
            body.append(opcode)
            body.append(contentsOf: payload)
        }
    }

    /// Appends a frame of a mirror's leg.
    public static func appendMirrorFrame(
        to output: inout [UInt8],
        connection: UInt64,
        time: UInt64,
        mirror: String,
        direction: Direction,
        opcode: UInt8,
        payload: UnsafeRawBufferPointer
    ) {
        appendRecord(to: &output, kind: .mirrorFrame, time: time, connection: connection) { body in
            body.append(direction == .out ? FrameFlags.out : 0)
            body.append(opcode)
            appendShortString(mirror, to: &body)
            body.append(contentsOf: payload)
        }
    }

    /// Appends a mirror outcome without JSON unless it carries differences (matched ones are the common case).
    public static func appendMirrorOutcome(_ outcome: MirrorOutcome, to output: inout [UInt8]) {
        appendRecord(to: &output, kind: .mirrorOutcome, time: outcome.time, connection: outcome.connection) { body in
            body.append(UInt8(outcomeKinds.firstIndex(of: outcome.kind) ?? 0))
            appendShortString(outcome.mirror, to: &body)
            appendShortString(outcome.action, to: &body)
            let id = Array(outcome.messageID.utf8.prefix(Int(UInt16.max)))
            withUnsafeBytes(of: UInt16(id.count).littleEndian) { body.append(contentsOf: $0) }
            body.append(contentsOf: id)
            if !outcome.differences.isEmpty, let json = try? encoder.encode(outcome.differences) {
                body.append(contentsOf: json)
            }
        }
    }

    /// A string of at most 255 bytes, after its length (longer ones are cut at a character boundary).
    private static func appendShortString(_ text: String, to body: inout [UInt8]) {
        var bytes = Array(text.utf8)
        if bytes.count > 255 { bytes = Array(String(decoding: bytes.prefix(252), as: UTF8.self).utf8.prefix(255)) }
        body.append(UInt8(bytes.count))
        body.append(contentsOf: bytes)
    }

    /// Appends any record.
    public static func append(_ record: Record, to output: inout [UInt8]) {
        switch record {
        case .frame(let f) where f.leg == .mirror:
            f.payload.withUnsafeBytes { payload in
                appendMirrorFrame(
                    to: &output,
                    connection: f.connection,
                    time: f.time,
                    mirror: f.mirror ?? "",
                    direction: f.direction,
                    opcode: f.opcode,
                    payload: payload
                )
            }
        case .mirror(let m):
            appendMirrorOutcome(m, to: &output)
        case .frame(let f):
            f.payload.withUnsafeBytes { payload in
                appendFrame(
                    to: &output,
                    connection: f.connection,
                    time: f.time,
                    leg: f.leg,
                    direction: f.direction,
                    opcode: f.opcode,
                    forwardedUnchanged: f.forwardedUnchanged,
                    payload: payload
                )
            }
        case .open(let o): appendJSON(o, kind: .open, time: o.time, connection: o.connection, to: &output)
        case .close(let c): appendJSON(c, kind: .close, time: c.time, connection: c.connection, to: &output)
        case .error(let e): appendJSON(e, kind: .error, time: e.time, connection: e.connection, to: &output)
        case .segmentHeader(let h): appendJSON(h, kind: .header, time: h.time, connection: 0, to: &output)
        case .gap(let g): appendJSON(g, kind: .gap, time: g.time, connection: 0, to: &output)
        case .verdict(let v): appendJSON(v, kind: .verdict, time: v.time, connection: v.connection, to: &output)
        }
    }

    /// Appends the journal-only record saying that `connection` is over.
    static func appendEndConnection(_ connection: UInt64, time: UInt64, to output: inout [UInt8]) {
        appendRecord(to: &output, kind: .endConnection, time: time, connection: connection) { _ in }
    }

    /// Appends the journal-only record counting records the journal could not take.
    static func appendOverflow(_ gap: RecordingGap, to output: inout [UInt8]) {
        appendJSON(gap, kind: .overflow, time: gap.time, connection: 0, to: &output)
    }

    private static func appendJSON<T: Encodable>(
        _ value: T,
        kind: Kind,
        time: UInt64,
        connection: UInt64,
        to output: inout [UInt8]
    ) {
        // Encoding these plain structs cannot fail.
        let json = (try? encoder.encode(value)) ?? Data("{}".utf8)
        appendRecord(to: &output, kind: kind, time: time, connection: connection) { $0.append(contentsOf: json) }
    }

    private static func appendRecord(
        to output: inout [UInt8],
        kind: Kind,
        time: UInt64,
        connection: UInt64,
        body: (inout [UInt8]) -> Void
    ) {
        let headerStart = output.count
        output.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])
        let bodyStart = output.count
        output.append(kind.rawValue)
        withUnsafeBytes(of: time.littleEndian) { output.append(contentsOf: $0) }
        appendVarint(connection, to: &output)
        body(&output)
        let length = UInt32(output.count - bodyStart)
        let crc = output.withUnsafeBufferPointer { buffer in
            UInt32(crc32(0, buffer.baseAddress! + bodyStart, UInt32(length)))
        }
        writeUInt32(length, into: &output, at: headerStart)
        writeUInt32(crc, into: &output, at: headerStart + 4)
    }

    static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            output.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        output.append(UInt8(v))
    }

    private static func writeUInt32(_ value: UInt32, into output: inout [UInt8], at offset: Int) {
        output[offset] = UInt8(truncatingIfNeeded: value)
        output[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
        output[offset + 2] = UInt8(truncatingIfNeeded: value >> 16)
        output[offset + 3] = UInt8(truncatingIfNeeded: value >> 24)
    }
}
