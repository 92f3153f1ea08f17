import CLinux
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
    public static func standardError() -> BufferedOutput {
        BufferedOutput(fd: .standardError, name: "<stderr>", capacity: 4096)
    }

    public func write(_ bytes: some Sequence<UInt8>) throws(IOError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { try flush() }
    }

    /// Writes a large piece straight through, without copying it into the buffer.
    public func write(_ bytes: [UInt8]) throws(IOError) {
        guard bytes.count >= capacity else { return try write(bytes[...]) }
        try flush()
        try writeAll(bytes)
    }

    public func write(_ text: String) throws(IOError) { try write(text.utf8) }

    public func flush() throws(IOError) {
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        try writeAll(buffer)
    }

    private func writeAll(_ bytes: [UInt8]) throws(IOError) {
        do {
            _ = try bytes.withUnsafeBytes { try fd.writeAll($0) }
        } catch {
            throw IOError("write", path: name, errno: error as? Errno)
        }
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

    public init(destination: String, permissions: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead])
        throws(IOError)
    {
        self.destination = destination
        temporary = try TemporarySibling(destination: destination, permissions: mode_t(permissions.rawValue))
        do {
            let fd = try FileDescriptor.open(temporary.path, .writeOnly, options: [.truncate, .closeOnExec])
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

    public func write(_ bytes: [UInt8]) throws(IOError) {
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

/// A temporary file next to a destination, for writers that open it by path (libsquashfs,
/// libcryptsetup) or through ``AtomicFileWriter``: `commit()` syncs it and puts it in place of
/// the destination atomically; without a commit it disappears.
///
/// Where the filesystem can, the file has no name until `commit()` (`O_TMPFILE`; `path` is
/// its `/proc/self/fd` link), so a process killed mid-write leaves nothing behind; commit
/// links it under a hidden name and renames that over the destination. Elsewhere it is a
/// hidden named file `.NAME.ovlcfs-PID-RANDOM` that a kill -9 can leave.
public final class TemporarySibling {
    public let destination: String
    public let path: String
    private let directory: String
    /// The unnamed file's descriptor (O_TMPFILE), or -1 for a named temporary.
    private let anonymous: Int32
    private var committed = false

    public init(destination: String, permissions: mode_t = 0o644) throws(IOError) {
        self.destination = destination
        let slash = destination.lastIndex(of: "/")
        let parent = slash.map { String(destination[..<$0]) } ?? "."
        directory = parent.isEmpty ? "/" : parent
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        guard !base.isEmpty else { throw IOError("write", path: destination, detail: "not a file name") }
        // Outputs replace only regular files: a device node, FIFO, socket, directory or
        // symlink at the destination (`-o /dev/null`, `-o /dev/stdout`) is refused, never
        // renamed over.
        var st = stat()
        if lstat(destination, &st) == 0, st.st_mode & S_IFMT != S_IFREG {
            throw IOError(
                "write", path: destination,
                detail:
                    "\(Self.typeName(st.st_mode)) is there; ovlcfs replaces only regular files (remove it, or write to a new name)"
            )
        }
        if access(directory, W_OK) != 0 {
            throw IOError("write into the directory of", path: destination, errno: .current)
        }
        let fd = open(directory, ovl_o_tmpfile | O_RDWR | O_CLOEXEC, permissions)
        if fd >= 0 {
            anonymous = fd
            path = "/proc/self/fd/\(fd)"
        } else {
            anonymous = -1
            path = Self.hiddenName(in: directory, base: base)
            let created = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, permissions)
            guard created >= 0 else { throw IOError("create a temporary file for", path: destination, errno: .current) }
            close(created)
        }
    }

    deinit { discard() }

    static func hiddenName(in directory: String, base: String) -> String {
        var random = SystemRandomNumberGenerator()
        return "\(directory)/.\(base).ovlcfs-\(getpid())-\(String(random.next() & 0xFFFF_FFFF, radix: 16))"
    }

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

    /// The temporary file's size now.
    public func size() throws(IOError) -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw IOError("stat", path: path, errno: .current) }
        return UInt64(st.st_size)
    }

    /// Flushes the file to disk and puts it in place of the destination.
    public func commit() throws(IOError) {
        let fd = anonymous >= 0 ? anonymous : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw IOError("open", path: path, errno: .current) }
        defer { if anonymous < 0 { close(fd) } }
        if fsync(fd) != 0 { throw IOError("sync", path: destination, errno: .current) }
        // Checked again at the last moment: what appeared at the destination since is refused.
        var st = stat()
        if lstat(destination, &st) == 0, st.st_mode & S_IFMT != S_IFREG {
            throw IOError(
                "write", path: destination,
                detail: "\(Self.typeName(st.st_mode)) appeared there; ovlcfs replaces only regular files")
        }
        var named = path
        if anonymous >= 0 {
            // Give the unnamed file a hidden name (retrying a taken one), then rename it.
            let base = String(destination.split(separator: "/").last ?? "out")
            while true {
                named = Self.hiddenName(in: directory, base: base)
                if linkat(AT_FDCWD, path, AT_FDCWD, named, AT_SYMLINK_FOLLOW) == 0 { break }
                if Glibc.errno != EEXIST {
                    throw IOError("name the temporary file for", path: destination, errno: .current)
                }
            }
        }
        if rename(named, destination) != 0 {
            let errno = Errno.current
            if anonymous >= 0 { unlink(named) }
            throw IOError("rename into place", path: destination, errno: errno)
        }
        committed = true
        discard()
    }

    /// Removes the temporary file now (an unnamed one is closed).
    public func discard() {
        if anonymous >= 0 {
            if !closed { close(anonymous) }
            closed = true
        } else if !committed {
            unlink(path)
        }
        committed = true
    }

    private var closed = false
}
