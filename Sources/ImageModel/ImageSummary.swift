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
        var byType = Dictionary(uniqueKeysWithValues: FileType.allCases.map { ($0.jsonName, 0) })
        var objects = Set<Payload>()
        var inline = 0, external = 0, bytes: UInt64 = 0, xattrs = 0, digests = 0, whiteouts = 0
        for inode in image.inodes {
            byType[inode.type.jsonName, default: 0] += 1
            xattrs += image.xattrTable[inode.xattrs].count
            if inode.isWhiteout { whiteouts += 1 }
            guard inode.type == .regular else { continue }
            bytes += inode.size
            switch inode.data {
            case .inline: inline += 1
            case .external(let object):
                external += 1
                if let payload = object.payload { objects.insert(payload) }
                if object.digest != nil { digests += 1 }
            default: break
            }
        }
        entries = image.entryCount
        self.byType = byType
        hardLinks = image.entryCount - image.inodeCount
        inlineFiles = inline
        self.objects = objects.count
        externalFiles = external
        fileBytes = bytes
        self.xattrs = xattrs
        distinctXattrSets = Set(image.inodes.map(\.xattrs)).subtracting([.empty]).count
        filesWithDigest = digests
        self.whiteouts = whiteouts
    }
}
