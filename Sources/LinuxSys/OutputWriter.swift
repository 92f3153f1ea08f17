import Glibc
import SystemPackage

/// A buffered writer to a file descriptor. `flush()` reports write errors; nothing is lost
/// silently.
public final class BufferedOutput {
    public let name: String
    private let fd: FileDescriptor
    private var buffer: [UInt8] = []
    private let capacity: Int

    public init(fd: FileDescriptor, name: String, capacity: Int = 1 << 20) {
        self.fd = fd
        self.name = name
        self.capacity = capacity
        buffer.reserveCapacity(capacity)
    }

    /// Standard output.
    public static func standardOutput() -> BufferedOutput { BufferedOutput(fd: .standardOutput, name: "<stdout>") }

    /// Standard error.
    public static func standardError() -> BufferedOutput { BufferedOutput(fd: .standardError, name: "<stderr>", capacity: 4096) }

    public func write(_ bytes: some Sequence<UInt8>) throws(IOError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { try flush() }
    }

    public func write(_ text: String) throws(IOError) { try write(text.utf8) }

    public func flush() throws(IOError) {
        guard !buffer.isEmpty else { return }
        do {
            _ = try buffer.withUnsafeBytes { try fd.writeAll($0) }
        } catch {
            buffer.removeAll(keepingCapacity: true)
            throw IOError("write", path: name, errno: error as? Errno)
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Writes a file atomically: the bytes go to a temporary file in the destination's
/// directory, which is flushed to disk and renamed over the destination only by `commit()`.
/// Without `commit()` (an error, a crash) the destination is untouched and the temporary
/// file is removed.
public final class AtomicFileWriter {
    public let destination: String
    private let temporary: TemporarySibling
    private var output: BufferedOutput?
    private var fd: FileDescriptor?

    public init(destination: String, permissions: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]) throws(IOError) {
        self.destination = destination
        temporary = try TemporarySibling(destination: destination)
        do {
            let fd = try FileDescriptor.open(
                temporary.path, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec], permissions: permissions)
            self.fd = fd
            output = BufferedOutput(fd: fd, name: destination)
        } catch {
            throw IOError("create a temporary file for", path: destination, errno: error as? Errno)
        }
    }

    deinit { abandon() }

    public func write(_ bytes: some Sequence<UInt8>) throws(IOError) {
        guard let output else { throw IOError("write", path: destination, detail: "writer already closed") }
        try output.write(bytes)
    }

    public func write(_ text: String) throws(IOError) { try write(text.utf8) }

    /// Flushes, syncs and renames the file into place.
    public func commit() throws(IOError) {
        guard let output, let fd else { throw IOError("write", path: destination, detail: "writer already closed") }
        do {
            try output.flush()
        } catch {
            abandon()
            throw error
        }
        try? fd.close()
        self.fd = nil
        self.output = nil
        try temporary.commit()
    }

    /// Discards the temporary file; the destination stays as it was.
    public func abandon() {
        if let fd { try? fd.close() }
        fd = nil
        output = nil
        temporary.discard()
    }
}

/// A temporary path next to a destination, for tools that write files themselves (such as
/// libsquashfs): `commit()` syncs it and renames it over the destination; without a commit
/// it is removed.
public final class TemporarySibling {
    public let destination: String
    public let path: String
    private var committed = false

    public init(destination: String) throws(IOError) {
        self.destination = destination
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[..<$0]) } ?? "."
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        guard !base.isEmpty else { throw IOError("write", path: destination, detail: "not a file name") }
        // Outputs replace only regular files: a device node, FIFO, socket, directory or
        // symlink at the destination (`-o /dev/null`, `-o /dev/stdout`) is refused, never
        // renamed over.
        var st = stat()
        if lstat(destination, &st) == 0, st.st_mode & S_IFMT != S_IFREG {
            throw IOError("write", path: destination, detail: "\(Self.typeName(st.st_mode)) is there; ovlcfs replaces only regular files (remove it, or write to a new name)")
        }
        var random = SystemRandomNumberGenerator()
        path = "\(directory.isEmpty ? "/" : directory)/.\(base).ovlcfs-\(getpid())-\(String(random.next() & 0xFFFF_FFFF, radix: 16))"
        if access(directory.isEmpty ? "/" : directory, W_OK) != 0 {
            throw IOError("write into the directory of", path: destination, errno: Errno(rawValue: Glibc.errno))
        }
    }

    deinit { if !committed { unlink(path) } }

    static func typeName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFLNK: "a symlink"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        default: "a special file"
        }
    }

    /// Flushes the temporary file to disk and renames it over the destination.
    public func commit() throws(IOError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open", path: path, errno: Errno(rawValue: Glibc.errno)) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw IOError("sync", path: destination, errno: Errno(rawValue: Glibc.errno)) }
        if rename(path, destination) != 0 {
            throw IOError("rename into place", path: destination, errno: Errno(rawValue: Glibc.errno))
        }
        committed = true
    }

    /// Removes the temporary file now.
    public func discard() {
        if !committed { unlink(path) }
        committed = true
    }
}
