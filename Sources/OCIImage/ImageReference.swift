/// An image named in skopeo's transport syntax.
///
/// - `oci:DIR[:TAG]` — an OCI image layout directory; without TAG, its only image.
/// - `oci-archive:FILE[:TAG]` — a tar of an OCI image layout.
/// - `docker-archive:FILE[:NAME:TAG]` — what `docker save` / `podman save` write.
/// - `tar:FILE` — one root filesystem tarball (plain or compressed), applied as one layer.
///
/// As in skopeo, the path ends at the first `:` after the transport.
public enum ImageReference: Sendable, Equatable, CustomStringConvertible {
    case layout(directory: String, tag: String?)
    case layoutArchive(file: String, tag: String?)
    case dockerArchive(file: String, reference: String?)
    case rootfsTar(file: String)

    /// The transports, as written before the first `:`.
    public static let transports = ["oci", "oci-archive", "docker-archive", "tar"]

    /// Parses `text`; nil when it names none of the transports (a path, then).
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let transport = String(text[..<colon])
        let rest = String(text[text.index(after: colon)...])
        func split(_ rest: String) -> (String, String?) {
            guard let colon = rest.firstIndex(of: ":") else { return (rest, nil) }
            let tail = String(rest[rest.index(after: colon)...])
            return (String(rest[..<colon]), tail.isEmpty ? nil : tail)
        }
        switch transport {
        case "oci":
            let (path, tag) = split(rest)
            self = .layout(directory: path, tag: tag)
        case "oci-archive":
            let (path, tag) = split(rest)
            self = .layoutArchive(file: path, tag: tag)
        case "docker-archive":
            let (path, reference) = split(rest)
            self = .dockerArchive(file: path, reference: reference)
        case "tar":
            self = .rootfsTar(file: rest)
        default:
            return nil
        }
    }

    /// The file or directory the reference reads.
    public var path: String {
        switch self {
        case .layout(let path, _), .layoutArchive(let path, _), .dockerArchive(let path, _), .rootfsTar(let path):
            path
        }
    }

    public var description: String {
        switch self {
        case .layout(let path, let tag): "oci:\(path)\(tag.map { ":" + $0 } ?? "")"
        case .layoutArchive(let path, let tag): "oci-archive:\(path)\(tag.map { ":" + $0 } ?? "")"
        case .dockerArchive(let path, let reference): "docker-archive:\(path)\(reference.map { ":" + $0 } ?? "")"
        case .rootfsTar(let path): "tar:\(path)"
        }
    }
}

/// A platform as OCI indexes name it: `os/architecture[/variant]`.
public struct Platform: Sendable, Equatable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    public static let linuxAMD64 = Platform(os: "linux", architecture: "amd64")

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch[/variant]`.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    public var description: String { "\(os)/\(architecture)\(variant.map { "/" + $0 } ?? "")" }
}
