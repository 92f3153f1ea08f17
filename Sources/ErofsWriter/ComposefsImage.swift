import ImageModel
import OverlayTranslation

// A composefs image (reference 09), byte for byte what mkcomposefs 1.0.8 writes (the
// constants and the header and superblock layout are in ComposefsFormat.swift):
//
//   0      composefs header (32 bytes), zeros to 1024
//   1024   EROFS superblock (128 bytes)
//   1152   inode records in BFS order, 32-byte slots: core | xattr body | inline tail
//   ...    shared xattr table (at inodes_end), zeros to the next block
//   data   4096-byte blocks in BFS order: directory blocks, content blocks, symlink
//          blocks, 0xFF chunk-table blocks
//
// Two passes over the same plan: `layout()` measures every record and `emit()` writes it,
// checking at each inode that the offsets agree.

/// Errors writing a composefs image.
public struct ComposefsError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Writes composefs (EROFS) images.
public enum ComposefsImage {

    /// The format version mkcomposefs picks (reference 09 §4).
    public static func version(for image: Image, minVersion: Int = 0, maxVersion: Int = 1) throws -> Int {
        let maxVersion = max(maxVersion, minVersion)
        guard minVersion <= 1, maxVersion <= 1, minVersion >= 0 else {
            throw ComposefsError(
                reason: "composefs format version must be 0 or 1 (min \(minVersion), max \(maxVersion))")
        }
        if minVersion == 0 && maxVersion >= 1
            && image.inodes.indices.contains(where: {
                // Read where each inode lies (an element copy would retain its data).
                image.inodes[$0].type == .charDevice && UInt32(truncatingIfNeeded: image.inodes[$0].rdev) == 0
            })
        {
            return 1
        }
        return minVersion
    }

    /// The image bytes for `model`.
    public static func bytes(for model: Image, minVersion: Int = 0, maxVersion: Int = 1) throws -> [UInt8] {
        var image: [UInt8] = []
        try write(model, minVersion: minVersion, maxVersion: maxVersion) { image.append(contentsOf: $0) }
        return image
    }

    /// Writes the image for `model` front to back through `sink`, a MiB or so at a time, so
    /// the image never has to fit in memory; returns the format version chosen.
    /// `lap` is told when each phase ends: `translate`, `layout` (the rest is writing);
    /// `jobs`: threads for the translation (the image is the same for any number).
    @discardableResult
    public static func write(
        _ model: consuming Image, minVersion: Int = 0, maxVersion: Int = 1, jobs: Int = 1,
        lap: (String) -> Void = { _ in },
        to sink: ([UInt8]) throws -> Void
    ) throws -> Int {
        try write(
            consume model, minVersion: minVersion, maxVersion: maxVersion, pairHash: pairHash, jobs: jobs, lap: lap,
            to: sink)
    }

    /// ``write(_:minVersion:maxVersion:to:)`` with the shared-xattr count's prefilter hash
    /// given (tests make every pair collide, to check the exact path writes the same image).
    static func write(
        _ model: consuming Image, minVersion: Int, maxVersion: Int, pairHash: (Xattr) -> UInt64, jobs: Int = 1,
        lap: (String) -> Void = { _ in }, to sink: ([UInt8]) throws -> Void
    ) throws -> Int {
        let version = try version(for: model, minVersion: minVersion, maxVersion: maxVersion)
        for i in model.inodes.indices
        where model.inodes[i].type == .regular && model.inodes[i].size > Limits.maxExternalFileSize
            && model.inodes[i].externalObject != nil
        {
            throw ComposefsError(reason: "file too large: \(model.inodes[i].size) bytes needs more than 1024 chunks")
        }
        let layer = try OverlayTranslation.translate(
            consume model, options: .composefs(version: version), jobs: jobs)
        lap("translate")
        let plan = Plan(layer: consume layer, version: version, pairHash: pairHash)
        // Shared xattrs are addressed by a u32 count of 4-byte words from the table's block.
        guard plan.xattrSets.sharedSize < (1 << 34) - ComposefsFormat.blockSize else {
            throw ComposefsError(
                reason:
                    "the shared xattr table would take \(plan.xattrSets.sharedSize) bytes, more than composefs can address"
            )
        }
        plan.layout()
        lap("layout")
        try plan.emit(to: sink)
        releaseInBackground(consume plan)
        return version
    }
}

/// One inode of the image, in BFS order: where its record goes and how it is laid out.
struct Node {
    var entry: EntryID
    var inode: InodeID
    var nlink: UInt32
    /// Directories: their entries in `Plan.dirents` (`.` and `..` included, sorted by name).
    var direntStart: UInt32 = 0
    var direntCount: UInt32 = 0
    var offset = 0
    var chunkBits: UInt8 = 0
    var extended = false
    // 32 bits each, read as Int (a million nodes: 16 MB less): blocks count a directory's
    // dirent groups or an inline file's blocks; a chunk index (at most 2^21 entries of 4
    // bytes, with 2^43-byte chunks) is the largest tail.
    private var storedBlocks: UInt32 = 0
    private var storedTail: UInt32 = 0
    private var storedChunkCount: UInt32 = 0

    init(entry: EntryID, inode: InodeID, nlink: UInt32) {
        self.entry = entry
        self.inode = inode
        self.nlink = nlink
    }

    var blocks: Int {
        get { Int(storedBlocks) }
        set { storedBlocks = UInt32(newValue) }
    }
    var tail: Int {
        get { Int(storedTail) }
        set { storedTail = UInt32(newValue) }
    }
    var chunkCount: Int {
        get { Int(storedChunkCount) }
        set { storedChunkCount = UInt32(newValue) }
    }

    var nid: UInt64 { UInt64(offset / ComposefsFormat.inodeSlot) }
}

/// The layout of a whole image: the inodes in BFS order (primary entries only), their
/// directory entries, the xattr sets, and where every record and data block goes.
final class Plan {
    let blockSize = ComposefsFormat.blockSize
    let layer: Image
    let version: Int
    /// Every inode in BFS order, and the node of each layer inode.
    private(set) var nodes: [Node] = []
    let nodeOfInode: [Int32]
    /// Directory entries, directory after directory: a layer entry, or `dot` / `dotDot`.
    private(set) var dirents: [UInt32] = []
    static let dot = UInt32.max
    static let dotDot = UInt32.max - 1
    let xattrSets: XattrSets
    let minMtime: Timestamp
    private(set) var inodesEnd = 0
    private(set) var dataStart = 0
    private(set) var dataBlocks = 0

    init(layer: Image, version: Int, pairHash: (Xattr) -> UInt64 = pairHash) {
        self.layer = layer
        self.version = version
        let order = BFSOrder(layer)
        (nodes, nodeOfInode, minMtime) = (order.nodes, order.nodeOfInode, order.minMtime)
        xattrSets = XattrSets(layer.xattrTable, uses: order.setUses, hash: pairHash)
        collectDirents()
    }

    var hasACL: Bool { xattrSets.hasACL }

    /// Each directory's entries: all its children (hard links too) plus `.` and `..`, sorted
    /// by name — the children are sorted already, so `.` and `..` are merged in.
    private func collectDirents() {
        for i in nodes.indices where layer.fileType(of: nodes[i].inode) == .directory {
            let children = layer.children(of: nodes[i].entry)
            // Few names sort before `.` (a byte below 0x2E first): look from the front.
            let beforeDot = children.firstIndex { compareBytes(layer.name(of: $0), dotName) > 0 } ?? children.count
            let beforeDotDot =
                children[beforeDot...].firstIndex { compareBytes(layer.name(of: $0), dotDotName) > 0 } ?? children.count
            nodes[i].direntStart = UInt32(dirents.count)
            nodes[i].direntCount = UInt32(children.count + 2)
            dirents.append(contentsOf: children[..<beforeDot].lazy.map(\.rawValue))
            dirents.append(Self.dot)
            dirents.append(contentsOf: children[beforeDot..<beforeDotDot].lazy.map(\.rawValue))
            dirents.append(Self.dotDot)
            dirents.append(contentsOf: children[beforeDotDot...].lazy.map(\.rawValue))
        }
    }

    /// The name of dirent `k` of `dirents`.
    func direntName(_ k: Int) -> ArraySlice<UInt8> {
        switch dirents[k] {
        case Self.dot: dotName[...]
        case Self.dotDot: dotDotName[...]
        case let raw: layer.name(of: EntryID(raw))
        }
    }

    /// The node dirent `k` (of directory node `directory`) names.
    func direntTarget(_ k: Int, of directory: Int) -> Int {
        switch dirents[k] {
        case Self.dot: directory
        case Self.dotDot: Int(nodeOfInode[layer.inodeID(of: layer.parent(of: nodes[directory].entry)).index])
        case let raw: Int(nodeOfInode[layer.inodeID(of: EntryID(raw)).index])
        }
    }

    /// The dirents of directory node `i`, cut into groups that each fit a block (§9.1).
    func direntGroups(_ i: Int) -> [Range<Int>] {
        let start = Int(nodes[i].direntStart), end = start + Int(nodes[i].direntCount)
        var groups: [Range<Int>] = []
        var groupStart = start, fill = 0
        for k in start..<end {
            let length = ComposefsFormat.direntSize + direntName(k).count
            if fill + length > blockSize {
                groups.append(groupStart..<k)
                groupStart = k
                fill = 0
            }
            fill += length
        }
        groups.append(groupStart..<end)
        return groups
    }

    /// §7: sizes, compact/extended, padding, nid.
    func layout() {
        var pos = ComposefsFormat.inodeTableOffset
        for i in nodes.indices {
            var node = nodes[i]
            place(&node, layer[inode: node.inode], index: i, at: &pos)
            nodes[i] = node
        }
        inodesEnd = roundUp(pos, ComposefsFormat.inodeSlot)
        dataStart = roundUp(inodesEnd + xattrSets.sharedSize, blockSize)
    }

    /// Sizes node `index` (`inode` is lent, not copied) and places it at `pos` or after.
    private func place(_ node: inout Node, _ inode: Inode, index i: Int, at pos: inout Int) {
        (node.blocks, node.tail) = initialSplit(&node, inode, index: i)
        let sizeForDecision: UInt64 =
            inode.type == .directory ? UInt64(node.blocks * blockSize + node.tail) : inode.size
        node.extended =
            !(inode.mtime == minMtime && node.nlink <= 0xFFFF && inode.uid <= 0xFFFF
            && inode.gid <= 0xFFFF && sizeForDecision <= 0xFFFF_FFFF)
        let isz = node.extended ? ComposefsFormat.extendedInodeSize : ComposefsFormat.compactInodeSize
        let xsz = Int(xattrSets.bodySize[Int(inode.xattrs.rawValue)])
        pos = roundUp(pos, ComposefsFormat.inodeSlot)
        pos += tailPadding(&node, isSymlink: inode.type == .symlink, pos: pos, isz: isz, xsz: xsz)
        node.offset = pos
        dataBlocks += node.blocks
        pos += isz + xsz + node.tail
    }

    /// The blocks and inline tail an inode's data takes before padding (external files also
    /// get their chunk geometry here).
    func initialSplit(_ node: inout Node, _ inode: Inode, index: Int) -> (Int, Int) {
        switch inode.data {
        case _ where inode.type == .directory:
            let groups = direntGroups(index)
            let fill = groups.last!.reduce(0) { $0 + ComposefsFormat.direntSize + direntName($1).count }
            if fill > ComposefsFormat.maxInlineTail { return (groups.count, 0) }
            return (groups.count - 1, fill)
        case .symlink(let target):
            return (0, target.count)
        case .external where inode.size > 0:
            let size = inode.size
            var bits = 64 - (size - 1).leadingZeroBitCount
            bits = min(max(bits, ComposefsFormat.minChunkBits), ComposefsFormat.maxChunkBits)
            node.chunkBits = UInt8(bits)
            node.chunkCount = Int((size + (UInt64(1) << UInt64(bits)) - 1) >> UInt64(bits))
            return (0, ComposefsFormat.chunkEntrySize * node.chunkCount)
        case .inline(let content) where !content.isEmpty:
            var blocks = content.count / blockSize, tail = content.count % blockSize
            if tail > ComposefsFormat.maxInlineTail {
                blocks += 1
                tail = 0
            }
            return (blocks, tail)
        default:
            return (0, 0)
        }
    }

    /// §7.5: padding before an inode so its tail never crosses a block boundary.
    func tailPadding(_ node: inout Node, isSymlink: Bool, pos: Int, isz: Int, xsz: Int) -> Int {
        if isSymlink {
            let total = isz + xsz + node.tail
            if total >= blockSize {
                node.blocks += 1
                node.tail = 0
            }
            if pos / blockSize != (pos + total - 1) / blockSize { return roundUp(pos, blockSize) - pos }
            return 0
        }
        let room = blockSize - ((pos + isz + xsz) % blockSize)
        if node.tail <= room { return 0 }
        let pad = roundUp(room, ComposefsFormat.inodeSlot)
        let room2 = blockSize - ((pos + isz + xsz + pad) % blockSize)
        if node.tail <= room2 { return pad }
        node.blocks += 1
        node.tail = 0
        return roundUp(pos, blockSize) - pos
    }
}

private let dotName: [UInt8] = [0x2E]
private let dotDotName: [UInt8] = [0x2E, 0x2E]

/// The inodes in BFS order over primary entries, the earliest mtime, and how many inodes use
/// each xattr set.
struct BFSOrder {
    var nodes: [Node] = []
    var nodeOfInode: [Int32]
    var minMtime: Timestamp
    var setUses: [Int]

    init(_ layer: Image) {
        nodeOfInode = [Int32](repeating: -1, count: layer.inodeCount)
        minMtime = layer.inode(of: .root).mtime
        setUses = [Int](repeating: 0, count: layer.xattrTable.count)
        nodes.reserveCapacity(layer.inodeCount)
        let rootInode = layer.inodeID(of: .root)
        nodes.append(Node(entry: .root, inode: rootInode, nlink: layer.nlink(of: rootInode)))
        nodeOfInode[rootInode.index] = 0
        var head = 0
        while head < nodes.count {
            let entry = nodes[head].entry
            let id = nodes[head].inode
            if layer[inode: id].mtime < minMtime { minMtime = layer[inode: id].mtime }
            setUses[Int(layer[inode: id].xattrs.rawValue)] += 1
            head += 1
            for child in layer.children(of: entry) where layer.isPrimary(child) {
                let id = layer.inodeID(of: child)
                nodeOfInode[id.index] = Int32(nodes.count)
                nodes.append(Node(entry: child, inode: id, nlink: layer.nlink(of: id)))
            }
        }
    }
}
