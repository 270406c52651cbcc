/// Whether a connection is alive, by what arrives on it: a pure counter, checked four times per ping interval.
///
/// A connection silent for a whole interval is pinged; one that has not answered three quarters of an interval
/// later is dead. So a peer gone without a FIN (a partition, a pulled cable) is noticed at most 1.75 intervals after
/// its last frame — within two, whatever the phase of the loop's shared timer — and a live peer has three quarters
/// of an interval to answer a ping.
struct Liveness: Equatable, Sendable {
    /// Checks per ping interval (the loop's timer runs this often).
    static let checksPerInterval = 4
    private var silentChecks: UInt8 = 0
    private(set) var pingOutstanding = false

    enum Verdict: Equatable, Sendable {
        case alive
        case ping
        case dead
    }

    /// Something arrived: the connection is alive.
    mutating func heard() {
        silentChecks = 0
        pingOutstanding = false
    }

    /// The periodic check.
    mutating func check() -> Verdict {
        silentChecks = min(silentChecks + 1, 100)
        guard pingOutstanding else {
            guard silentChecks >= Self.checksPerInterval else { return .alive }
            pingOutstanding = true
            silentChecks = 0
            return .ping
        }
        return silentChecks >= Self.checksPerInterval - 1 ? .dead : .alive
    }
}
