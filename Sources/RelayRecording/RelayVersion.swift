/// The relay's version, written into every recording.
public enum RelayVersion {
    public static let current = "0.1.0"
}
