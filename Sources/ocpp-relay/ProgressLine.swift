import Foundation
import OCPPPeers

/// The replay's live progress line on a terminal's standard error, rewritten twice a second.
final class ProgressLine: Sendable {
    private let task: Task<Void, Never>
    private let progress: ReplayProgress

    private init(_ progress: ReplayProgress) {
        self.progress = progress
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                FileHandle.standardError.write(Data("\r\u{1B}[K\(progress.line)".utf8))
            }
        }
    }

    static func start(_ progress: ReplayProgress) -> ProgressLine { ProgressLine(progress) }

    /// Stops updating and leaves the final figures on their own line.
    func stop() {
        task.cancel()
        FileHandle.standardError.write(Data("\r\u{1B}[K\(progress.line)\n".utf8))
    }
}
