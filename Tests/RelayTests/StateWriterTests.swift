import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import OCPPTranslation
import Testing

@testable import Relay
@testable import RelayStateStores

/// The SQLite store behind a gate: counts the batches it is given, can hold them until opened, and can refuse
/// them (a disk that fills up).
final class GatedStore: TranslationStateStore {
    let inner: SQLiteStateStore
    let batches = NIOLockedValueBox<[[String]]>([])
    let failing = NIOLockedValueBox(false)

    struct Full: Error {}
    private let gate = NIOLockedValueBox<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((true, []))

    init(path: String) throws {
        inner = try SQLiteStateStore(path: path)
    }

    func close() { gate.withLockedValue { $0.open = false } }

    func open() {
        let waiters = gate.withLockedValue { gate in
            gate.open = true
            defer { gate.waiters = [] }
            return gate.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func load(identity: String) async throws -> ChargerState? {
        try await inner.load(identity: identity)
    }

    func save(_ batch: [StateWrite]) async throws {
        batches.withLockedValue { $0.append(batch.map(\.identity)) }
        await withCheckedContinuation { continuation in
            let wait = gate.withLockedValue { gate in
                if !gate.open { gate.waiters.append(continuation) }
                return !gate.open
            }
            if !wait { continuation.resume() }
        }
        if failing.withLockedValue({ $0 }) { throw Full() }
        try await inner.save(batch)
    }
}

@Suite("Translation state writer")
struct StateWriterTests {
    func state(_ number: Int32) -> ChargerState {
        var state = ChargerState()
        state.forward.lastTransactionNumber = number
        return state
    }

    func temporaryDatabase() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString)/state.sqlite").path
    }

    @Test("what a loop's sessions hand over in one tick is one batch; each learns on its loop when it is stored")
    func batchedPerTick() async throws {
        let store = try GatedStore(path: temporaryDatabase())
        let states = TranslationStates(store: store)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let writer = states.writer(for: loop)
        let done = NIOLockedValueBox<[String]>([])
        try await loop.submit {
            for (index, identity) in ["CP-1", "CP-2", "CP-1", "CP-3"].enumerated() {
                writer.persist(identity, state(Int32(index + 1))) { result in
                    loop.preconditionInEventLoop()
                    if case .success = result { done.withLockedValue { $0.append(identity) } }
                }
            }
        }.get()
        try await waitUntil { done.withLockedValue { $0.count } == 4 }
        #expect(done.withLockedValue { $0 } == ["CP-1", "CP-2", "CP-1", "CP-3"])
        // One batch, one row per charger, the latest state of each.
        #expect(store.batches.withLockedValue { $0 } == [["CP-1", "CP-2", "CP-3"]])
        #expect(try await store.load(identity: "CP-1")?.forward.lastTransactionNumber == 3)
        #expect(try await states.load(identity: "CP-3").forward.lastTransactionNumber == 4)
    }

    @Test("while a batch is written the next collects; a reconnect meanwhile reads the state on its way")
    func nextBatchCollects() async throws {
        let store = try GatedStore(path: temporaryDatabase())
        let states = TranslationStates(store: store)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let writer = states.writer(for: loop)
        let done = NIOLockedValueBox(0)
        store.close()
        try await loop.submit {
            writer.persist("CP-1", state(1)) { _ in done.withLockedValue { $0 += 1 } }
        }.get()
        try await waitUntil { store.batches.withLockedValue { $0.count } == 1 }
        try await loop.submit {
            writer.persist("CP-1", state(2)) { _ in done.withLockedValue { $0 += 1 } }
            writer.persist("CP-2", state(7)) { _ in done.withLockedValue { $0 += 1 } }
        }.get()
        // Nothing is stored yet, and nothing waiting is released; another loop's new session gets the latest.
        try await Task.sleep(for: .milliseconds(50))
        #expect(done.withLockedValue { $0 } == 0)
        #expect(store.batches.withLockedValue { $0.count } == 1)
        #expect(try await store.load(identity: "CP-1") == nil)
        #expect(try await states.load(identity: "CP-1").forward.lastTransactionNumber == 2)
        store.open()
        try await waitUntil { done.withLockedValue { $0 } == 3 }
        #expect(store.batches.withLockedValue { $0 } == [["CP-1"], ["CP-1", "CP-2"]])
        #expect(try await store.load(identity: "CP-1")?.forward.lastTransactionNumber == 2)
        #expect(try await store.load(identity: "CP-2")?.forward.lastTransactionNumber == 7)
    }

    @Test("a store that fails still releases what waited, with the error; the state stays readable")
    func failureReleases() async throws {
        let store = try GatedStore(path: temporaryDatabase())
        let states = TranslationStates(store: store)
        store.failing.withLockedValue { $0 = true }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let writer = states.writer(for: loop)
        let failed = NIOLockedValueBox(false)
        try await loop.submit {
            writer.persist("CP-1", state(5)) { result in
                if case .failure = result { failed.withLockedValue { $0 = true } }
            }
        }.get()
        try await waitUntil(seconds: 5) { failed.withLockedValue { $0 } }
        #expect(try await store.load(identity: "CP-1") == nil)
        #expect(try await states.load(identity: "CP-1").forward.lastTransactionNumber == 5)
    }

    @Test("a batch the store refused is written again, once the store works, without a session asking")
    func failedBatchIsRetried() async throws {
        let store = try GatedStore(path: temporaryDatabase())
        let states = TranslationStates(store: store)
        store.failing.withLockedValue { $0 = true }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let writer = states.writer(for: loop)
        let failed = NIOLockedValueBox(false)
        try await loop.submit {
            writer.persist("CP-1", state(7)) { result in
                if case .failure = result { failed.withLockedValue { $0 = true } }
            }
        }.get()
        try await waitUntil() { failed.withLockedValue { $0 } }
        store.failing.withLockedValue { $0 = false }
        // Waits for the outcome itself (a second batch may be under way, not yet written, on a busy machine).
        var stored: Int32?
        let deadline = ContinuousClock.now + .seconds(15)
        while stored != 7, ContinuousClock.now < deadline {
            stored = try await store.load(identity: "CP-1")?.forward.lastTransactionNumber
            if stored != 7 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(stored == 7)
        #expect(store.batches.withLockedValue { $0.count } >= 2, "written by a second batch")
    }

    func waitUntil(seconds: Double = 15, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within \(seconds) s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
