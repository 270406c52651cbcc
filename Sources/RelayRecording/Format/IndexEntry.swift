/// One line of a segment's index file (`<segment>.idx`, JSON lines, uncompressed).
///
/// The index lets `recordings list` and `show --charger` find a charger's connections without
/// decompressing every segment. It is a cache: a segment whose index is missing or has no `end`
/// line (the relay was killed) is scanned instead.
public struct IndexEntry: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// First line: which run, loop and sequence number wrote the segment.
        case segment
        /// A connection opened in this segment (or continues into it, with `resumed`).
        case open
        /// A connection ended in this segment; counters cover this segment only.
        case close
        /// A connection was still open when the segment rolled over; counters cover this segment only.
        case `continued`
        /// The segment was finished cleanly.
        case end
    }

    public var type: Kind
    public var time: UInt64
    public var runID: String?
    public var connection: UInt64?
    public var charger: String?
    public var subprotocol: String?
    public var resumed: Bool?
    public var frames: Int?
    /// Record bytes before compression.
    public var rawBytes: Int?
    /// Compressed bytes (for a connection: its share of each flush).
    public var diskBytes: Int?
    /// WebSocket messages, each counted once even when forwarded to the other leg.
    public var messages: Int?
    /// Payload bytes of those messages.
    public var textBytes: Int?
    /// For a `close`: how the connection ended, from its first close record (who started it, the code, the reason).
    public var closedBy: String?
    public var closeCode: Int?
    public var closeReason: String?
    /// For an `open`: the connection's frames are judged against their schema (``ConnectionOpen/judged``); for a
    /// `close` or `continued`: how many of them were invalid in this segment.
    public var judged: Bool?
    public var invalid: Int?

    public init(
        type: Kind,
        time: UInt64,
        runID: String? = nil,
        connection: UInt64? = nil,
        charger: String? = nil,
        subprotocol: String? = nil,
        resumed: Bool? = nil,
        frames: Int? = nil,
        rawBytes: Int? = nil,
        diskBytes: Int? = nil,
        messages: Int? = nil,
        textBytes: Int? = nil,
        closedBy: String? = nil,
        closeCode: Int? = nil,
        closeReason: String? = nil,
        judged: Bool? = nil,
        invalid: Int? = nil
    ) {
        self.judged = judged
        self.invalid = invalid
        self.type = type
        self.time = time
        self.runID = runID
        self.connection = connection
        self.charger = charger
        self.subprotocol = subprotocol
        self.resumed = resumed
        self.frames = frames
        self.rawBytes = rawBytes
        self.diskBytes = diskBytes
        self.messages = messages
        self.textBytes = textBytes
        self.closedBy = closedBy
        self.closeCode = closeCode
        self.closeReason = closeReason
    }
}
