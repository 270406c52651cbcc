import Foundation

/// Where and how recordings are written.
public struct RecordingConfiguration: Sendable, Hashable {
    /// The folder segment files go into.
    public var directory: String
    /// A segment is finished and a new one started when its compressed size reaches this many bytes.
    public var rollBytes: Int
    /// … or when it is this old (charger connections live for weeks).
    public var rollAge: Duration
    /// Segments last written longer ago than this are deleted; `nil` keeps everything.
    public var retention: Duration?
    /// zlib level, 1 … 9.
    public var compressionLevel: Int
    /// The size of each event loop's write-ahead journal (``journalDirectory``); 0 compresses and writes on the
    /// event loop itself, each tick, before forwarding.
    public var journalBytes: Int

    public init(
        directory: String = "Recordings",
        rollBytes: Int = 64 << 20,
        rollAge: Duration = .seconds(3600),
        retention: Duration? = .seconds(30 * 86_400),
        compressionLevel: Int = 6,
        journalBytes: Int = 2 << 20
    ) {
        self.directory = directory
        self.rollBytes = rollBytes
        self.rollAge = rollAge
        self.retention = retention
        self.compressionLevel = compressionLevel
        self.journalBytes = journalBytes
    }

    /// Where the write-ahead journals of `directory` live: beside it, hidden (`Recordings` → `.Recordings.journal`),
    /// on the same file system and out of the way of the tools that list the folder.
    public static func journalDirectory(forRecordings directory: String) -> String {
        let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
        let parent = (absolute as NSString).deletingLastPathComponent
        return (parent as NSString).appendingPathComponent(".\((absolute as NSString).lastPathComponent).journal")
    }

    /// This configuration's journal folder.
    public var journalDirectory: String { Self.journalDirectory(forRecordings: directory) }

    /// How long a segment may stay open, in microseconds of the wall clock the writer reads.
    var rollMicroseconds: UInt64 {
        let (seconds, attoseconds) = rollAge.components
        return UInt64(max(0, seconds)) * 1_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000_000)
    }

    /// The file name suffix of segments.
    public static let segmentSuffix = ".ocrec.gz"
    /// The file name suffix of segment indexes.
    public static let indexSuffix = ".idx"
}
