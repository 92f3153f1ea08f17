import CLinux
import Glibc
import SystemPackage

/// A failed mount operation: what was being done, errno and the kernel's own messages (from
/// the filesystem context's log, when the new mount API was used).
public struct MountError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Errno
    public var kernelMessages: [String]

    public init(operation: String, errno: Errno, kernelMessages: [String]) {
        self.operation = operation
        self.errno = errno
        self.kernelMessages = kernelMessages
    }

    public var description: String {
        var text = "\(operation): \(errno.description)"
        if !kernelMessages.isEmpty { text += " (kernel: \(kernelMessages.joined(separator: "; ")))" }
        return text
    }
}

/// A filesystem being configured with the new mount API (`fsopen`/`fsconfig`), turned into a
/// detached mount with `mount()`. Owns its descriptor.
public final class FilesystemContext {
    let fd: Int32
    public let type: String

    public init(type: String) throws(MountError) {
        let fd = ovl_fsopen(type)
        guard fd >= 0 else { throw MountError(operation: "fsopen(\(type))", errno: .current, kernelMessages: []) }
        self.fd = fd
        self.type = type
    }

    deinit { close(fd) }

    public func set(_ key: String, _ value: String) throws(MountError) {
        guard ovl_fsconfig_string(fd, key, value) == 0 else { throw failure("fsconfig(\(type), \(key)=\(value))") }
    }

    public func set(flag key: String) throws(MountError) {
        guard ovl_fsconfig_flag(fd, key) == 0 else { throw failure("fsconfig(\(type), \(key))") }
    }

    /// Creates the superblock and returns a detached mount of it.
    public func mount(readOnly: Bool) throws(MountError) -> DetachedMount {
        try mount(attributes: readOnly ? [.readOnly] : [])
    }

    /// Creates the superblock and returns a detached mount of it with `attributes`.
    public func mount(attributes: MountAttributes) throws(MountError) -> DetachedMount {
        guard ovl_fsconfig_create(fd) == 0 else { throw failure("create \(type) filesystem") }
        let mountFD = ovl_fsmount(fd, attributes.rawValue)
        guard mountFD >= 0 else { throw failure("fsmount(\(type))") }
        return DetachedMount(fd: mountFD, type: type)
    }

    /// The messages the kernel logged on this context ("e …", "w …", "i …" lines).
    func messages() -> [String] {
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            lines.append(String(decoding: buffer[0..<count], as: UTF8.self).trimmingTrailingNewline)
        }
        return lines
    }

    private func failure(_ operation: String) -> MountError {
        let errno = Errno.current
        return MountError(operation: operation, errno: errno, kernelMessages: messages())
    }
}

/// Per-mount attributes (`MOUNT_ATTR_*`).
public struct MountAttributes: OptionSet, Sendable, Codable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readOnly = MountAttributes(rawValue: 1)
    public static let noSetuid = MountAttributes(rawValue: 2)
    public static let noDevices = MountAttributes(rawValue: 4)
    public static let noExec = MountAttributes(rawValue: 8)
    public static let noSymlinkFollow = MountAttributes(rawValue: 16)
}

/// A mount not attached anywhere yet (from `fsmount`). Other mounts may reference it as
/// `/proc/self/fd/N`; dropping it without `attach(at:)` destroys it.
public final class DetachedMount: @unchecked Sendable {
    let fd: Int32
    public let type: String

    init(fd: Int32, type: String) {
        self.fd = fd
        self.type = type
    }

    deinit { close(fd) }

    /// A path naming this mount for as long as it is open (for `lowerdir+`).
    public var procPath: String { "/proc/self/fd/\(fd)" }

    /// Attaches the mount at `target` (`move_mount`).
    public func attach(at target: String) throws(MountError) {
        guard ovl_move_mount(fd, target) == 0 else {
            throw MountError(operation: "move_mount to \(target)", errno: .current, kernelMessages: [])
        }
    }
}

/// Mount table operations.
public enum Mounts {
    /// Unmounts `target` (lazily with `detach`).
    public static func unmount(_ target: String, detach: Bool = false) throws(MountError) {
        guard ovl_umount(target, detach ? 1 : 0) == 0 else {
            throw MountError(operation: "umount \(target)", errno: .current, kernelMessages: [])
        }
    }

    /// Unmounts the mount at the absolute, symlink-free path `target` only if the mount on top
    /// there has ID `mountID` (nil: whatever is there). The parent directory is opened without
    /// following symlinks and held while the ID is checked and the mount removed, so a path
    /// redirected meanwhile (a parent renamed, a symlink put in its place) fails instead of
    /// unmounting something else. ESTALE: another mount is there.
    public static func unmount(_ target: String, mountID: Int?, detach: Bool = false) throws(MountError) {
        let components = target.split(separator: "/", omittingEmptySubsequences: true)
        guard target.hasPrefix("/"), let last = components.last, last != ".", last != ".." else {
            throw MountError(operation: "umount \(target)", errno: .invalidArgument, kernelMessages: [])
        }
        let name = String(last)
        let parent = "/" + components.dropLast().joined(separator: "/")
        let fd = ovl_open_directory_path(parent)
        guard fd >= 0 else {
            throw MountError(operation: "open \(parent) (no symlinks)", errno: .current, kernelMessages: [])
        }
        defer { close(fd) }
        guard ovl_umount_at(fd, name, detach ? 1 : 0, Int64(mountID ?? -1)) == 0 else {
            throw MountError(operation: "umount \(target)", errno: .current, kernelMessages: [])
        }
    }

    /// The old `mount(2)` call, for kernels without the new API.
    public static func legacyMount(source: String, target: String, type: String, readOnly: Bool, options: String)
        throws(MountError)
    {
        guard ovl_mount_legacy(source, target, type, readOnly ? 1 : 0, options) == 0 else {
            throw MountError(operation: "mount -t \(type) \(source) \(target)", errno: .current, kernelMessages: [])
        }
    }

    /// One line of `/proc/self/mountinfo`.
    public struct Entry: Sendable, Equatable {
        /// The mount ID (field 1), unique among the current mounts.
        public var id: Int
        public var mountPoint: String
        public var type: String
        public var source: String
        public var superOptions: String
    }

    /// The current mounts (`/proc/self/mountinfo`), octal escapes decoded. Throws when the
    /// table cannot be read: nothing may be concluded then about what is mounted.
    public static func table() throws -> [Entry] {
        let bytes = try InputReader(path: "/proc/self/mountinfo").readAll()
        var entries: [Entry] = []
        for line in bytes.split(separator: 0x0A) {
            let fields = line.split(separator: 0x20).map { unescapeOctal(Array($0)) }
            guard let dash = fields.firstIndex(of: "-"), fields.count > dash + 3, fields.count > 4 else { continue }
            entries.append(
                Entry(
                    id: Int(fields[0]) ?? -1, mountPoint: fields[4], type: fields[dash + 1], source: fields[dash + 2],
                    superOptions: fields[dash + 3]))
        }
        return entries
    }

    static func unescapeOctal(_ field: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < field.count {
            if field[i] == 0x5C, i + 3 < field.count,
                let value = UInt8(String(decoding: field[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                out.append(value)
                i += 4
            } else {
                out.append(field[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
