/// A violation of the image model's invariants, found while building an ``Image``.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A name that cannot be a path component.
    case invalidName(name: [UInt8], reason: String)
    /// A child was added under an entry that is not a directory.
    case parentNotDirectory(parent: EntryID)
    /// Two entries of one directory have the same name.
    case duplicateName(directory: EntryID, name: [UInt8], first: EntryID, second: EntryID)
    /// The root inode must be a directory.
    case rootNotDirectory
    /// Directories cannot be hard-linked.
    case hardLinkToDirectory(inode: InodeID)
    /// An entry that no format or objects store can hold as it is (``Image/validate()``).
    case invalidEntry(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidName(let name, let reason):
            "invalid name \"\(String(decoding: name, as: UTF8.self))\": \(reason)"
        case .parentNotDirectory(let parent):
            "entry \(parent.rawValue) is not a directory and cannot have children"
        case .duplicateName(_, let name, _, _):
            "duplicate name \"\(String(decoding: name, as: UTF8.self))\""
        case .rootNotDirectory:
            "the root must be a directory"
        case .hardLinkToDirectory:
            "directories can't be hard-linked"
        case .invalidEntry(let path, let reason):
            "\(path): \(reason)"
        }
    }
}
