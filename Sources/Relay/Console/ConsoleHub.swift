import NIOConcurrencyHelpers
import RelayRecording
import Synchronization

/// What the console sees of the relay as it happens: the frames of the chargers someone watches, and the mirrors'
/// comparisons. Sessions publish; each viewer reads its own bounded stream.
///
/// The frame path pays one relaxed atomic load while nobody watches anything. A viewer's stream keeps at most
/// ``ConsoleWatcher/capacity`` events: a browser that cannot keep up loses the oldest (counted, and told), and never
/// slows a session down or makes the relay hold more than that.
public final class ConsoleHub: Sendable {
    private let watching = Atomic<Int>(0)
    private let watchers = NIOLockedValueBox<[String: [ConsoleWatcher]]>([:])
    private let mirrors = NIOLockedValueBox(MirrorTally())
    let verdictBoard = NIOLockedValueBox(VerdictBoard())

    public init() {}

    // MARK: Watching one charger

    /// At most this many viewers at once (each holds a buffer).
    public static let maximumWatchers = 64

    /// Whether another viewer may watch now.
    public var canWatch: Bool { watching.load(ordering: .relaxed) < Self.maximumWatchers }

    /// Starts watching a charger's frames (of its current and later connections); `nil` when
    /// ``maximumWatchers`` viewers already watch.
    public func watch(_ identity: String, capacity: Int = ConsoleWatcher.defaultCapacity) -> ConsoleWatcher? {
        let watcher = ConsoleWatcher(identity: identity, capacity: capacity)
        let added = watchers.withLockedValue { all -> Bool in
            guard all.values.reduce(0, { $0 + $1.count }) < Self.maximumWatchers else { return false }
            all[identity, default: []].append(watcher)
            return true
        }
        guard added else { return nil }
        watching.add(1, ordering: .relaxed)
        return watcher
    }

    /// Stops a watcher (its stream ends).
    public func stop(_ watcher: ConsoleWatcher) {
        let removed = watchers.withLockedValue { all -> Bool in
            guard let list = all[watcher.identity], list.contains(where: { $0 === watcher }) else { return false }
            let rest = list.filter { $0 !== watcher }
            all[watcher.identity] = rest.isEmpty ? nil : rest
            return true
        }
        if removed { watching.subtract(1, ordering: .relaxed) }
        watcher.finish()
    }

    /// Whether anyone watches anything (one atomic load: the frame path asks this first).
    var isWatched: Bool { watching.load(ordering: .relaxed) > 0 }

    /// Hands an event of `identity` to its watchers.
    func publish(_ identity: String, _ event: @autoclosure () -> ConsoleEvent) {
        guard isWatched, let list = watchers.withLockedValue({ $0[identity] }) else { return }
        let event = event()
        for watcher in list { watcher.offer(event) }
    }

    /// Offers every watcher a keepalive (a stream writes it, and so learns that its viewer left).
    public func keepalive() {
        guard isWatched else { return }
        let all = watchers.withLockedValue { $0.values.flatMap { $0 } }
        for watcher in all { watcher.offer(ConsoleEvent(kind: .keepalive)) }
    }

    // MARK: Mirrors

    /// A mirror's answer compared with the primary's.
    func mirrorOutcome(identity: String, _ outcome: MirrorOutcome) {
        mirrors.withLockedValue { $0.add(identity: identity, outcome) }
    }

    /// The comparisons so far: per mirror and action, and the latest divergences.
    public var mirrorReport: MirrorTally { mirrors.withLockedValue { $0 } }
}

/// One frame or event of a watched charger, as the console shows it.
public struct ConsoleEvent: Sendable {
    public enum Kind: String, Sendable {
        case frame, note, open, close
        /// An invalid frame's verdict: it names the frame by ``recordedAt``, ``connection``, ``leg`` and
        /// ``direction``, and `text` says what is wrong.
        case verdict
        /// Nothing happened: lets a stream notice a viewer that left.
        case keepalive
    }

    public var kind: Kind
    /// Wall-clock milliseconds since the Unix epoch.
    public var time: Int64
    public var connection: UInt64
    /// Its number within the connection (what ``cause`` refers to).
    public var number: UInt64
    /// `charger`, `upstream`, or `mirror:NAME`.
    public var leg: String
    /// `in` (the relay received it) or `out` (the relay sent it).
    public var direction: String
    /// Forwarded unchanged to the other leg (one event for both).
    public var forwarded: Bool
    /// The frame's text (or the note).
    public var text: String
    /// The event whose handling produced this frame (a translation: the original's sequence number).
    public var cause: UInt64?
    /// This event's number in its watcher's stream (set by the watcher).
    public var sequence: UInt64 = 0
    /// A frame's recorded time (microseconds since the Unix epoch), which its verdict names it by.
    public var recordedAt: UInt64

    public init(
        kind: Kind,
        time: Int64 = 0,
        connection: UInt64 = 0,
        number: UInt64 = 0,
        leg: String = "",
        direction: String = "",
        forwarded: Bool = false,
        text: String = "",
        cause: UInt64? = nil,
        recordedAt: UInt64 = 0
    ) {
        self.recordedAt = recordedAt
        self.kind = kind
        self.time = time
        self.connection = connection
        self.number = number
        self.leg = leg
        self.direction = direction
        self.forwarded = forwarded
        self.text = text
        self.cause = cause
    }
}

/// One browser's view of one charger: a bounded stream.
public final class ConsoleWatcher: Sendable {
    public static let defaultCapacity = 2000

    public let identity: String
    public let capacity: Int
    public let events: AsyncStream<ConsoleEvent>
    private let continuation: AsyncStream<ConsoleEvent>.Continuation
    private let counters = NIOLockedValueBox((next: UInt64(1), dropped: 0))

    init(identity: String, capacity: Int) {
        self.identity = identity
        self.capacity = capacity
        (events, continuation) = AsyncStream.makeStream(
            of: ConsoleEvent.self,
            bufferingPolicy: .bufferingNewest(capacity)
        )
    }

    /// How many events were dropped because the viewer did not keep up.
    public var dropped: Int { counters.withLockedValue { $0.dropped } }

    func offer(_ event: ConsoleEvent) {
        var event = event
        event.sequence = counters.withLockedValue { c in
            defer { c.next += 1 }
            return c.next
        }
        if case .dropped = continuation.yield(event) {
            counters.withLockedValue { $0.dropped += 1 }
        }
    }

    func finish() {
        continuation.finish()
    }
}

/// The mirrors' comparisons since the relay started: per mirror and action, each outcome counted, and the latest
/// divergences with their differing values.
public struct MirrorTally: Sendable {
    public struct Divergence: Sendable {
        public var identity: String
        public var outcome: MirrorOutcome
    }

    /// mirror → action → outcome kind → count.
    public private(set) var counts: [String: [String: [String: Int]]] = [:]
    public private(set) var divergences: [Divergence] = []
    public static let divergencesKept = 200

    mutating func add(identity: String, _ outcome: MirrorOutcome) {
        counts[outcome.mirror, default: [:]][outcome.action, default: [:]][outcome.kind.rawValue, default: 0] += 1
        guard outcome.kind == .diverged else { return }
        divergences.append(Divergence(identity: identity, outcome: outcome))
        if divergences.count > Self.divergencesKept {
            divergences.removeFirst(divergences.count - Self.divergencesKept)
        }
    }
}
