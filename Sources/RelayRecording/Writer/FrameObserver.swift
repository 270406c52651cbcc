/// Looks at the recorded frames where the segments are written (the journal's thread, or the loop without a
/// journal), off the frame's path, and may add a record right after a frame: how the relay judges frames against
/// their schemas without the frames waiting for it. One per ``RecordingWriter``, called from one thread at a time.
public protocol FrameObserver: AnyObject {
    /// A connection opened (or is restated at a segment's start).
    func opened(_ open: ConnectionOpen)
    /// A text frame of an opened connection, as recorded; returns a record to write right after it, if any.
    func frame(
        connection: UInt64,
        time: UInt64,
        leg: Leg,
        direction: Direction,
        text: UnsafeRawBufferPointer
    ) -> Record?
    /// The connection is over.
    func ended(_ connection: UInt64)
    /// A batch of records was taken, or the writer's thread is idle (its maintenance): what the observer gathered
    /// may be published, at `now` (the writer's wall clock, microseconds).
    func publish(now: UInt64)
}
