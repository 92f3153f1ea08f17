import CLinux
import Glibc
import SystemPackage

/// A file being written before it gets its final name (``DirectoryHandle/createStagingFile(prefix:permissions:)``).
/// Closing (or dropping) it without ``link(into:as:)`` leaves nothing behind.
public final class StagingFile {
    public let descriptor: FileDescriptor
    let directory: DirectoryHandle
    /// The hidden name of a named staging file; nil for an unnamed one.
    let name: [UInt8]?
    private var closed = false

    init(directory: DirectoryHandle, fd: FileDescriptor, name: [UInt8]?) {
        self.directory = directory
        descriptor = fd
        self.name = name
    }

    deinit { discard() }

    /// A path for messages.
    public var path: String { name.map { directory.childPath($0) } ?? directory.path + "/(unnamed)" }

    /// Links the file as `target` in `destination`; false when `target` already exists. The
    /// staging file is discarded either way.
    public func link(into destination: DirectoryHandle, as target: [UInt8]) throws(IOError) -> Bool {
        defer { discard() }
        if let name { return try destination.link(from: directory, name: name, to: target) }
        let rc = destination.withName(target) {
            linkat(AT_FDCWD, "/proc/self/fd/\(descriptor.rawValue)", destination.fd, $0, AT_SYMLINK_FOLLOW)
        }
        if rc == 0 { return true }
        if Glibc.errno == EEXIST { return false }
        throw IOError("link a new object as", path: destination.childPath(target), errno: .current)
    }

    /// Closes the file and removes a named one.
    public func discard() {
        guard !closed else { return }
        closed = true
        try? descriptor.close()
        if let name { directory.removeFile(name) }
    }
}
