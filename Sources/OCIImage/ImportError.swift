/// Why an image cannot be imported. Every case names the blob, file or entry.
public enum ImportError: Error, Sendable, CustomStringConvertible {
    /// A file of the image is not what the OCI specs say it must be.
    case invalid(what: String, reason: String)
    /// Something the image names is not there.
    case missing(what: String)
    /// A blob's content does not match its digest (or size): the image is corrupt or tampered with.
    case verification(blob: String, reason: String)
    /// A layer entry that cannot be applied.
    case entry(layer: String, path: String, reason: String)
    /// Reading a layer failed (a truncated or corrupt stream, say).
    case layer(layer: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let what, let reason): "\(what): \(reason)"
        case .missing(let what): "missing \(what)"
        case .verification(let blob, let reason): "\(blob) fails verification: \(reason)"
        case .entry(let layer, let path, let reason): "\(layer): entry '\(path)': \(reason)"
        case .layer(let layer, let reason): "\(layer): \(reason)"
        }
    }
}
