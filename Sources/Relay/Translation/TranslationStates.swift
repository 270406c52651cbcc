import NIOConcurrencyHelpers
import NIOCore
import OCPPTranslation
import RelayStateStores

/// The translation state of every charger: the store, and in front of it the states handed over and not yet
/// written. A charger that reconnects (on any loop) while its last state is on its way to the store gets that
/// state, not the older one stored.
final class TranslationStates: Sendable {
    let store: any TranslationStateStore
    /// Passwords backends changed, beside the states.
    let passwords: (any ChargerPasswordStore)?
    private let unwritten = UnwrittenStates()
    private let writers = NIOLockedValueBox<[ObjectIdentifier: StateWriter]>([:])
    /// How long the frames that depend on a write wait for it (`timeouts.upstream`): past it they go, and the write
    /// goes on until the store takes it.
    let writeBound: Duration

    init(
        store: any TranslationStateStore,
        passwords: (any ChargerPasswordStore)? = nil,
        writeBound: Duration = .seconds(10)
    ) {
        self.store = store
        self.passwords = passwords
        self.writeBound = writeBound
    }

    /// A charger's state: the one on its way to the store, the stored one, or a fresh one.
    func load(identity: String) async throws -> ChargerState {
        if let state = unwritten.state(of: identity) { return state }
        return try await store.load(identity: identity) ?? ChargerState()
    }

    /// The writer of `loop` (one per loop: the sessions of a loop share its batches).
    func writer(for loop: any EventLoop) -> StateWriter {
        writers.withLockedValue { writers in
            if let writer = writers[ObjectIdentifier(loop)] { return writer }
            let writer = StateWriter(eventLoop: loop, store: store, unwritten: unwritten, bound: writeBound)
            writers[ObjectIdentifier(loop)] = writer
            return writer
        }
    }
}

/// The states handed over for writing and not yet stored, with a generation each.
private final class UnwrittenStates: Sendable {
    private let states = NIOLockedValueBox<[String: (generation: UInt64, state: ChargerState)]>([:])

    func state(of identity: String) -> ChargerState? {
        states.withLockedValue { $0[identity]?.state }
    }

    /// Notes a state handed over for writing; returns its generation.
    func handOver(_ write: StateWrite) -> UInt64 {
        states.withLockedValue { unwritten in
            let generation = (unwritten[write.identity]?.generation ?? 0) &+ 1
            unwritten[write.identity] = (generation, write.state)
            return generation
        }
    }

    /// Forgets states that are stored now, unless a newer one was handed over meanwhile.
    func stored(_ generations: [String: UInt64]) {
        states.withLockedValue { unwritten in
            for (identity, generation) in generations where unwritten[identity]?.generation == generation {
                unwritten[identity] = nil
            }
            // After a storm of boots the table held thousands; an empty one keeps no room for them.
            if unwritten.isEmpty { unwritten = [:] }
        }
    }
}

/// Writes the translation states one event loop's sessions hand over: everything handed over in a loop tick
/// goes to the store as one batch, off the loop; while a batch is being written the next one collects. Each
/// session learns on its loop when its state is stored, and sends what depends on it then.
///
/// Confined to its event loop.
final class StateWriter: @unchecked Sendable {
    let eventLoop: any EventLoop
    private let store: any TranslationStateStore
    private let unwritten: UnwrittenStates
    /// The next batch: the latest state of each charger, in the order first handed over.
    private var batch: [StateWrite] = []
    /// Per charger in the batch: where its write is, and the generation it was handed over as.
    private var queued: [String: (position: Int, generation: UInt64)] = [:]
    private var waiting: [(Result<Void, any Error>) -> Void] = []
    private var writing = false
    private var scheduled = false
    /// The pause before a failed batch is written again (doubling up to 30 s while the store keeps failing).
    private var retryDelay: Duration = .milliseconds(250)
    private var retry: Scheduled<Void>?
    /// How long the sessions wait for a write (a database behind a partition answers nothing): then they hear it
    /// failed and send what waited; the write itself is not abandoned, and the next batch waits for it, so that an
    /// older state never lands after a newer one.
    private let bound: Duration

    fileprivate init(
        eventLoop: any EventLoop,
        store: any TranslationStateStore,
        unwritten: UnwrittenStates,
        bound: Duration = .seconds(10)
    ) {
        self.eventLoop = eventLoop
        self.store = store
        self.unwritten = unwritten
        self.bound = bound
    }

    /// The write did not finish within the bound.
    struct TimedOut: Error, CustomStringConvertible {
        let bound: Duration
        var description: String { "the state database did not answer within \(bound) (timeouts.upstream)" }
    }

    /// Stores `state` as `identity`'s, and calls `done` on the loop once it is stored (or failed to be).
    func persist(_ identity: String, _ state: ChargerState, done: @escaping (Result<Void, any Error>) -> Void) {
        eventLoop.preconditionInEventLoop()
        let write = StateWrite(identity: identity, state: state)
        let generation = unwritten.handOver(write)
        if let position = queued[identity]?.position {
            batch[position] = write
            queued[identity] = (position, generation)
        } else {
            queued[identity] = (batch.count, generation)
            batch.append(write)
        }
        waiting.append(done)
        guard !writing, !scheduled else { return }
        scheduled = true
        // At the end of the tick: what the other sessions of this loop hand over now joins the batch.
        eventLoop.assumeIsolatedUnsafeUnchecked().execute { [self] in writeBatch() }
    }

    private func writeBatch() {
        scheduled = false
        guard !writing, !batch.isEmpty else { return }
        writing = true
        let batch = self.batch
        let generations = queued.mapValues(\.generation)
        let waiting = self.waiting
        // Room for an ordinary tick is kept; a storm's (thousands of boots in a tick) is given back.
        let keep = batch.count <= 64
        self.batch.removeAll(keepingCapacity: keep)
        queued.removeAll(keepingCapacity: keep)
        self.waiting.removeAll(keepingCapacity: keep)
        let store = self.store
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await store.save(batch) }
        // The sessions hear of the write once: when it ends, or when the bound passes first.
        var told = false
        let bound = self.bound
        let timer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(bound)) {
            told = true
            for done in waiting { done(.failure(TimedOut(bound: bound))) }
        }
        promise.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { [self] result in
            writing = false
            timer.cancel()
            if !told { for done in waiting { done(result) } }
            switch result {
            case .success:
                unwritten.stored(generations)
                retryDelay = .milliseconds(250)
                // What collected meanwhile goes next.
                if !self.batch.isEmpty { writeBatch() }
            case .failure:
                // The frames went on (their sessions were told); the states are written again until the store
                // takes them: each charger's latest, unless a newer one is queued already.
                for write in batch where queued[write.identity] == nil {
                    guard let generation = generations[write.identity] else { continue }
                    queued[write.identity] = (self.batch.count, generation)
                    self.batch.append(write)
                }
                retry?.cancel()
                retry = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: TimeAmount(retryDelay)) { [self] in
                    writeBatch()
                }
                retryDelay = min(retryDelay * 2, .seconds(30))
            }
        }
    }
}
