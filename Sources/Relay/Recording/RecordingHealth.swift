import NIOConcurrencyHelpers

/// Whether the loops' recorders can write, read by `/readyz` and `/metrics` from other threads. A recorder says so
/// only when its state changes, so the frame path never takes the lock.
final class RecordingHealth: Sendable {
    private let failures = NIOLockedValueBox<[Int: String]>([:])

    /// `failure` nil: loop `loop` records again.
    func set(loop: Int, failure: String?) {
        failures.withLockedValue { $0[loop] = failure }
    }

    /// Why recording fails, one line per loop that cannot write; nil when every loop records.
    var failure: String? {
        let all = failures.withLockedValue { $0 }
        guard !all.isEmpty else { return nil }
        return all.sorted { $0.key < $1.key }.map { "loop \($0.key): \($0.value)" }.joined(separator: "; ")
    }
}
