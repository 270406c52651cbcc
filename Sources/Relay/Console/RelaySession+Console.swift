import NIOCore
import OCPP
import RelayConfig
import RelayRecording

/// What the console shows of one connection, beside its frames: kept by the session on its event loop (a few
/// integer writes per message), read by ``RelayServer/consoleChargers()`` on that loop.
struct SessionConsoleInfo: Sendable {
    /// Where the charger goes and in which versions (fixed at connect).
    var route: String
    var upstream: String
    var chargerVersion: String?
    var upstreamVersion: String?
    /// Wall-clock microseconds of the connect, and of the last message either way.
    var connectedAt: UInt64 = 0
    var lastMessageAt: UInt64 = 0
    /// Messages from the charger, and to it.
    var messagesIn = 0
    var messagesOut = 0
    /// The action of the last call either way (an index into ``OCPPAction/all``), if OCPP defines it.
    var lastAction: Int?
    /// Wall-clock microseconds since the lost upstream is redialled (the charger is kept within the grace).
    var redialingSince: UInt64?
}

/// One connected charger, as the console's chargers page lists it.
public struct ConsoleCharger: Sendable, Codable {
    public struct MirrorState: Sendable, Codable {
        public var name: String
        public var mode: String
        public var connected: Bool
    }

    public var identity: String
    public var connection: UInt64
    public var route: String
    public var upstream: String
    public var chargerVersion: String?
    public var upstreamVersion: String?
    public var translated: Bool
    /// RFC 3339.
    public var connectedSince: String
    /// RFC 3339: since when the lost upstream is dialled again while the charger is kept (its grace); `nil` while
    /// the upstream is connected.
    public var upstreamRedialingSince: String?
    public var lastMessage: String?
    public var lastAction: String?
    public var messagesIn: Int
    public var messagesOut: Int
    public var mirrors: [MirrorState]
}

extension RelaySession {
    /// Counts a message of the charger's leg for the console (`direction` 0: from the charger).
    func consoleCount(direction: Int, action: Int?) {
        if direction == 0 { consoleInfo.messagesIn += 1 } else { consoleInfo.messagesOut += 1 }
        consoleInfo.lastMessageAt = clock.wall()
        if let action { consoleInfo.lastAction = action }
    }

    /// Hands a frame to the console's watchers of this charger, when there are any.
    func consoleFrame(
        _ bytes: UnsafeRawBufferPointer,
        leg: String,
        direction: Direction,
        forwarded: Bool,
        time: UInt64
    ) {
        guard let console, console.isWatched else { return }
        let received = direction == .in && !leg.hasPrefix("mirror")
        let number: UInt64
        if received, let reserved = consoleReserved {
            number = reserved
            consoleReserved = nil
        } else {
            consoleNumber += 1
            number = consoleNumber
        }
        // What the relay sends is caused by the last message it received (a translation, a forwarded answer, a
        // mirror's copy).
        if received { consoleCause = number }
        console.publish(
            identity.value,
            ConsoleEvent(
                kind: .frame,
                time: Int64(time / 1000),
                connection: connection,
                number: number,
                leg: leg,
                direction: direction.rawValue,
                forwarded: forwarded,
                text: String(decoding: bytes, as: UTF8.self),
                cause: direction == .out ? consoleCause : nil,
                recordedAt: time
            )
        )
    }

    /// Takes the console number of the message being received before its mirrors get their copies, so that those
    /// copies name it as their cause although they reach the console first.
    func consoleReserve() {
        guard let console, console.isWatched else { return }
        consoleNumber += 1
        consoleReserved = consoleNumber
        consoleCause = consoleNumber
    }

    /// Hands a note, an open or a close of this connection to the console's watchers.
    func consoleEvent(_ kind: ConsoleEvent.Kind, leg: String, _ text: String) {
        guard let console, console.isWatched else { return }
        consoleNumber += 1
        console.publish(
            identity.value,
            ConsoleEvent(
                kind: kind,
                time: Int64(clock.wall() / 1000),
                connection: connection,
                number: consoleNumber,
                leg: leg,
                text: text
            )
        )
    }

    /// The charger as the console lists it (on the session's event loop).
    func consoleSnapshot() -> ConsoleCharger {
        let info = consoleInfo
        return ConsoleCharger(
            identity: identity.value,
            connection: connection,
            route: info.route,
            upstream: info.upstream,
            chargerVersion: info.chargerVersion,
            upstreamVersion: info.upstreamVersion,
            translated: translator != nil,
            connectedSince: Timestamp.rfc3339(info.connectedAt),
            upstreamRedialingSince: info.redialingSince.map(Timestamp.rfc3339),
            lastMessage: info.lastMessageAt == 0 ? nil : Timestamp.rfc3339(info.lastMessageAt),
            lastAction: info.lastAction.map { OCPPAction.all[$0] },
            messagesIn: info.messagesIn,
            messagesOut: info.messagesOut,
            mirrors: mirrors?.mirrors.map {
                .init(name: $0.settings.name, mode: $0.settings.mode.rawValue, connected: $0.handler != nil)
            } ?? []
        )
    }
}
