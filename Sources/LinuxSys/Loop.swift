import CLinux
import Glibc
import SystemPackage

/// A loop device this process attached: the device path and an open descriptor.
///
/// Attached with `LOOP_CONFIGURE` (reference 08 §1): read-only, optional offset/size limit
/// and direct I/O, and autoclear — the kernel detaches the device when its last user (our fd,
/// a mount) goes away, so a killed process leaks no loop device.
public final class LoopDevice: @unchecked Sendable {
    public let path: String
    public let number: Int
    /// The device's disk sequence number (`diskseq`), new at every attach: it tells this
    /// attachment from a later one of the same device.
    public let sequence: UInt64?
    private(set) var fd: Int32

    public struct Options: Sendable {
        public var readOnly = true
        public var autoclear = true
        public var directIO = false
        public var offset: UInt64 = 0
        public var sizeLimit: UInt64 = 0
        public var blockSize: UInt32 = 0
        public init() {}
    }

    private init(path: String, number: Int, fd: Int32) {
        self.path = path
        self.number = number
        self.fd = fd
        self.sequence = Self.sequence(of: path)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Attaches `file` to a free loop device. A device another process grabs between
    /// `LOOP_CTL_GET_FREE` and `LOOP_CONFIGURE` (EBUSY) makes us ask for another, a few times.
    public static func attach(file: String, options: Options = Options()) throws(IOError) -> LoopDevice {
        let backing = open(file, (options.readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard backing >= 0 else { throw IOError("open", path: file, errno: .current) }
        defer { close(backing) }
        let control = open("/dev/loop-control", O_RDWR | O_CLOEXEC)
        guard control >= 0 else { throw IOError("open", path: "/dev/loop-control", errno: .current) }
        defer { close(control) }
        var flags: UInt32 = 0
        if options.readOnly { flags |= ovl_lo_flags_read_only }
        if options.autoclear { flags |= ovl_lo_flags_autoclear }
        if options.directIO { flags |= ovl_lo_flags_direct_io }
        var lastError: IOError? = nil
        for _ in 0..<16 {
            let number = ovl_loop_get_free(control)
            guard number >= 0 else { throw IOError("find a free loop device for", path: file, errno: .current) }
            let path = "/dev/loop\(number)"
            let device = open(path, (options.readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
            guard device >= 0 else {
                lastError = IOError("open", path: path, errno: .current)
                continue
            }
            if ovl_loop_configure(device, backing, flags, options.offset, options.sizeLimit, options.blockSize, file)
                == 0
            {
                return LoopDevice(path: path, number: Int(number), fd: device)
            }
            let errno = Errno.current
            close(device)
            if errno == .resourceBusy {
                lastError = IOError("attach \(file) to", path: path, errno: errno)
                continue
            }
            throw IOError("attach \(file) to", path: path, errno: errno)
        }
        throw lastError ?? IOError("attach", path: file, detail: "no free loop device")
    }

    /// Detaches now (otherwise autoclear does it when the last user goes away).
    public func detach() throws(IOError) {
        guard fd >= 0 else { return }
        let rc = ovl_loop_clear(fd)
        let errno = Errno.current
        close(fd)
        fd = -1
        if rc != 0 && errno != .noSuchAddressOrDevice { throw IOError("detach", path: path, errno: errno) }
    }

    /// Closes our descriptor; with autoclear the device goes when its mounts go.
    public func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    /// The disk sequence number of `/dev/loopN`, from sysfs (nil where the kernel has none).
    public static func sequence(of device: String) -> UInt64? {
        let name = device.split(separator: "/").last.map(String.init) ?? device
        guard let text = try? FileQueries.readPrefix("/sys/block/\(name)/diskseq", count: 64) else { return nil }
        return UInt64(String(decoding: text, as: UTF8.self).trimmingTrailingNewline)
    }

    /// Whether the attachment `sequence` of `device` still has its backing file: autoclear
    /// detaches a device when its last opener closes it, which may be a moment after the
    /// unmount (udev probes new devices, and holds them open meanwhile).
    public static func isAttached(_ device: String, sequence: UInt64) -> Bool {
        Self.sequence(of: device) == sequence && backingFile(of: device) != nil
    }

    /// The backing file of `/dev/loopN`, from sysfs (nil when the device is free).
    public static func backingFile(of device: String) -> String? {
        let name = device.split(separator: "/").last.map(String.init) ?? device
        guard let text = try? FileQueries.readPrefix("/sys/block/\(name)/loop/backing_file", count: 4096) else {
            return nil
        }
        let path = String(decoding: text, as: UTF8.self).trimmingTrailingNewline
        return path.isEmpty ? nil : path
    }
}

extension String {
    var trimmingTrailingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
