/// The side of the relay a frame travelled on.
public enum Leg: String, Sendable, Hashable, Codable {
    /// Between the charger and the relay.
    case charger
    /// Between the relay and the upstream backend.
    case upstream
    /// Between the relay and a mirror backend (``FrameRecord/mirror`` names it).
    case mirror

    /// The leg a frame of this one is forwarded to (a mirror's answers go nowhere: the charger's side).
    public var opposite: Leg { self == .charger ? .upstream : .charger }
}

/// Whether the relay received or sent a frame.
public enum Direction: String, Sendable, Hashable, Codable {
    /// Received by the relay.
    case `in`
    /// Sent by the relay.
    case out
}

/// One entry of a recording.
public enum Record: Sendable, Hashable {
    /// The first record of every segment file.
    case segmentHeader(SegmentHeader)
    /// A connection opened (or, with `resumed`, continues from the previous segment).
    case open(ConnectionOpen)
    /// A WebSocket message on one leg.
    case frame(FrameRecord)
    /// A leg closed.
    case close(ConnectionClose)
    /// Something went wrong on a connection.
    case error(ConnectionErrorEvent)
    /// Records of this event loop that could not be written (the disk was full): what is missing, and when.
    case gap(RecordingGap)
    /// How a mirror's answer compared with the primary's, or a message it never got.
    case mirror(MirrorOutcome)
    /// What the relay found wrong with the frame just before it (frames without one were valid, or not judged).
    case verdict(FrameVerdictRecord)

    /// Microseconds since the Unix epoch.
    public var time: UInt64 {
        switch self {
        case .segmentHeader(let h): h.time
        case .open(let o): o.time
        case .frame(let f): f.time
        case .close(let c): c.time
        case .error(let e): e.time
        case .gap(let g): g.time
        case .mirror(let m): m.time
        case .verdict(let v): v.time
        }
    }

    /// The connection the record belongs to (0 for segment headers).
    public var connection: UInt64 {
        switch self {
        case .segmentHeader: 0
        case .open(let o): o.connection
        case .frame(let f): f.connection
        case .close(let c): c.connection
        case .error(let e): e.connection
        case .gap: 0
        case .mirror(let m): m.connection
        case .verdict(let v): v.connection
        }
    }
}

/// Metadata at the start of every segment.
public struct SegmentHeader: Sendable, Hashable, Codable {
    /// Version of the record format inside the stream.
    public var format: Int
    /// The relay's version string.
    public var relayVersion: String
    /// Random id of the relay process that wrote the segment; connection numbers are unique within it.
    public var runID: String
    /// Index of the event loop that wrote it.
    public var loop: Int
    /// Sequence number of the segment within the run and loop.
    public var sequence: Int
    public var time: UInt64

    public init(
        format: Int = RecordFormat.version,
        relayVersion: String,
        runID: String,
        loop: Int,
        sequence: Int,
        time: UInt64
    ) {
        self.format = format
        self.relayVersion = relayVersion
        self.runID = runID
        self.loop = loop
        self.sequence = sequence
        self.time = time
    }
}

/// A charger connection that the relay accepted or refused.
public struct ConnectionOpen: Sendable, Hashable, Codable {
    public var connection: UInt64
    public var time: UInt64
    /// The charge point identity (decoded).
    public var charger: String
    /// The request path as the charger sent it.
    public var path: String
    /// Subprotocols the charger offered.
    public var offeredSubprotocols: [String]
    /// The subprotocol the charger got, if any.
    public var subprotocol: String?
    /// The subprotocol upstream chose, when it differs from the charger's (translation).
    public var upstreamSubprotocol: String?
    /// The charger's address.
    public var remoteAddress: String?
    /// The URL the relay dialled (without credentials).
    public var upstreamURL: String?
    /// Whether the charger sent an Authorization header (its value is never recorded).
    public var authorizationPresent: Bool
    /// The user name of Basic authorization, if any (never the password).
    public var authorizationUser: String?
    /// True when this record restates an open connection at the start of a new segment.
    public var resumed: Bool
    /// The subprotocol each mirror is spoken to in, by mirror name (none: no mirrors).
    public var mirrorSubprotocols: [String: String]?
    /// True when the relay judges this connection's frames against their version's schema: an invalid frame is
    /// followed by its ``Record/verdict(_:)``, so a frame without one is valid (or could not be judged).
    public var judged: Bool?

    public init(
        connection: UInt64,
        time: UInt64,
        charger: String,
        path: String,
        offeredSubprotocols: [String],
        subprotocol: String?,
        upstreamSubprotocol: String? = nil,
        remoteAddress: String?,
        upstreamURL: String?,
        authorizationPresent: Bool = false,
        authorizationUser: String? = nil,
        resumed: Bool = false,
        mirrorSubprotocols: [String: String]? = nil
    ) {
        self.mirrorSubprotocols = mirrorSubprotocols
        self.connection = connection
        self.time = time
        self.charger = charger
        self.path = path
        self.offeredSubprotocols = offeredSubprotocols
        self.subprotocol = subprotocol
        self.upstreamSubprotocol = upstreamSubprotocol
        self.remoteAddress = remoteAddress
        self.upstreamURL = upstreamURL
        self.authorizationPresent = authorizationPresent
        self.authorizationUser = authorizationUser
        self.resumed = resumed
    }
}

extension ConnectionOpen {
    /// The backend's URL without the charger's identity at its end: what the connections of a route share.
    public var upstreamBase: String? {
        guard var url = upstreamURL else { return nil }
        if url.hasSuffix("/\(charger)") { url.removeLast(charger.count + 1) }
        return url
    }
}

/// A WebSocket message as it crossed one leg.
public struct FrameRecord: Sendable, Hashable {
    public var connection: UInt64
    public var time: UInt64
    public var leg: Leg
    public var direction: Direction
    /// The WebSocket opcode (1 text, 2 binary).
    public var opcode: UInt8
    /// The message payload exactly as it was (unmasked).
    public var payload: [UInt8]
    /// Set on a received frame that the relay forwarded unchanged to the other leg; readers expand it
    /// into the matching `out` frame, so the bytes are stored once.
    public var forwardedUnchanged: Bool
    /// The mirror whose leg this is (``Leg/mirror`` frames only).
    public var mirror: String?

    public init(
        connection: UInt64,
        time: UInt64,
        leg: Leg,
        direction: Direction,
        opcode: UInt8,
        payload: [UInt8],
        forwardedUnchanged: Bool = false,
        mirror: String? = nil
    ) {
        self.mirror = mirror
        self.connection = connection
        self.time = time
        self.leg = leg
        self.direction = direction
        self.opcode = opcode
        self.payload = payload
        self.forwardedUnchanged = forwardedUnchanged
    }

    /// The payload as text (invalid UTF-8 is repaired with U+FFFD).
    public var text: String { String(decoding: payload, as: UTF8.self) }

    /// Whether this is a text frame.
    public var isText: Bool { opcode == 1 }
}

/// The relay's verdict on an invalid frame (a peer's frame that breaks its version's schema, or is no OCPP frame),
/// recorded right after it.
public struct FrameVerdictRecord: Sendable, Hashable, Codable {
    public var connection: UInt64
    /// The frame's time: with its leg and direction, it names the frame.
    public var time: UInt64
    public var leg: Leg
    public var direction: Direction
    /// `Action`, `Action.result`, `Action.error` or `(not OCPP)`.
    public var action: String
    /// What is wrong, one line each (a JSON path and the rule broken).
    public var reasons: [String]

    public init(connection: UInt64, time: UInt64, leg: Leg, direction: Direction, action: String, reasons: [String]) {
        self.connection = connection
        self.time = time
        self.leg = leg
        self.direction = direction
        self.action = action
        self.reasons = reasons
    }
}

/// A leg of a connection closed, or the connection was refused before it opened.
public struct ConnectionClose: Sendable, Hashable, Codable {
    public var connection: UInt64
    public var time: UInt64
    /// Which leg closed first or was closed.
    public var leg: Leg
    /// Who started the close: `charger`, `upstream` or `relay`.
    public var initiator: String
    /// The WebSocket close code (1005 none given, 1006 connection lost), or the HTTP status of a refusal.
    public var code: Int
    public var reason: String
    /// True when the connection never opened: the HTTP status the charger got is in `code`.
    public var refused: Bool

    public init(
        connection: UInt64,
        time: UInt64,
        leg: Leg,
        initiator: String,
        code: Int,
        reason: String,
        refused: Bool = false
    ) {
        self.connection = connection
        self.time = time
        self.leg = leg
        self.initiator = initiator
        self.code = code
        self.reason = reason
        self.refused = refused
    }
}

/// Records that could not be written while the recordings' file system refused writes (full, or over a file size
/// limit). The frames were forwarded all the same. Written, with `time` the moment writing worked again, as the
/// first record after the segment that restates the connections still open.
public struct RecordingGap: Sendable, Hashable, Codable {
    public var time: UInt64
    /// The first and the last record that could not be written.
    public var from: UInt64
    public var to: UInt64
    /// Frames (messages) not recorded, and all records (opens, closes and errors too).
    public var frames: Int
    public var records: Int
    /// What the file system said.
    public var error: String

    public init(time: UInt64, from: UInt64, to: UInt64, frames: Int, records: Int, error: String) {
        self.time = time
        self.from = from
        self.to = to
        self.frames = frames
        self.records = records
        self.error = error
    }
}

/// An error on a connection: a frame over the size limit, a protocol violation, an upstream failure.
public struct ConnectionErrorEvent: Sendable, Hashable, Codable {
    public var connection: UInt64
    public var time: UInt64
    public var leg: Leg
    public var message: String
    /// The mirror concerned, on ``Leg/mirror``.
    public var mirror: String?

    public init(connection: UInt64, time: UInt64, leg: Leg, message: String, mirror: String? = nil) {
        self.connection = connection
        self.time = time
        self.leg = leg
        self.message = message
        self.mirror = mirror
    }
}
