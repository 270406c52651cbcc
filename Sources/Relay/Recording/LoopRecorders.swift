import Logging
import NIOCore
import NIOPosix
import RelayConfig
import RelayObservability
import RelayRecording

/// The per-loop plumbing of the relay: each event loop's recorder (its writer, write-ahead journal, masking keys
/// and timers), made at start, kept in step by the maintenance (segments rolled by age, then retention off the
/// loops), and finished at shutdown. Each recorder is used only on its own loop.
final class LoopRecorders: @unchecked Sendable {
    private let recorders: [ObjectIdentifier: LoopRecorder]
    private let loops: [any EventLoop]

    /// A recorder for every loop of `group`, writing segments of run `runID`; a loop whose journal cannot be
    /// reserved records on the loop, and says so.
    init(
        group: MultiThreadedEventLoopGroup,
        recording: RecordingConfiguration,
        runID: String,
        clock: RelayClock,
        logger: Logger,
        metrics: RelayMetrics,
        health: RecordingHealth,
        console: ConsoleHub
    ) {
        loops = Array(group.makeIterator())
        var recorders: [ObjectIdentifier: LoopRecorder] = [:]
        for (index, loop) in loops.enumerated() {
            let writer = RecordingWriter(
                configuration: recording,
                loop: index,
                runID: runID,
                relayVersion: RelayVersion.current,
                clock: clock,
                observer: FrameVerdicts(metrics: metrics, console: console)
            )
            if let problem = writer.journalProblem {
                logger.warning(
                    "no write-ahead journal: recording compresses on the event loop",
                    metadata: ["loop": "\(index)", "error": "\(problem)"]
                )
            }
            recorders[ObjectIdentifier(loop)] = LoopRecorder(
                eventLoop: loop,
                writer: writer,
                logger: logger,
                metrics: metrics,
                health: health
            )
        }
        self.recorders = recorders
    }

    func recorder(for loop: any EventLoop) -> LoopRecorder {
        loop.preconditionInEventLoop()
        return recorders[ObjectIdentifier(loop)]!
    }

    /// Every 30 s (from `loop`): each loop rolls its segment when it is old, then retention runs once, off the
    /// loops, keeping every loop's current segment.
    func scheduleMaintenance(
        on loop: any EventLoop,
        recording: RecordingConfiguration,
        clock: RelayClock
    )
        -> RepeatedTask
    {
        loop.scheduleRepeatedAsyncTask(initialDelay: .seconds(30), delay: .seconds(30)) { [self] _ in
            let open = loops.map { each in
                each.submit {
                    let recorder = self.recorder(for: each)
                    recorder.maintenance()
                    return recorder.writer.currentSegmentPath
                }
            }
            return EventLoopFuture.whenAllComplete(open, on: loop).flatMap { paths in
                guard let retention = recording.retention else { return loop.makeSucceededVoidFuture() }
                let keeping = Set(paths.compactMap { try? $0.get() }.compactMap { $0 })
                return NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
                    Retention.prune(
                        directory: recording.directory,
                        olderThan: retention,
                        now: clock.wall(),
                        keeping: keeping
                    )
                }.map { _ in }.recover { _ in }
            }
        }
    }

    /// Finishes every loop's segment (at shutdown, after the sessions).
    func finish() async {
        for loop in loops {
            try? await loop.submit { self.recorder(for: loop).writer.finish() }.get()
        }
    }
}
