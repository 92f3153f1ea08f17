import CLinux
import Glibc
import SystemPackage

/// An open directory, for walks anchored on file descriptors: every lookup is relative to it
/// and never follows a symlink, so a walk cannot leave the tree however it changes meanwhile.
public final class DirectoryHandle: @unchecked Sendable {
    public let fd: Int32
    /// The path used in messages.
    public let path: String

    /// Opens the directory at `path` (which must not be a symlink).
    public init(path: String) throws(IOError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw IOError("open directory", path: path, errno: .current) }
        self.fd = fd
        self.path = path
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Opens the directory at the absolute `path` refusing a symlink in *any* component
    /// (`openat2` with `RESOLVE_NO_SYMLINKS` from `/`): the handle then pins that directory
    /// whatever is renamed or swapped on the way to it later.
    public static func openPinned(path: String) throws(IOError) -> DirectoryHandle {
        guard path.hasPrefix("/") else { throw IOError("open directory", path: path, detail: "not an absolute path") }
        let root = try DirectoryHandle(path: "/")
        let relative = String(path.drop(while: { $0 == "/" }))
        if relative.isEmpty { return root }
        let fd = root.withName(Array(relative.utf8)) {
            ovl_openat_beneath(root.fd, $0, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        }
        guard fd >= 0 else {
            let errno = Errno.current
            throw IOError(
                "open directory", path: path, errno: errno,
                detail: errno == .tooManySymbolicLinkLevels ? "a component is a symlink" : nil)
        }
        return DirectoryHandle(fd: fd, path: path)
    }

    /// `/proc/self/fd/N`: a path that reaches this very directory while the handle is open.
    public var procPath: String { "/proc/self/fd/\(fd)" }

    /// Creates (if missing) and opens the directory at `path`.
    public static func create(path: String, permissions: mode_t = 0o755) throws(IOError) -> DirectoryHandle {
        if mkdir(path, permissions) != 0 && Glibc.errno != EEXIST {
            throw IOError("create directory", path: path, errno: .current)
        }
        return try DirectoryHandle(path: path)
    }

    func childPath(_ name: [UInt8]) -> String {
        path + "/" + String(decoding: name, as: UTF8.self)
    }

    /// Calls `body` with `name` as a C string.
    func withName<T>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
        (name + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) } }
    }

    /// Opens the child directory `name` (not following a symlink).
    public func openDirectory(_ name: [UInt8]) throws(IOError) -> DirectoryHandle {
        let child = withName(name) { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard child >= 0 else { throw IOError("open directory", path: childPath(name), errno: .current) }
        return DirectoryHandle(fd: child, path: childPath(name))
    }

    /// Opens the directory at `relative` (`/`-separated, no `.` or `..`) inside this one, never
    /// leaving it nor following a symlink (`openat2` beneath; a walk of `O_NOFOLLOW` opens on
    /// kernels before 5.6). Lets a walk reopen a directory from its root instead of holding a
    /// descriptor per pending directory.
    public func openDirectory(beneath relative: [UInt8]) throws(IOError) -> DirectoryHandle {
        guard Self.isPlainRelative(relative) else {
            throw IOError("open directory", path: childPath(relative), detail: "not a plain relative path")
        }
        let components = relative.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Array.init)
        let child = withName(relative) {
            ovl_openat_beneath(fd, $0, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW, 0)
        }
        if child >= 0 { return DirectoryHandle(fd: child, path: childPath(relative)) }
        guard Errno.current == .noFunction else {
            throw IOError("open directory", path: childPath(relative), errno: .current)
        }
        var current: DirectoryHandle = self
        for component in components { current = try current.openDirectory(component) }
        return current
    }

    /// Whether `path` is relative with no empty, `.` or `..` component (so no walk of it can
    /// climb out, whatever a caller checked before).
    static func isPlainRelative(_ path: [UInt8]) -> Bool {
        !path.isEmpty
            && !path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
                .contains { $0.isEmpty || $0.elementsEqual([0x2E]) || $0.elementsEqual([0x2E, 0x2E]) }
    }

    /// Creates (if missing) and opens the child directory `name`.
    public func createDirectory(_ name: [UInt8], permissions: mode_t = 0o755) throws(IOError) -> DirectoryHandle {
        let rc = withName(name) { mkdirat(fd, $0, permissions) }
        if rc != 0 && Glibc.errno != EEXIST {
            throw IOError("create directory", path: childPath(name), errno: .current)
        }
        return try openDirectory(name)
    }

    /// The names in this directory (without `.` and `..`), sorted by bytes.
    public func entries() throws(IOError) -> [[UInt8]] {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else {
            throw IOError("read directory", path: path, errno: .current)
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [[UInt8]] = []
        Glibc.errno = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        if Glibc.errno != 0 { throw IOError("read directory", path: path, errno: .current) }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// `fstatat(…, AT_SYMLINK_NOFOLLOW)` of a child (or of this directory for an empty name).
    public func status(_ name: [UInt8]) throws(IOError) -> FileStatus {
        var st = stat()
        let rc = name.isEmpty ? fstat(fd, &st) : withName(name) { fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) }
        guard rc == 0 else { throw IOError("stat", path: childPath(name), errno: .current) }
        return FileStatus(st)
    }

    /// The target of the symlink `name`.
    public func readLink(_ name: [UInt8]) throws(IOError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4097)
        let count = withName(name) { cName in
            buffer.withUnsafeMutableBytes {
                readlinkat(fd, cName, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4096)
            }
        }
        guard count >= 0 else { throw IOError("read link", path: childPath(name), errno: .current) }
        return Array(buffer[0..<count])
    }

    /// Opens the regular file `name` for reading (not following a symlink).
    public func openFile(_ name: [UInt8]) throws(IOError) -> FileDescriptor {
        let file = withName(name) { openat(fd, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) }
        guard file >= 0 else { throw IOError("open", path: childPath(name), errno: .current) }
        return FileDescriptor(rawValue: file)
    }

    /// Opens the regular file at `relative` (a `/`-separated path) inside this directory for
    /// reading, confined: the lookup never leaves this directory nor passes through a symlink
    /// (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; a walk of `O_NOFOLLOW` opens on
    /// kernels before 5.6), never blocks on a FIFO, and anything but a regular file is refused.
    /// For objects-store entries named by image payloads.
    public func openRegularFile(beneath relative: [UInt8]) throws(IOError) -> (FileDescriptor, FileStatus) {
        let shown = childPath(relative)
        guard Self.isPlainRelative(relative) else {
            throw IOError("open", path: shown, detail: "not a plain relative path")
        }
        let flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW
        var file = withName(relative) { ovl_openat_beneath(fd, $0, flags, 0) }
        if file < 0 && Glibc.errno == ENOSYS {
            var current: DirectoryHandle = self
            let components = relative.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(
                Array.init)
            for component in components.dropLast() { current = try current.openDirectory(component) }
            let last = components.last ?? []
            file = current.withName(last) { openat(current.fd, $0, flags) }
        }
        guard file >= 0 else {
            let errno = Errno.current
            throw IOError(
                "open", path: shown, errno: errno,
                detail: errno == .tooManySymbolicLinkLevels || errno == .improperLink
                    ? "the path leaves the directory or passes through a symlink" : nil)
        }
        let descriptor = FileDescriptor(rawValue: file)
        let status: FileStatus
        do { status = try FileStatus(fd: descriptor) } catch {
            try? descriptor.close()
            throw IOError("stat", path: shown, errno: error.errno)
        }
        guard status.isRegular else {
            try? descriptor.close()
            throw IOError("open", path: shown, detail: "not a regular file")
        }
        let fileFlags = fcntl(file, F_GETFL)
        if fileFlags >= 0 { _ = fcntl(file, F_SETFL, fileFlags & ~O_NONBLOCK) }
        return (descriptor, status)
    }

    /// The size of the regular file at `relative`, looked up as ``openRegularFile(beneath:)``
    /// does; nil when there is none (missing, a symlink on the way, not a regular file).
    public func regularFileSize(beneath relative: [UInt8]) -> UInt64? {
        guard let (fd, status) = try? openRegularFile(beneath: relative) else { return nil }
        try? fd.close()
        return status.size
    }

    /// Opens (creating it and its directories if missing) the regular file at `relative` inside
    /// this directory for writing, confined like ``openRegularFile(beneath:)``: each directory
    /// is created and opened one name at a time without following symlinks.
    public func createRegularFile(beneath relative: [UInt8], permissions: mode_t = 0o644) throws(IOError) -> (
        FileDescriptor, FileStatus
    ) {
        guard Self.isPlainRelative(relative) else {
            throw IOError("create", path: childPath(relative), detail: "not a plain relative path")
        }
        let components = relative.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map(Array.init)
        var current: DirectoryHandle = self
        for component in components.dropLast() { current = try current.createDirectory(component) }
        let last = components.last ?? []
        let file = current.withName(last) {
            openat(current.fd, $0, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW, permissions)
        }
        guard file >= 0 else { throw IOError("create", path: childPath(relative), errno: .current) }
        let descriptor = FileDescriptor(rawValue: file)
        let status: FileStatus
        do { status = try FileStatus(fd: descriptor) } catch {
            try? descriptor.close()
            throw error
        }
        guard status.isRegular else {
            try? descriptor.close()
            throw IOError("create", path: childPath(relative), detail: "not a regular file")
        }
        return (descriptor, status)
    }

    /// The xattrs of child `name` (or of this directory for an empty name), not following a
    /// final symlink. Named through `/proc/self/fd`, so the lookup stays anchored here.
    public func xattrs(_ name: [UInt8]) throws(IOError) -> [(key: [UInt8], value: [UInt8])] {
        if !name.isEmpty && DirectoryHandle.hasXattrAt {
            if let result = try xattrsAt(name) { return result }
        }
        return try xattrsThroughProc(name)
    }

    /// Whether listxattrat/getxattrat (Linux 6.13+) are still believed to work.
    nonisolated(unsafe) static var hasXattrAt = true

    /// listxattrat/getxattrat; nil when the kernel lacks them.
    private func xattrsAt(_ name: [UInt8]) throws(IOError) -> [(key: [UInt8], value: [UInt8])]? {
        let cName = name + [0]
        return try cName.withUnsafeBufferPointer { nameBuffer throws(IOError) -> [(key: [UInt8], value: [UInt8])]? in
            try nameBuffer.withMemoryRebound(to: CChar.self) { n throws(IOError) -> [(key: [UInt8], value: [UInt8])]? in
                var size = ovl_listxattrat(fd, n.baseAddress, nil, 0)
                if size < 0 {
                    if Glibc.errno == ENOSYS {
                        DirectoryHandle.hasXattrAt = false
                        return nil
                    }
                    if Glibc.errno == ENOTSUP || Glibc.errno == EOPNOTSUPP { return [] }
                    throw IOError("list xattrs of", path: childPath(name), errno: .current)
                }
                if size == 0 { return [] }
                var names = [UInt8](repeating: 0, count: size)
                size = names.withUnsafeMutableBytes {
                    ovl_listxattrat(fd, n.baseAddress, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
                }
                guard size >= 0 else { throw IOError("list xattrs of", path: childPath(name), errno: .current) }
                var result: [(key: [UInt8], value: [UInt8])] = []
                for key in names[0..<size].split(separator: 0) {
                    let cKey = Array(key) + [0]
                    let value = try cKey.withUnsafeBufferPointer { k throws(IOError) -> [UInt8] in
                        try k.withMemoryRebound(to: CChar.self) { kp throws(IOError) -> [UInt8] in
                            var buffer = [UInt8](repeating: 0, count: 256)
                            while true {
                                let read = buffer.withUnsafeMutableBytes {
                                    ovl_getxattrat(fd, n.baseAddress, kp.baseAddress, $0.baseAddress, $0.count)
                                }
                                if read >= 0 { return Array(buffer[0..<read]) }
                                if Glibc.errno == ERANGE && buffer.count < 1 << 17 {
                                    buffer = [UInt8](repeating: 0, count: buffer.count * 16)
                                    continue
                                }
                                throw IOError("read xattr of", path: childPath(name), errno: .current)
                            }
                        }
                    }
                    result.append((Array(key), value))
                }
                return result
            }
        }
    }

    /// The same through `/proc/self/fd/N/name`, for kernels before 6.13.
    private func xattrsThroughProc(_ name: [UInt8]) throws(IOError) -> [(key: [UInt8], value: [UInt8])] {
        // Names that are not valid UTF-8 cannot go through a Swift String: build the C path.
        let pathBytes = Array("/proc/self/fd/\(fd)".utf8) + (name.isEmpty ? [] : [0x2F] + name) + [0]
        let shown = name.isEmpty ? path : childPath(name)
        return try pathBytes.withUnsafeBufferPointer { buffer throws(IOError) in
            try buffer.withMemoryRebound(to: CChar.self) { cPath throws(IOError) in
                let p = cPath.baseAddress!
                // The directory itself: follow the /proc magic link (l* would list the link's own).
                let list: (UnsafeMutablePointer<CChar>?, Int) -> Int =
                    name.isEmpty
                    ? { listxattr(p, $0, $1) } : { llistxattr(p, $0, $1) }
                let get: (UnsafePointer<CChar>?, UnsafeMutableRawPointer?, Int) -> Int =
                    name.isEmpty
                    ? { getxattr(p, $0, $1, $2) } : { lgetxattr(p, $0, $1, $2) }
                var size = list(nil, 0)
                if size < 0 && (Glibc.errno == ENOTSUP || Glibc.errno == EOPNOTSUPP) { return [] }
                guard size >= 0 else { throw IOError("list xattrs of", path: shown, errno: .current) }
                if size == 0 { return [] }
                var names = [UInt8](repeating: 0, count: size)
                size = names.withUnsafeMutableBytes {
                    list($0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
                }
                guard size >= 0 else { throw IOError("list xattrs of", path: shown, errno: .current) }
                var result: [(key: [UInt8], value: [UInt8])] = []
                for key in names[0..<size].split(separator: 0) {
                    let keyBytes = Array(key) + [0]
                    let value = try keyBytes.withUnsafeBufferPointer { k throws(IOError) in
                        try k.withMemoryRebound(to: CChar.self) { kp throws(IOError) -> [UInt8] in
                            let length = get(kp.baseAddress, nil, 0)
                            guard length >= 0 else { throw IOError("read xattr of", path: shown, errno: .current) }
                            var value = [UInt8](repeating: 0, count: length)
                            let read = value.withUnsafeMutableBytes { get(kp.baseAddress, $0.baseAddress, $0.count) }
                            guard read >= 0 else { throw IOError("read xattr of", path: shown, errno: .current) }
                            return Array(value[0..<read])
                        }
                    }
                    result.append((Array(key), value))
                }
                return result
            }
        }
    }

    /// Hard-links `name` in `source` to `target` here. Returns false if `target` exists.
    public func link(from source: DirectoryHandle, name: [UInt8], to target: [UInt8]) throws(IOError) -> Bool {
        let rc = source.withName(name) { s in withName(target) { linkat(source.fd, s, fd, $0, 0) } }
        if rc == 0 { return true }
        if Glibc.errno == EEXIST { return false }
        throw IOError("link \(source.childPath(name)) into", path: childPath(target), errno: .current)
    }

    /// Creates a new file `name` here for writing (fails if it exists).
    public func createFile(_ name: [UInt8], permissions: mode_t = 0o644) throws(IOError) -> FileDescriptor {
        let file = withName(name) { openat(fd, $0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions) }
        guard file >= 0 else { throw IOError("create", path: childPath(name), errno: .current) }
        return FileDescriptor(rawValue: file)
    }

    /// A new file in this directory to write and then link under its final name: unnamed
    /// (`O_TMPFILE`) where the filesystem can, so a killed writer leaves nothing; else a
    /// hidden file named `prefix-PID-RANDOM`.
    public func createStagingFile(prefix: String, permissions: mode_t = 0o644) throws(IOError) -> StagingFile {
        let anonymous = openat(fd, ".", ovl_o_tmpfile | O_RDWR | O_CLOEXEC, permissions)
        if anonymous >= 0 { return StagingFile(directory: self, fd: FileDescriptor(rawValue: anonymous), name: nil) }
        var random = SystemRandomNumberGenerator()
        let name = Array("\(prefix)-\(getpid())-\(String(random.next(), radix: 16))".utf8)
        return StagingFile(directory: self, fd: try createFile(name, permissions: permissions), name: name)
    }

    /// Removes the file `name` (errors ignored: used for cleanup).
    public func removeFile(_ name: [UInt8]) {
        _ = withName(name) { unlinkat(fd, $0, 0) }
    }

    /// Removes the file `name`; one already gone is no error.
    public func remove(_ name: [UInt8]) throws(IOError) {
        guard withName(name, { unlinkat(fd, $0, 0) }) == 0 || Glibc.errno == ENOENT else {
            throw IOError("remove", path: childPath(name), errno: .current)
        }
    }

    /// Whether an entry `name` exists.
    public func exists(_ name: [UInt8]) -> Bool {
        var st = stat()
        return withName(name) { fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) } == 0
    }
}

extension FileStatus {
    init(_ st: stat) {
        mode = st.st_mode
        uid = st.st_uid
        gid = st.st_gid
        size = UInt64(st.st_size)
        nlink = UInt64(st.st_nlink)
        inode = UInt64(st.st_ino)
        device = UInt64(st.st_dev)
        rdev = UInt64(st.st_rdev)
        mtimeSeconds = Int64(st.st_mtim.tv_sec)
        mtimeNanoseconds = UInt32(st.st_mtim.tv_nsec)
        ctimeSeconds = Int64(st.st_ctim.tv_sec)
        ctimeNanoseconds = UInt32(st.st_ctim.tv_nsec)
    }

    /// `fstat` of an open file.
    public init(fd: FileDescriptor) throws(IOError) {
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { throw IOError("stat", path: "fd \(fd.rawValue)", errno: .current) }
        self.init(st)
    }
}
