import NIOConcurrencyHelpers
import OCPP

/// The sessions of the relay, shared by every event loop: the current one per charge point identity,
/// and every live one (a replaced session is no longer current but may still be closing).
final class SessionRegistry: Sendable {
    private struct State {
        var current: [String: RelaySession] = [:]
        var live: [UInt64: RelaySession] = [:]
        /// Live sessions whose charger has left (their mirrors are still being given what they are owed).
        var leaving: Set<UInt64> = []
        /// Tasks waiting in ``allEnded()``, and waits cancelled before they could be stored.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<Int> = []
        var nextWaiter = 0
    }

    private let state = NIOLockedValueBox(State())

    /// Registers `session` as the current one for its identity and returns the session it replaces.
    func register(_ session: RelaySession) -> RelaySession? {
        state.withLockedValue { state in
            state.live[session.connection] = session
            let previous = state.current[session.identity.value]
            state.current[session.identity.value] = session
            return previous === session ? nil : previous
        }
    }

    /// The current session of an identity.
    func current(for identity: String) -> RelaySession? {
        state.withLockedValue { $0.current[identity] }
    }

    /// The session's charger has left: it is no longer the charger's current session nor counted as connected, and
    /// stays live (a shutdown still reaches it) until ``remove(_:)``.
    func left(_ session: RelaySession) {
        state.withLockedValue { state in
            guard state.live[session.connection] != nil else { return }
            state.leaving.insert(session.connection)
            if state.current[session.identity.value] === session {
                state.current[session.identity.value] = nil
            }
        }
    }

    /// Forgets an ended session; the last one to end wakes ``allEnded()``.
    func remove(_ session: RelaySession) {
        let waking = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.live[session.connection] = nil
            state.leaving.remove(session.connection)
            if state.current[session.identity.value] === session {
                state.current[session.identity.value] = nil
            }
            guard state.live.isEmpty else { return [] }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for continuation in waking { continuation.resume() }
    }

    /// Returns once no session is live (at once if none is), or when the task is cancelled.
    func allEnded() async {
        let id = state.withLockedValue { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    if state.live.isEmpty || state.cancelled.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiting = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                guard let continuation = state.waiters.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return continuation
            }
            waiting?.resume()
        }
    }

    /// Every live session.
    var live: [RelaySession] {
        state.withLockedValue { Array($0.live.values) }
    }

    /// The number of live sessions whose charger is connected.
    var liveCount: Int {
        state.withLockedValue { $0.live.count - $0.leaving.count }
    }

    /// Returns once no session is live, or after `timeout`.
    func allEnded(within timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.allEnded() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
