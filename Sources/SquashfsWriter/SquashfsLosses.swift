import ImageModel

/// What a model loses when it is written as the overlay option's squashfs, found (on the
/// model, before translation) before anything is written.
///
/// squashfs stores mtimes as 32-bit seconds, no size for devices, fifos and sockets, and
/// xattrs only in the `user.`, `trusted.` and `security.` namespaces.
/// Like composefs, the translation turns empty files into plain empty files (no payload).
/// Reading the image back cannot tell which hard-link path was the primary one, so it makes
/// the first in depth-first order primary.
public struct SquashfsLosses: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, CaseIterable, Codable {
        /// Non-zero nanoseconds in an mtime (dropped).
        case nanosecondMtime = "nanosecond-mtime"
        /// An mtime before 1970 or after 2106 (clamped to 0…2^32-1).
        case mtimeOutOfRange = "mtime-out-of-range"
        /// An xattr outside user/trusted/security, e.g. POSIX ACLs (dropped).
        case unsupportedXattr = "unsupported-xattr"
        /// A device, fifo or socket with a non-zero size (squashfs stores none; read back as 0).
        case specialFileSize = "special-file-size"
        /// An empty regular file with a payload or digest (written as a plain empty file).
        case emptyFileObject = "empty-file-object"
        /// A hard-link group whose primary path is not its first in depth-first order.
        case hardLinkPrimary = "hard-link-primary"
    }

    public struct Item: Sendable, Equatable, Codable {
        public var kind: Kind
        public var count: Int
        /// The first few paths (at most ``SquashfsLosses/samplePaths``).
        public var paths: [String]
    }

    public static let samplePaths = 5

    public var items: [Item]

    public var isEmpty: Bool { items.isEmpty }

    /// Whether anything a mount shows is lost (the primary hard-link path and the payload of an
    /// empty file are not).
    public var losesData: Bool { items.contains { $0.kind != .hardLinkPrimary && $0.kind != .emptyFileObject } }

    public func count(_ kind: Kind) -> Int { items.first { $0.kind == kind }?.count ?? 0 }

    /// Finds everything `image` holds that squashfs cannot.
    public init(checking image: Image) {
        // What each inode loses, one bit per kind, from one pass over the inodes; the walk
        // below (in depth-first order, for the sample paths and hard links) runs only when
        // something is lost or some inode has several paths.
        let kinds = Kind.allCases
        func bit(_ kind: Kind) -> UInt8 { 1 << UInt8(kinds.firstIndex(of: kind)!) }
        var losses = [UInt8](repeating: 0, count: image.inodeCount)
        var any: UInt8 = 0
        // Per xattr set: nil until checked, then whether it holds an xattr squashfs drops.
        var dropsXattrs = [Bool?](repeating: nil, count: image.xattrTable.count)
        for index in image.inodes.indices {
            var lost: UInt8 = 0
            let mtime = image.inodes[index].mtime
            if mtime.nanoseconds != 0 { lost |= bit(.nanosecondMtime) }
            if mtime.seconds < 0 || mtime.seconds > Int64(UInt32.max) { lost |= bit(.mtimeOutOfRange) }
            let type = image.inodes[index].type, size = image.inodes[index].size
            switch type {
            case .blockDevice, .charDevice:
                if size != 0 { lost |= bit(.specialFileSize) }
            case .fifo, .socket:
                if size != 0 { lost |= bit(.specialFileSize) }
            case .regular:
                if size == 0, case .external(let object) = image.inodes[index].data,
                    object.payload != nil || object.digest != nil
                {
                    lost |= bit(.emptyFileObject)
                }
            case .directory, .symlink: break
            }
            let set = image.inodes[index].xattrs
            if set != .empty {
                if dropsXattrs[Int(set.rawValue)] == nil {
                    dropsXattrs[Int(set.rawValue)] = !image.xattrTable.allKeys(
                        in: set, satisfy: SquashfsLosses.isStorable)
                }
                if dropsXattrs[Int(set.rawValue)]! { lost |= bit(.unsupportedXattr) }
            }
            losses[index] = lost
            any |= lost
        }
        var counts: [Kind: Int] = [:]
        var samples: [Kind: [String]] = [:]
        func note(_ kind: Kind, _ entry: EntryID) {
            counts[kind, default: 0] += 1
            if samples[kind, default: []].count < Self.samplePaths {
                samples[kind, default: []].append(image.displayPath(of: entry))
            }
        }
        if any != 0 || image.entryCount != image.inodeCount {
            var seen = [Bool](repeating: false, count: image.inodeCount)
            image.forEachDepthFirst { entry in
                let id = image.inodeID(of: entry)
                guard !seen[id.index] else { return }
                seen[id.index] = true
                if !image.isPrimary(entry) { note(.hardLinkPrimary, image.primaryEntry(of: id)) }
                let lost = losses[id.index]
                guard lost != 0 else { return }
                for kind in kinds where lost & bit(kind) != 0 { note(kind, entry) }
            }
        }
        items = Kind.allCases.compactMap { kind in
            counts[kind].map { Item(kind: kind, count: $0, paths: samples[kind] ?? []) }
        }
    }

    /// Whether squashfs can store an xattr with this name.
    public static func isStorable(_ key: [UInt8]) -> Bool {
        for prefix in storablePrefixes where key.count > prefix.count && key.starts(with: prefix) { return true }
        return false
    }

    static let storablePrefixes = ["user.", "trusted.", "security."].map { Array($0.utf8) }

    /// One line per kind: `12 nanosecond mtimes dropped (e.g. /a, /b)`.
    public var lines: [String] {
        items.map { item in
            let what =
                switch item.kind {
                case .nanosecondMtime: "mtime(s) with nanoseconds, stored as whole seconds"
                case .mtimeOutOfRange: "mtime(s) outside 1970…2106, clamped"
                case .unsupportedXattr:
                    "inode(s) with xattrs outside user./trusted./security. (e.g. POSIX ACLs), dropped"
                case .specialFileSize: "device/fifo/socket size(s) other than 0, read back as 0"
                case .emptyFileObject: "empty file(s) with a payload or digest, written as plain empty files"
                case .hardLinkPrimary:
                    "hard-link group(s) whose primary path is not the first in depth-first order; read back, the first path becomes primary"
                }
            return "\(item.count) \(what) (e.g. \(item.paths.joined(separator: ", ")))"
        }
    }
}

/// A model squashfs cannot represent at all: refused before anything is written.
public struct SquashfsLimitError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var size: UInt64
    public var blockSize: Int

    public var description: String {
        let blocks = (size + UInt64(blockSize) - 1) / UInt64(blockSize)
        let largest = UInt64(SquashfsLimits.maxStubBlocks) * UInt64(blockSize)
        return "\(path): a \(size)-byte stub needs \(blocks) block-list entries (4 bytes each) in squashfs; "
            + "the largest stub ovlcfs writes with \(blockSize)-byte blocks is \(largest) bytes"
    }
}

/// Limits of the squashfs writer.
public enum SquashfsLimits {
    /// Most block-list entries in one stub. squashfs keeps one 4-byte entry per data block of
    /// a file's logical size in its inode, and every reader loads the whole list: 2^22 entries
    /// are 16 MiB of inode metadata, a 4 TiB file at 1 MiB blocks.
    public static let maxStubBlocks = 1 << 22

    /// Throws for the first stub larger than the limit at `blockSize`.
    public static func check(_ image: Image, blockSize: Int) throws(SquashfsLimitError) {
        let largest = UInt64(maxStubBlocks) * UInt64(blockSize)
        for id in image.inodes.indices where image.inodes[id].size > largest && image.inodes[id].externalObject != nil {
            throw SquashfsLimitError(
                path: image.displayPath(of: image.primaryEntry(of: InodeID(id))),
                size: image.inodes[id].size, blockSize: blockSize)
        }
    }
}
