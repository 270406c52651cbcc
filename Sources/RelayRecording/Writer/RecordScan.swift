import CZlib

/// One record of a batch of encoded records: where it is and what its header says.
struct ScannedRecord {
    /// The whole record (length, checksum and body) within the batch.
    var range: Range<Int>
    var kind: UInt8
    var time: UInt64
    var connection: UInt64
    /// The body after kind, time and connection.
    var rest: Range<Int>

    var isJournalOnly: Bool {
        kind == RecordFormat.Kind.endConnection.rawValue || kind == RecordFormat.Kind.overflow.rawValue
    }
    var isFrame: Bool { kind == RecordFormat.Kind.frame.rawValue || kind == RecordFormat.Kind.mirrorFrame.rawValue }
}

/// Walks the records of a batch of encoded records (``RecordFormat``'s framing, no magic). The writer's own batches
/// are trusted; a journal left by a dead process is checked (`verify`), and the walk stops at the first record that
/// is torn or does not check out.
struct RecordScan: Sequence, IteratorProtocol {
    let bytes: UnsafeRawBufferPointer
    let verify: Bool
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer, verify: Bool = false) {
        self.bytes = bytes
        self.verify = verify
    }

    mutating func next() -> ScannedRecord? {
        guard bytes.count - offset >= 8 else { return nil }
        let length = Int(uint32(at: offset))
        let bodyStart = offset + 8
        guard length >= 10, length <= RecordFormat.maximumBodyLength, bytes.count - bodyStart >= length else {
            return nil
        }
        if verify {
            let crc = UInt32(crc32(0, bytes.baseAddress! + bodyStart, UInt32(length)))
            guard crc == uint32(at: offset + 4) else { return nil }
        }
        let end = bodyStart + length
        var time: UInt64 = 0
        for shift in 0..<8 { time |= UInt64(bytes[bodyStart + 1 + shift]) << (8 * UInt64(shift)) }
        var index = bodyStart + 9
        var connection: UInt64 = 0
        var shift: UInt64 = 0
        while index < end, shift < 64 {
            let byte = bytes[index]
            index += 1
            connection |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        defer { offset = end }
        return ScannedRecord(
            range: offset..<end,
            kind: bytes[bodyStart],
            time: time,
            connection: connection,
            rest: index..<end
        )
    }

    private func uint32(at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
            | UInt32(bytes[offset + 3]) << 24
    }
}
