import Foundation
import LinuxSys
import OverlayTranslation
import SystemPackage

/// Whether to insist on verification of the objects' content (overlay `verity=require`).
public enum VerityPolicy: String, Sendable, CaseIterable, Codable {
    /// Verify when the kernel and the objects' filesystem can; otherwise warn.
    case auto
    /// Refuse to mount without it.
    case require
    /// Never ask for it.
    case off
}

/// What kind of image is mounted.
public enum MountedImageKind: String, Sendable, Codable {
    case squashfs, composefs
    /// A GPT disk: squashfs partition + dm-verity hash partition.
    case verityDisk = "verity-disk"
}

/// A mount to make.
public struct MountRequest: Sendable {
    public var image: String
    public var target: String
    public var objects: [String]
    public var layout: OverlayLayout
    public var verity: VerityPolicy
    /// For verity disks: the root hash to trust (default: the one the partition UUIDs spell).
    public var rootHash: [UInt8]?
    /// Logical block size of the loop devices; nil: 4096 when the image (or partition) is a
    /// whole number of 4 KiB blocks, else 512. With 4096, squashfs keeps the device pages it
    /// reads only partly (metadata blocks straddling pages) in its page cache instead of reading
    /// them again — about half the loop requests of a cold walk (docs/performance.md).
    public var loopBlockSize: UInt32?

    /// The image file's fs-verity digest to insist on (`digest=`), checked on the descriptor
    /// every later step uses.
    public var digest: [UInt8]?
    /// A writable overlay: its upper and work directories (both or neither).
    public var upperdir: String?
    public var workdir: String?
    /// Mount attributes of the overlay besides read-only (nosuid, nodev, noexec).
    public var attributes: MountAttributes = []
    /// With an upper directory: mount it read-only all the same (`ro`).
    public var readOnly = false
    /// Where the image is read from when that is not `image` (`/proc/self/fd/N` of the
    /// descriptor whose digest was checked).
    var imageAccess: String?
    /// The upper and work directories as opened (pinned) for this mount: `/proc/self/fd/N`.
    var upperAccess: String?
    var workAccess: String?

    public init(
        image: String, target: String, objects: [String], layout: OverlayLayout = .dataOnly,
        verity: VerityPolicy = .auto,
        rootHash: [UInt8]? = nil
    ) {
        self.rootHash = rootHash
        self.image = image
        self.target = target
        self.objects = objects
        self.layout = layout
        self.verity = verity
    }
}

/// The persisted record of one ovlcfs mount (`/run/ovlcfs/mounts/*.json`).
public struct MountRecord: Codable, Sendable, Equatable {
    public var target: String
    public var image: String
    public var kind: MountedImageKind
    public var layout: OverlayLayout
    public var objects: [String]
    public var loopDevice: String?
    /// A writable mount's upper and work directories.
    public var upperdir: String?
    public var workdir: String?
    /// What the image file was when it was mounted: `gc` marks from the file at `image` only
    /// while it is still this one.
    public var imageIdentity: FileIdentity?
    /// Every loop device the mount attached, with its attachment's disk sequence number:
    /// `umount` waits for them to go (records written before ovlcfs kept them have none).
    public var loops: [AttachedLoop]?
    /// The dm-verity mapping of a verity disk (removed with the mount: deferred removal).
    public var verityDevice: String?
    public var overlayVerity: Bool
    public var pid: Int32
    public var created: Date
    /// The overlay's mount ID once attached: `umount` acts only on the mount at `target` that
    /// still has it (records written before ovlcfs kept it have none: type and source decide).
    public var mountID: Int?

    /// Whether `mount` is the overlay this record describes.
    public func describes(_ mount: MountIdentity) -> Bool {
        mount.type == "overlay" && mount.source == "ovlcfs" && (mountID == nil || mountID == mount.id)
    }
}

/// A file as `stat` tells it apart from another: device, inode, size and mtime.
public struct FileIdentity: Codable, Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
    public var size: UInt64
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: Int64

    public init(_ status: FileStatus) {
        device = status.device
        inode = status.inode
        size = status.size
        mtimeSeconds = Int64(status.mtimeSeconds)
        mtimeNanoseconds = Int64(status.mtimeNanoseconds)
    }

    /// The identity of the file at `path` now (nil if it cannot be stat'ed).
    public init?(path: String) {
        guard let status = try? FileStatus(path: path) else { return nil }
        self.init(status)
    }
}

/// A loop device attachment: the device and its disk sequence number.
public struct AttachedLoop: Codable, Sendable, Equatable {
    public var device: String
    public var sequence: UInt64
    public init(device: String, sequence: UInt64) {
        self.device = device
        self.sequence = sequence
    }
}

/// One step of mounting, named in errors and used by the fault-injection tests.
public enum MountStep: String, Sendable, CaseIterable {
    case verity = "verity"
    case loopAttach = "loop attach"
    case filesystemMount = "filesystem mount"
    case overlayMount = "overlay mount"
    case stateWrite = "state write"
    case attach = "attach at the mount point"
}

public struct MountDriverError: Error, Sendable, CustomStringConvertible {
    public var step: MountStep?
    public var message: String
    public var hint: String?
    /// The error underneath (a kernel call's `MountError` or `IOError`, libcryptsetup's, …).
    public var cause: (any Error)?

    public init(step: MountStep?, message: String, hint: String? = nil, cause: (any Error)? = nil) {
        self.step = step
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    /// The errno underneath, when the cause was a system call.
    public var errno: Errno? { (cause as? MountError)?.errno ?? (cause as? IOError)?.errno }

    public var description: String {
        var text = step.map { "\($0.rawValue) failed: " } ?? ""
        text += message
        if let hint { text += "\nhint: \(hint)" }
        return text
    }
}
