import Foundation

/// Deletes recording segments older than the retention, with their indexes: a file-system job (listing a
/// folder, a `stat` and two `unlink`s per segment), run off the event loops.
public enum Retention {
    /// Deletes the segments in `directory` last written longer than `age` before `now`, except those in `open`
    /// (the segments the writers are still writing, however quiet).
    /// - Returns: the segments deleted.
    @discardableResult
    public static func prune(
        directory: String,
        olderThan age: Duration,
        now: UInt64 = Timestamp.now(),
        keeping open: Set<String>
    ) -> [String] {
        let (seconds, attoseconds) = age.components
        let cutoff = Double(now) / 1_000_000 - Double(seconds) - Double(attoseconds) / 1e18
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var deleted: [String] = []
        for name in names where name.hasSuffix(RecordingConfiguration.segmentSuffix) {
            let path = (directory as NSString).appendingPathComponent(name)
            if open.contains(path) { continue }
            var info = stat()
            guard stat(path, &info) == 0, Double(info.st_mtim.tv_sec) < cutoff else { continue }
            unlink(path)
            unlink(
                String(path.dropLast(RecordingConfiguration.segmentSuffix.count)) + RecordingConfiguration.indexSuffix
            )
            deleted.append(path)
        }
        return deleted
    }
}
