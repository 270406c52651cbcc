import RelayRecording

extension RelayClock {
    /// The monotonic clock as a `Duration` since its origin: what call lanes and timeouts read.
    var uptime: Duration { .nanoseconds(Int64(clamping: monotonic())) }
}
