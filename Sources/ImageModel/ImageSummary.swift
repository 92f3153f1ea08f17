/// Counts that describe an image, as `ovlcfs inspect` prints them.
public struct ImageSummary: Sendable, Equatable, Codable {
    /// Paths in the tree, root and every hard link included.
    public var entries: Int
    /// Inodes by type (hard links counted once), keyed by ``FileType/jsonName``.
    public var byType: [String: Int]
    /// Extra paths of hard-linked files (entries that are not their inode's primary path).
    public var hardLinks: Int
    /// Regular files whose content is stored in the image (empty files included).
    public var inlineFiles: Int
    /// Distinct payload paths of external files.
    public var objects: Int
    /// Regular files backed by an external object.
    public var externalFiles: Int
    /// Sum of regular file sizes, hard links counted once.
    public var fileBytes: UInt64
    /// xattrs over all inodes (hard links counted once).
    public var xattrs: Int
    /// Distinct non-empty xattr sets (an inode's full list of xattrs) in the image.
    public var distinctXattrSets: Int
    /// Regular files that carry an fs-verity digest.
    public var filesWithDigest: Int
    /// Character devices 0/0: composefs's spelling of overlay whiteouts.
    public var whiteouts: Int

    public init(_ image: Image) {
        var counts = [Int](repeating: 0, count: FileType.allCases.count)
        // Object paths are counted by digest where they are one (most are): no path bytes hashed.
        var objectDigests = Set<Digest>(minimumCapacity: image.inodeCount / 2)
        var otherObjects = Set<[UInt8]>()
        var usedSets = [Bool](repeating: false, count: image.xattrTable.count)
        var inline = 0, external = 0, bytes: UInt64 = 0, xattrs = 0, digests = 0, whiteouts = 0
        for inode in image.inodes {
            counts[Int(inode.type.rawValue)] += 1
            xattrs += image.xattrTable.count(of: inode.xattrs)
            usedSets[Int(inode.xattrs.rawValue)] = true
            if inode.isWhiteout { whiteouts += 1 }
            guard inode.type == .regular else { continue }
            bytes += inode.size
            switch inode.data {
            case .inline: inline += 1
            case .external(let object):
                external += 1
                switch object.payload {
                case .object(let digest): objectDigests.insert(digest)
                case .path(let path): otherObjects.insert(path)
                case nil: break
                }
                if object.digest != nil { digests += 1 }
            default: break
            }
        }
        var byType: [String: Int] = [:]
        for type in FileType.allCases { byType[type.jsonName] = counts[Int(type.rawValue)] }
        entries = image.entryCount
        self.byType = byType
        hardLinks = image.entryCount - image.inodeCount
        inlineFiles = inline
        // A `.path` payload never spells a canonical object path (those are `.object`), so the
        // two sets do not overlap.
        self.objects = objectDigests.count + otherObjects.count
        externalFiles = external
        fileBytes = bytes
        self.xattrs = xattrs
        distinctXattrSets = usedSets.dropFirst().count { $0 }
        filesWithDigest = digests
        self.whiteouts = whiteouts
    }
}
