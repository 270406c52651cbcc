/// Where and how recordings are written.
public struct RecordingConfiguration: Sendable, Hashable {
    /// The folder segment files go into.
    public var directory: String
    /// A segment is finished and a new one started when its compressed size reaches this many bytes.
    public var rollBytes: Int
    /// … or when it is this many seconds old (charger connections live for weeks).
    public var rollSeconds: Int
    /// Segments last written more than this many seconds ago are deleted; `nil` keeps everything.
    public var retentionSeconds: Int?
    /// zlib level, 1 … 9.
    public var compressionLevel: Int

    public init(
        directory: String = "Recordings",
        rollBytes: Int = 64 << 20,
        rollSeconds: Int = 3600,
        retentionSeconds: Int? = 30 * 86_400,
        compressionLevel: Int = 6
    ) {
        self.directory = directory
        self.rollBytes = rollBytes
        self.rollSeconds = rollSeconds
        self.retentionSeconds = retentionSeconds
        self.compressionLevel = compressionLevel
    }

    /// The file name suffix of segments.
    public static let segmentSuffix = ".ocrec.gz"
    /// The file name suffix of segment indexes.
    public static let indexSuffix = ".idx"
}
