import CLinux
import Glibc
import SystemPackage

/// What `lstat(2)` says of a path (symlinks are not followed).
public struct FileStatus: Sendable, Equatable {
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var nlink: UInt64
    public var inode: UInt64
    public var device: UInt64
    public var rdev: UInt64
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: UInt32
    public var ctimeSeconds: Int64 = 0
    public var ctimeNanoseconds: UInt32 = 0

    public init(path: String) throws(IOError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw IOError("stat", path: path, errno: .current) }
        self.init(st)
    }

    /// What `stat(2)` says of `path`, following symlinks (for `/proc/self/fd` paths of files
    /// being written).
    public init(following path: String) throws(IOError) {
        var st = stat()
        guard stat(path, &st) == 0 else { throw IOError("stat", path: path, errno: .current) }
        self.init(st)
    }

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isSymlink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
    public var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
}

/// Path-based file queries that never follow a final symlink.
public enum FileQueries {
    /// Whether anything exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Creates a directory and its parents (mode 0755); existing ones are fine.
    public static func createDirectories(_ path: String) throws(IOError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && Glibc.errno != EEXIST {
                throw IOError("create directory", path: current, errno: .current)
            }
        }
    }

    /// The canonical absolute path (`realpath(3)`: symlinks, `.` and `..` resolved).
    public static func realPath(_ path: String) throws(IOError) -> String {
        guard let resolved = realpath(path, nil) else { throw IOError("resolve", path: path, errno: .current) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The filesystem type (`statfs` f_type magic) of the filesystem holding `path`.
    public static func filesystemType(_ path: String) throws(IOError) -> UInt {
        var type: UInt = 0
        guard ovl_filesystem_type(path, &type) == 0 else { throw IOError("statfs", path: path, errno: .current) }
        return type
    }

    /// Removes a file (errors other than "missing" are reported).
    public static func remove(_ path: String) throws(IOError) {
        if unlink(path) != 0 && Glibc.errno != ENOENT { throw IOError("remove", path: path, errno: .current) }
    }

    /// Removes an empty directory (never its contents: a mount point still in use stays).
    public static func removeEmptyDirectory(_ path: String) throws(IOError) {
        if rmdir(path) != 0 && Glibc.errno != ENOENT { throw IOError("remove directory", path: path, errno: .current) }
    }

    /// The names in a directory (without `.` and `..`), as raw bytes, sorted.
    public static func directoryEntries(_ path: String) throws(IOError) -> [[UInt8]] {
        guard let dir = opendir(path) else { throw IOError("read directory", path: path, errno: .current) }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// The target of a symlink.
    public static func readLink(_ path: String) throws(IOError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4097)
        let count = buffer.withUnsafeMutableBytes {
            readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4096)
        }
        guard count >= 0 else { throw IOError("read link", path: path, errno: .current) }
        return Array(buffer[0..<count])
    }

    /// The xattr names of a path (not following symlinks).
    public static func xattrNames(_ path: String) throws(IOError) -> [[UInt8]] {
        var size = llistxattr(path, nil, 0)
        guard size >= 0 else { throw IOError("list xattrs of", path: path, errno: .current) }
        if size == 0 { return [] }
        var buffer = [UInt8](repeating: 0, count: size)
        size = buffer.withUnsafeMutableBytes {
            llistxattr(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
        }
        guard size >= 0 else { throw IOError("list xattrs of", path: path, errno: .current) }
        return buffer[0..<size].split(separator: 0).map(Array.init)
    }

    /// The value of one xattr (not following symlinks).
    public static func xattr(_ path: String, name: [UInt8]) throws(IOError) -> [UInt8] {
        let key = name + [0]
        let size = key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { lgetxattr(path, $0.baseAddress, nil, 0) }
        }
        guard size >= 0 else { throw IOError("read xattr of", path: path, errno: .current) }
        var value = [UInt8](repeating: 0, count: size)
        let read = key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { keyPointer in
                value.withUnsafeMutableBytes { lgetxattr(path, keyPointer.baseAddress, $0.baseAddress, $0.count) }
            }
        }
        guard read >= 0 else { throw IOError("read xattr of", path: path, errno: .current) }
        return Array(value[0..<read])
    }

    /// The first `count` bytes of a regular file.
    public static func readPrefix(_ path: String, count: Int) throws(IOError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open", path: path, errno: .current) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        var total = 0
        while total < count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + total, count - total) }
            if n < 0 && Glibc.errno == EINTR { continue }
            guard n >= 0 else { throw IOError("read", path: path, errno: .current) }
            if n == 0 { break }
            total += n
        }
        return Array(buffer[0..<total])
    }
}

/// An advisory lock (`flock`) on a lock file, held until deinit: what serialises ovlcfs
/// processes that act on the same mount point or state, and what keeps `gc` (exclusive) away
/// from writers of an objects store (shared).
public final class FileLock {
    private let fd: Int32

    public enum Mode: Sendable { case exclusive, shared }

    /// Creates the lock file if needed (not through a symlink) and takes the lock, waiting
    /// for it unless `wait` is false (then a held lock throws `EWOULDBLOCK`).
    public init(path: String, mode: Mode = .exclusive, wait: Bool = true) throws(IOError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0o600)
        guard fd >= 0 else { throw IOError("open lock file", path: path, errno: .current) }
        let operation = (mode == .exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        while flock(fd, operation) != 0 {
            if Glibc.errno == EINTR { continue }
            let errno = Errno.current
            close(fd)
            throw IOError("lock", path: path, errno: errno)
        }
        self.fd = fd
    }

    deinit { close(fd) }
}

/// The kernel's caches of file data and metadata.
public enum PageCache {
    /// `sync`, then drops the page cache, dentries and inodes (`/proc/sys/vm/drop_caches` = 3; root).
    public static func dropAll() throws(IOError) {
        sync()
        let path = "/proc/sys/vm/drop_caches"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open", path: path, errno: .current) }
        defer { close(fd) }
        guard write(fd, "3", 1) == 1 else { throw IOError("write", path: path, errno: .current) }
    }
}

/// Limits of this process.
public enum ProcessLimits {
    /// Raises the soft limit on open files to the hard limit (a walk that holds a descriptor
    /// per directory level, plus files in flight, needs more than the usual 1024); returns the
    /// soft limit now in force.
    @discardableResult
    public static func raiseOpenFiles() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }
}
