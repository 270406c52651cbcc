import RelayRecording
import Testing

@Suite("Record kinds")
struct RecordKindTests {
    /// CRC-32 (IEEE, as zlib computes it), bit by bit: enough for a test record.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// A record of a kind this reader does not know, framed as the format says: length, CRC, body.
    static func unknownRecord(kind: UInt8) -> [UInt8] {
        var body: [UInt8] = [kind]
        withUnsafeBytes(of: UInt64(1_764_000_000_000_000).littleEndian) { body.append(contentsOf: $0) }
        body.append(7)  // connection 7, as a varint
        body.append(contentsOf: Array(#"{"from":"a newer relay"}"#.utf8))
        var record: [UInt8] = []
        withUnsafeBytes(of: UInt32(body.count).littleEndian) { record.append(contentsOf: $0) }
        withUnsafeBytes(of: crc32(body).littleEndian) { record.append(contentsOf: $0) }
        return record + body
    }

    @Test("a reader skips a record of an unknown kind and reads on; a gap record round-trips")
    func unknownKindSkipped() throws {
        let gap = RecordingGap(
            time: 3_000_000,
            from: 1_000_000,
            to: 2_000_000,
            frames: 12,
            records: 14,
            error: "No space left on device"
        )
        let error = ConnectionErrorEvent(connection: 7, time: 4_000_000, leg: .upstream, message: "after")
        var stream = RecordFormat.magic
        RecordFormat.append(.gap(gap), to: &stream)
        stream += Self.unknownRecord(kind: 200)
        RecordFormat.append(.error(error), to: &stream)
        var decoder = RecordDecoder()
        decoder.feed(stream)
        var steps: [String] = []
        while true {
            switch try decoder.next() {
            case .record(.gap(let g)): steps.append(g == gap ? "gap" : "wrong gap")
            case .record(.error(let e)): steps.append(e == error ? "error" : "wrong error")
            case .record(let other): steps.append("unexpected \(other)")
            case .skipped: steps.append("skipped")
            case .needMoreData:
                #expect(steps == ["gap", "skipped", "error"])
                #expect(decoder.pendingByteCount == 0)
                return
            }
        }
    }
}
