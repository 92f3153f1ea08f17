/// The type of a file, as the `S_IFMT` bits of `st_mode` encode it.
public enum FileType: UInt8, Sendable, CaseIterable, Hashable {
    case directory, regular, symlink, blockDevice, charDevice, fifo, socket

    /// `S_IFMT`: the file-type bits of a mode.
    public static let formatMask: UInt32 = 0o170000

    /// The type named by the `S_IFMT` bits of `mode`, or nil when they name none.
    public init?(mode: UInt32) {
        switch mode & Self.formatMask {
        case 0o040000: self = .directory
        case 0o100000: self = .regular
        case 0o120000: self = .symlink
        case 0o060000: self = .blockDevice
        case 0o020000: self = .charDevice
        case 0o010000: self = .fifo
        case 0o140000: self = .socket
        default: return nil
        }
    }

    /// The `S_IFMT` bits of this type.
    public var modeBits: UInt32 {
        switch self {
        case .directory: 0o040000
        case .regular: 0o100000
        case .symlink: 0o120000
        case .blockDevice: 0o060000
        case .charDevice: 0o020000
        case .fifo: 0o010000
        case .socket: 0o140000
        }
    }

    /// The name used in JSON summaries (`byType`).
    public var jsonName: String {
        switch self {
        case .directory: "directory"
        case .regular: "regular"
        case .symlink: "symlink"
        case .blockDevice: "blockDevice"
        case .charDevice: "charDevice"
        case .fifo: "fifo"
        case .socket: "socket"
        }
    }
}

/// A modification time: seconds since the epoch plus nanoseconds (0…999,999,999).
public struct Timestamp: Hashable, Sendable, Comparable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// One extended attribute. Keys and values are raw bytes (values may hold NULs).
public struct Xattr: Hashable, Sendable {
    /// Hashes the bytes in bulk (the synthesized hash feeds them one at a time).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(key.count)
        hasher.combine(byteSpan: key.span)
        hasher.combine(byteSpan: value.span)
    }

    public var key: [UInt8]
    public var value: [UInt8]

    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }

    public init(_ key: String, _ value: String) {
        self.init(key: Array(key.utf8), value: Array(value.utf8))
    }

    /// What this xattr costs against `Limits.maxXattrBudget`.
    public var budgetCost: Int { Limits.xattrEntryOverhead + key.count + value.count }
}

/// Where an external file's content lives, relative to the objects store.
///
/// Most payloads follow the composefs convention `xx/<62 hex digits>`; those are stored as
/// the 32 bytes they spell, which keeps large models compact. Anything else is kept verbatim.
public enum Payload: Hashable, Sendable {
    /// `xx/yyyy…`, lowercase hex of a 32-byte digest.
    case object(Digest)
    /// Any other relative path.
    case path([UInt8])

    /// Classifies `bytes`: a canonical lowercase object path becomes `.object`.
    public init(_ bytes: [UInt8]) {
        if let digest = Digest(objectPath: bytes) {
            self = .object(digest)
        } else {
            self = .path(bytes)
        }
    }

    /// The payload path's bytes.
    public var bytes: [UInt8] {
        switch self {
        case .object(let digest): digest.objectPath
        case .path(let bytes): bytes
        }
    }
}

/// Where a regular file's content lives in the objects store, and its fs-verity digest.
///
/// Stored compactly (48 bytes): in the common case the payload is the digest's own object
/// path (`xx/<62 hex>`), and one 32-byte digest serves both.
public struct ExternalObject: Hashable, Sendable {
    /// The digest, or the digest that the payload path spells, or zero.
    private var storedDigest: Digest
    private var flags: UInt8
    /// A payload that is not the object path of `storedDigest`.
    private var otherPayload: [UInt8]?

    private static let hasDigest: UInt8 = 1
    private static let payloadIsStoredDigest: UInt8 = 2

    public init(payload: Payload?, digest: Digest?) {
        storedDigest = digest ?? Digest.zero
        flags = digest == nil ? 0 : Self.hasDigest
        otherPayload = nil
        switch payload {
        case nil: break
        case .object(let spelled) where digest == nil || digest == spelled:
            storedDigest = spelled
            flags |= Self.payloadIsStoredDigest
        case .some(let other):
            otherPayload = other.bytes
        }
    }

    /// Path of the backing object inside the objects store, if any.
    public var payload: Payload? {
        if flags & Self.payloadIsStoredDigest != 0 { return .object(storedDigest) }
        return otherPayload.map(Payload.init)
    }

    /// The object's fs-verity SHA-256 digest, if known.
    public var digest: Digest? { flags & Self.hasDigest != 0 ? storedDigest : nil }
}

/// The type-specific data of an inode.
public enum FileData: Hashable, Sendable {
    /// Directories, devices, fifos and sockets carry no data.
    case none
    /// A regular file whose content lives in the image (also every empty file).
    case inline([UInt8])
    /// A regular file whose content lives in the objects store (`size` bytes).
    case external(ExternalObject)
    /// A symlink's target.
    case symlink([UInt8])
}

/// An inode: everything a file is apart from its names. Hard links share one inode.
public struct Inode: Hashable, Sendable {
    public var type: FileType
    /// The permission bits of the mode (`mode & 0o7777`: rwx, setuid, setgid, sticky).
    public var permissions: UInt16
    public var uid: UInt32
    public var gid: UInt32
    /// The link count as recorded. Directories ignore it: `Image.nlink(of:)` derives theirs.
    public var nlink: UInt32
    /// Device number (`dev_t`) of block and character devices.
    public var rdev: UInt64
    /// The file size: content length for regular files, target length for symlinks,
    /// the recorded size otherwise (directories' sizes are filesystem-specific).
    public var size: UInt64
    public var mtime: Timestamp
    /// The inode's xattrs, interned in the image's xattr table.
    public var xattrs: XattrSetID
    public var data: FileData

    public init(
        type: FileType, permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, nlink: UInt32 = 1,
        rdev: UInt64 = 0, size: UInt64 = 0, mtime: Timestamp = Timestamp(seconds: 0),
        xattrs: XattrSetID = .empty, data: FileData = .none
    ) {
        self.type = type
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.nlink = nlink
        self.rdev = rdev
        self.size = size
        self.mtime = mtime
        self.xattrs = xattrs
        self.data = data
    }

    /// The full `st_mode`: type bits and permission bits.
    public var mode: UInt32 { type.modeBits | UInt32(permissions) }

    /// The composefs spelling of a whiteout: a character device with device number 0/0.
    public var isWhiteout: Bool { type == .charDevice && rdev == 0 }

    /// The external object of a regular file, if its content lives in the objects store.
    public var externalObject: ExternalObject? {
        if case .external(let object) = data { object } else { nil }
    }

    /// Inline content of a regular file, if it lives in the image.
    public var inlineContent: [UInt8]? {
        if case .inline(let content) = data { content } else { nil }
    }

    /// A symlink's target.
    public var symlinkTarget: [UInt8]? {
        if case .symlink(let target) = data { target } else { nil }
    }
}
