import NIOConcurrencyHelpers
import OCPP

/// The sessions of the relay, shared by every event loop: the current one per charge point identity,
/// and every live one (a replaced session is no longer current but may still be closing).
final class SessionRegistry: Sendable {
    private struct State {
        var current: [String: RelaySession] = [:]
        var live: [UInt64: RelaySession] = [:]
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

    /// Forgets an ended session.
    func remove(_ session: RelaySession) {
        state.withLockedValue { state in
            state.live[session.connection] = nil
            if state.current[session.identity.value] === session {
                state.current[session.identity.value] = nil
            }
        }
    }

    /// Every live session.
    var live: [RelaySession] {
        state.withLockedValue { Array($0.live.values) }
    }

    /// The number of live sessions.
    var liveCount: Int {
        state.withLockedValue { $0.live.count }
    }
}
