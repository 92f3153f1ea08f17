import Cryptsetup
import Foundation
import LinuxSys
import Verity

/// What identifies a mount in `/proc/self/mountinfo`.
public struct MountIdentity: Sendable, Codable, Equatable {
    public var id: Int
    public var type: String
    public var source: String
    public init(id: Int, type: String, source: String) {
        self.id = id
        self.type = type
        self.source = source
    }
}

/// A loop device the driver holds.
public protocol LoopHandle: AnyObject {
    var path: String { get }
    /// The attachment's disk sequence number (nil where the kernel has none).
    var sequence: UInt64? { get }
    /// Lets autoclear detach the device when its mounts go.
    func release()
    /// Detaches the device now.
    func detach() throws
}

/// A mount not attached anywhere yet.
public protocol MountHandle: AnyObject {
    /// A path naming the mount while it is held (for `lowerdir+`).
    var procPath: String { get }
    func attach(at target: String) throws
}

/// Everything the driver asks of the kernel: the seam tests replace to record calls and inject
/// failures (like swift-system's mocking and containerization's netlink seam).
public protocol KernelOps: AnyObject {
    /// A read-only, autoclearing loop device over `file` (`sizeLimit` 0: to the end), with
    /// logical blocks of `blockSize` bytes.
    func attachLoop(file: String, offset: UInt64, sizeLimit: UInt64, blockSize: UInt32) throws -> any LoopHandle
    /// Configures and creates a filesystem: `options` in order (a nil value sets a flag).
    func mountFilesystem(type: String, source: String, options: [(String, String?)], attributes: MountAttributes) throws
        -> any MountHandle
    /// Unmounts the mount at `target` if the one on top there has ID `mountID` (nil: any),
    /// without a window in which the path could be redirected.
    func unmount(_ target: String, mountID: Int?) throws
    /// Whether the loop attachment `sequence` of `device` is still there.
    func isLoopAttached(_ device: String, sequence: UInt64) -> Bool
    /// Lazy unmount (MNT_DETACH): the mount leaves the tree now, and goes once unused.
    func detachMount(_ target: String) throws
    /// Whether anything is mounted at `target` (throws when the mount table cannot be read).
    func isMounted(_ target: String) throws -> Bool
    /// The mounts at `target`, bottom to top (the last is the one a path lookup reaches);
    /// throws when the mount table cannot be read.
    func mountStack(at target: String) throws -> [MountIdentity]
    /// Whether the kernel can verify fs-verity digests of files in `directory`.
    func hasFsVerity(_ directory: String) -> Bool
    /// Whether device-mapper (with its control node) is available for dm-verity.
    func hasDeviceMapper() -> Bool
    /// Whether overlayfs takes a detached mount (an fsmount fd) as a layer: kernel 6.15 and later.
    func acceptsDetachedLayers() -> Bool
    /// The kernel release (`uname -r`).
    func release() -> String
    /// The names of the device-mapper devices (empty without device-mapper).
    func verityMappings() -> [String]
    /// Maps `data` through dm-verity (hash tree on `hash`); returns the mapped device.
    func activateVerity(data: String, hash: String, rootHash: [UInt8], name: String) throws -> String
    /// Removes a dm-verity mapping (`deferred`: once its last user goes away).
    func deactivateVerity(name: String, deferred: Bool) throws
}

extension KernelOps {
    /// A read-only mount (every lower filesystem).
    func mountFilesystem(type: String, source: String, options: [(String, String?)]) throws -> any MountHandle {
        try mountFilesystem(type: type, source: source, options: options, attributes: [.readOnly])
    }
}

/// The real kernel.
public final class LinuxKernelOps: KernelOps {
    public init() {}

    public func attachLoop(file: String, offset: UInt64, sizeLimit: UInt64, blockSize: UInt32) throws -> any LoopHandle
    {
        var options = LoopDevice.Options()
        options.offset = offset
        options.sizeLimit = sizeLimit
        options.blockSize = blockSize
        return try LoopDevice.attach(file: file, options: options)
    }

    public func mountFilesystem(
        type: String, source: String, options: [(String, String?)], attributes: MountAttributes
    ) throws -> any MountHandle {
        let context = try FilesystemContext(type: type)
        if !source.isEmpty { try context.set("source", source) }
        for (key, value) in options {
            if let value { try context.set(key, value) } else { try context.set(flag: key) }
        }
        return try context.mount(attributes: attributes)
    }

    public func unmount(_ target: String, mountID: Int?) throws { try Mounts.unmount(target, mountID: mountID) }

    public func detachMount(_ target: String) throws { try Mounts.unmount(target, detach: true) }

    public func isLoopAttached(_ device: String, sequence: UInt64) -> Bool {
        LoopDevice.isAttached(device, sequence: sequence)
    }

    public func isMounted(_ target: String) throws -> Bool { try Mounts.table().contains { $0.mountPoint == target } }

    public func mountStack(at target: String) throws -> [MountIdentity] {
        // mountinfo lists mounts in the order they were made: later ones at a path are on top.
        try Mounts.table().filter { $0.mountPoint == target }.map {
            MountIdentity(id: $0.id, type: $0.type, source: $0.source)
        }
    }

    /// Whether the filesystem holding `directory` can enforce fs-verity: ext4, f2fs or btrfs,
    /// in a kernel built with fs-verity for that filesystem (its sysfs feature).
    public func hasFsVerity(_ directory: String) -> Bool {
        let features: [UInt: String] = [
            0xEF53: "/sys/fs/ext4/features/verity", 0xF2F5_2010: "/sys/fs/f2fs/features/verity",
            0x9123_683E: "/sys/fs/btrfs/features/verity",
        ]
        guard let type = try? FileQueries.filesystemType(directory), let feature = features[type] else { return false }
        return FileQueries.exists(feature)
    }

    public func verityMappings() -> [String] {
        guard hasDeviceMapper(), let names = try? FileQueries.directoryEntries("/dev/mapper") else { return [] }
        return names.map { String(decoding: $0, as: UTF8.self) }.filter { $0 != "control" }
    }

    public func acceptsDetachedLayers() -> Bool {
        KernelFeatures.version(release()).map { $0 >= (6, 15) } ?? true
    }

    public func release() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "unknown").trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    public func hasDeviceMapper() -> Bool { FileQueries.exists("/dev/mapper/control") }

    public func activateVerity(data: String, hash: String, rootHash: [UInt8], name: String) throws -> String {
        try VeritySetup.activate(data: data, hash: hash, rootHash: rootHash, name: name)
    }

    public func deactivateVerity(name: String, deferred: Bool) throws {
        try VeritySetup.deactivate(name: name, deferred: deferred)
    }
}

extension LoopDevice: LoopHandle {}
extension DetachedMount: MountHandle {}
