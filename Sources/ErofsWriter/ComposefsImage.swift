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
            && image.inodes.contains(where: {
                $0.type == .charDevice && UInt32(truncatingIfNeeded: $0.rdev) == 0
            })
        {
            return 1
        }
        return minVersion
    }

    /// The image bytes for `model`.
    public static func bytes(for model: Image, minVersion: Int = 0, maxVersion: Int = 1) throws -> [UInt8] {
        let version = try version(for: model, minVersion: minVersion, maxVersion: maxVersion)
        for inode in model.inodes
        where inode.type == .regular && inode.externalObject != nil && inode.size > Limits.maxExternalFileSize {
            throw ComposefsError(reason: "file too large: \(inode.size) bytes needs more than 1024 chunks")
        }
        let layer = try OverlayTranslation.translate(model, options: .composefs(version: version))
        let plan = Plan(layer: layer, version: version)
        plan.order()
        plan.shareXattrs()
        plan.layout()
        return plan.emit()
    }
}

/// Everything the writer knows about one inode, in BFS order.
struct Node {
    var entry: EntryID
    var inode: Inode
    var nlink: UInt32
    var xattrs: [Xattr] = []
    /// Shared-table offset per xattr, or nil when stored inline; empty when all are inline.
    var sharedOffsets: [Int?] = []

    /// The shared offset of xattr `index` (nil: inline).
    func sharedOffset(_ index: Int) -> Int? { sharedOffsets.isEmpty ? nil : sharedOffsets[index] }
    var dirents: [(name: [UInt8], target: Int)] = []
    var blocks = 0
    var tail = 0
    var extended = false
    var xattrSize = 0
    var offset = 0
    var chunkBits = 0
    var chunkCount = 0
    var blockAddress: UInt32 = 0

    var nid: UInt64 { UInt64(offset / ComposefsFormat.inodeSlot) }
    var isExternal: Bool { inode.type == .regular && inode.externalObject != nil && inode.size > 0 }
    var content: [UInt8] { inode.inlineContent ?? [] }
}

final class Plan {
    let blockSize = ComposefsFormat.blockSize
    let layer: Image
    let version: Int
    var nodes: [Node] = []
    var index: [InodeID: Int] = [:]
    var minMtime = Timestamp(seconds: 0)
    var hasACL = false
    var shared: [(xattr: Xattr, offset: Int)] = []
    var sharedSize = 0
    var inodesEnd = 0
    var dataStart = 0
    var dataBlocks = 0
    /// Per node, for dirents: nid and EROFS file type (filled by `layout`).
    var nids: [UInt64] = []
    var fileTypes: [UInt8] = []

    init(layer: Image, version: Int) {
        self.layer = layer
        self.version = version
    }

    /// Pass 3: BFS order (primary entries only), sorted xattrs, min mtime, ACL flag.
    func order() {
        var queue: [EntryID] = [.root]
        var head = 0
        minMtime = layer.inode(of: .root).mtime
        while head < queue.count {
            let entry = queue[head]
            head += 1
            let id = layer.inodeID(of: entry)
            let inode = layer[inode: id]
            var node = Node(entry: entry, inode: inode, nlink: layer.nlink(of: id))
            // Sets are usually sorted already (the translation appends keys in order): keep
            // the layer's storage then instead of a sorted copy per inode.
            let xattrs = layer.xattrs(of: inode)
            let sorted = zip(xattrs, xattrs.dropFirst()).allSatisfy { !$1.key.lexicographicallyPrecedes($0.key) }
            node.xattrs = sorted ? xattrs : xattrs.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            if inode.mtime < minMtime { minMtime = inode.mtime }
            if node.xattrs.contains(where: { $0.key == aclAccess || $0.key == aclDefault }) { hasACL = true }
            index[id] = nodes.count
            nodes.append(node)
            for child in layer.children(of: entry) where layer.isPrimary(child) { queue.append(child) }
        }
        // Directory entries: all children (hard links too) plus `.` and `..`, sorted by name.
        for i in nodes.indices where nodes[i].inode.type == .directory {
            let entry = nodes[i].entry
            var dirents: [(name: [UInt8], target: Int)] = [
                ([0x2E], i), ([0x2E, 0x2E], index[layer.inodeID(of: layer.parent(of: entry))]!),
            ]
            for child in layer.children(of: entry) {
                dirents.append((Array(layer.name(of: child)), index[layer.inodeID(of: child)]!))
            }
            nodes[i].dirents = dirents.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        }
    }

    /// Pass 4: the shared xattr table (pairs on more than one inode), sorted descending.
    func shareXattrs() {
        var counts: [Xattr: Int] = [:]
        for node in nodes { for xattr in node.xattrs { counts[xattr, default: 0] += 1 } }
        let pairs = counts.filter { $0.value > 1 }.map(\.key).sorted { a, b in
            if a.key != b.key { return b.key.lexicographicallyPrecedes(a.key) }
            if a.value.count != b.value.count { return a.value.count > b.value.count }
            return b.value.lexicographicallyPrecedes(a.value)
        }
        var offsets: [Xattr: Int] = [:]
        var offset = 0
        for pair in pairs {
            shared.append((pair, offset))
            offsets[pair] = offset
            offset += entrySize(pair)
        }
        sharedSize = offset
        for i in nodes.indices where nodes[i].xattrs.contains(where: { offsets[$0] != nil }) {
            var used = 0
            nodes[i].sharedOffsets = nodes[i].xattrs.map { xattr in
                guard let offset = offsets[xattr], used < ComposefsFormat.maxSharedXattrsPerInode else { return nil }
                used += 1
                return offset
            }
        }
    }

    /// §7: sizes, compact/extended, padding, nid.
    func layout() {
        var pos = ComposefsFormat.inodeTableOffset
        for i in nodes.indices {
            var node = nodes[i]
            (node.blocks, node.tail) = initialSplit(&node)
            let sizeForDecision: UInt64 =
                node.inode.type == .directory
                ? UInt64(node.blocks * blockSize + node.tail) : node.inode.size
            node.extended =
                !(node.inode.mtime == minMtime && node.nlink <= 0xFFFF && node.inode.uid <= 0xFFFF
                && node.inode.gid <= 0xFFFF && sizeForDecision <= 0xFFFF_FFFF)
            let isz = node.extended ? ComposefsFormat.extendedInodeSize : ComposefsFormat.compactInodeSize
            node.xattrSize = xattrBodySize(node)
            pos = roundUp(pos, ComposefsFormat.inodeSlot)
            pos += tailPadding(&node, pos: pos, isz: isz, xsz: node.xattrSize)
            node.offset = pos
            dataBlocks += node.blocks
            pos += isz + node.xattrSize + node.tail
            nodes[i] = node
        }
        inodesEnd = roundUp(pos, ComposefsFormat.inodeSlot)
        dataStart = roundUp(inodesEnd + sharedSize, blockSize)
        nids = nodes.map(\.nid)
        fileTypes = nodes.map { fileType($0.inode.type) }
    }

    func initialSplit(_ node: inout Node) -> (Int, Int) {
        // (takes the node inout: external files also get their chunk geometry here)
        switch node.inode.type {
        case .directory:
            var blocks = 0, fill = 0
            for dirent in node.dirents {
                let length = ComposefsFormat.direntSize + dirent.name.count
                if fill + length > blockSize {
                    blocks += 1
                    fill = 0
                }
                fill += length
            }
            if fill > ComposefsFormat.maxInlineTail { return (blocks + 1, 0) }
            return (blocks, fill)
        case .symlink:
            return (0, node.inode.symlinkTarget?.count ?? 0)
        case .regular where node.isExternal:
            let size = node.inode.size
            var bits = 64 - (size - 1).leadingZeroBitCount
            bits = min(max(bits, ComposefsFormat.minChunkBits), ComposefsFormat.maxChunkBits)
            node.chunkBits = bits
            node.chunkCount = Int((size + (UInt64(1) << UInt64(bits)) - 1) >> UInt64(bits))
            return (0, ComposefsFormat.chunkEntrySize * node.chunkCount)
        case .regular where !node.content.isEmpty:
            let size = node.content.count
            var blocks = size / blockSize, tail = size % blockSize
            if tail > ComposefsFormat.maxInlineTail {
                blocks += 1
                tail = 0
            }
            return (blocks, tail)
        default:
            return (0, 0)
        }
    }

    func xattrBodySize(_ node: Node) -> Int {
        guard !node.xattrs.isEmpty else { return 0 }
        var size = ComposefsFormat.xattrBodyHeaderSize
        for (index, xattr) in node.xattrs.enumerated() {
            size += node.sharedOffset(index) == nil ? entrySize(xattr) : 4
        }
        return size
    }

    /// §7.5: padding before an inode so its tail never crosses a block boundary.
    func tailPadding(_ node: inout Node, pos: Int, isz: Int, xsz: Int) -> Int {
        if node.inode.type == .symlink {
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

    // MARK: - Emission

    func emit() -> [UInt8] {
        var w = ByteWriter()
        w.bytes.reserveCapacity(dataStart + dataBlocks * blockSize)
        emitHeaders(into: &w)
        // Inodes.
        var cursor = UInt32(dataStart / blockSize)
        var addresses = [UInt32](repeating: 0, count: nodes.count)
        for (i, node) in nodes.enumerated() {
            w.pad(to: node.offset)
            var address: UInt32 = 0
            if node.blocks > 0 && [.directory, .symlink, .regular].contains(node.inode.type) {
                address = cursor
                cursor += UInt32(node.blocks)
            }
            addresses[i] = address
            emitInode(node, ino: i, blockAddress: address, into: &w)
        }
        w.pad(to: inodesEnd)
        for (xattr, _) in shared { emitEntry(xattr, into: &w) }
        w.pad(to: dataStart)
        // Data blocks.
        for (i, node) in nodes.enumerated() where node.blocks > 0 {
            precondition(w.count == Int(addresses[i]) * blockSize, "data block of node \(i) misplaced")
            switch node.inode.type {
            case .directory:
                let groups = direntGroups(node)
                for g in 0..<node.blocks {
                    let start = w.count
                    w.append(encodeGroup(groups[g]))
                    w.pad(to: start + blockSize)
                }
            case .symlink:
                let start = w.count
                w.append(node.inode.symlinkTarget ?? [])
                w.pad(to: start + blockSize)
            case .regular where node.isExternal:
                w.append(repeatElement(0xFF, count: blockSize))
            default:
                let start = w.count
                w.append(node.content.prefix(blockSize))
                w.pad(to: start + blockSize)
            }
        }
        return w.bytes
    }

    /// The composefs header and the EROFS superblock (layouts in ComposefsFormat).
    func emitHeaders(into w: inout ByteWriter) {
        w.u32(ComposefsFormat.headerMagic)
        w.u32(ComposefsFormat.headerVersion)
        w.u32(hasACL ? ComposefsFormat.flagHasACL : 0)
        w.u32(UInt32(version))
        w.pad(to: ComposefsFormat.superblockOffset)
        w.u32(ComposefsFormat.erofsMagic)
        w.u32(0)  // checksum (not computed; SB_CHKSUM clear)
        w.u32(ComposefsFormat.featureCompat)
        w.u8(ComposefsFormat.blockSizeBits)
        w.u8(0)  // sb_extslots
        w.u16(UInt16(truncatingIfNeeded: nodes[0].nid))
        w.u64(UInt64(nodes.count))  // inos
        w.u64(UInt64(bitPattern: minMtime.seconds))
        w.u32(minMtime.nanoseconds)
        w.u32(UInt32((dataStart / blockSize) + dataBlocks))
        w.u32(0)  // meta_blkaddr
        w.u32(UInt32(inodesEnd / blockSize))
        w.pad(to: ComposefsFormat.inodeTableOffset)
    }

    /// An inode record: the compact (32-byte) or extended (64-byte) core, the xattr body
    /// (bloom filter, shared count, shared indexes, inline entries), then the inline tail.
    func emitInode(_ node: Node, ino index: Int, blockAddress: UInt32, into w: inout ByteWriter) {
        let start = w.count
        let layout: ComposefsFormat.DataLayout =
            node.isExternal ? .chunkBased : (node.tail > 0 ? .flatInline : .flatPlain)
        let format = layout.rawValue << 1 | (node.extended ? 1 : 0)
        let icount =
            node.xattrSize == 0 ? 0 : UInt16((node.xattrSize - ComposefsFormat.xattrBodyHeaderSize) / 4 + 1)
        let size: UInt64
        switch node.inode.type {
        case .directory: size = UInt64(node.blocks * blockSize + node.tail)
        case .regular: size = node.inode.size
        case .symlink: size = UInt64(node.inode.symlinkTarget?.count ?? 0)
        default: size = 0
        }
        var u: UInt32 = 0
        switch node.inode.type {
        case .charDevice, .blockDevice: u = UInt32(truncatingIfNeeded: node.inode.rdev)
        case .regular where node.isExternal:
            u =
                (node.blocks > 0 ? blockAddress & 0xFFFF_0000 : 0)
                | UInt32(node.chunkBits - ComposefsFormat.minChunkBits)
        case .directory, .symlink, .regular: u = node.blocks > 0 ? blockAddress : 0
        default: u = 0
        }
        let mode = UInt16(truncatingIfNeeded: node.inode.mode)
        let ino = UInt32(truncatingIfNeeded: index)
        if node.extended {
            w.u16(format)
            w.u16(icount)
            w.u16(mode)
            w.u16(0)
            w.u64(size)
            w.u32(u)
            w.u32(ino)
            w.u32(node.inode.uid)
            w.u32(node.inode.gid)
            w.u64(UInt64(bitPattern: node.inode.mtime.seconds))
            w.u32(node.inode.mtime.nanoseconds)
            w.u32(node.nlink)
            w.zeros(16)
        } else {
            w.u16(format)
            w.u16(icount)
            w.u16(mode)
            w.u16(UInt16(truncatingIfNeeded: node.nlink))
            w.u32(UInt32(truncatingIfNeeded: size))
            w.u32(0)
            w.u32(u)
            w.u32(ino)
            w.u16(UInt16(truncatingIfNeeded: node.inode.uid))
            w.u16(UInt16(truncatingIfNeeded: node.inode.gid))
            w.u32(0)
        }
        if node.xattrSize > 0 { emitXattrBody(node, into: &w) }
        if node.tail > 0 {
            switch node.inode.type {
            case .directory: w.append(encodeGroup(direntGroups(node).last!))
            case .symlink: w.append(node.inode.symlinkTarget ?? [])
            case .regular where node.isExternal:
                w.append(repeatElement(0xFF, count: ComposefsFormat.chunkEntrySize * node.chunkCount))
            default: w.append(node.content.suffix(node.tail))
            }
        }
        let core = node.extended ? ComposefsFormat.extendedInodeSize : ComposefsFormat.compactInodeSize
        precondition(w.count - start == core + node.xattrSize + node.tail, "inode size mismatch")
    }

    /// The inline xattr body (§6): bloom filter, shared count, shared indexes, inline entries.
    func emitXattrBody(_ node: Node, into w: inout ByteWriter) {
        var bits: UInt32 = 0
        for xattr in node.xattrs {
            let (prefixIndex, name) = splitPrefix(xattr.key)
            bits |= 1 << (XXHash32.hash(name, seed: ComposefsFormat.xattrFilterSeed &+ UInt32(prefixIndex)) & 31)
        }
        w.u32(bits ^ 0xFFFF_FFFF)
        w.u8(UInt8(node.sharedOffsets.compactMap { $0 }.count))
        w.zeros(7)
        for offset in node.sharedOffsets.compactMap({ $0 }) {
            w.u32(UInt32(((inodesEnd % blockSize) + offset) / 4))
        }
        for (index, xattr) in node.xattrs.enumerated() where node.sharedOffset(index) == nil {
            emitEntry(xattr, into: &w)
        }
    }

    /// Dirent groups (§9.1): cut before an entry that would overflow a block.
    func direntGroups(_ node: Node) -> [[(name: [UInt8], target: Int)]] {
        var groups: [[(name: [UInt8], target: Int)]] = [[]]
        var fill = 0
        for dirent in node.dirents {
            let length = ComposefsFormat.direntSize + dirent.name.count
            if fill + length > blockSize {
                groups.append([])
                fill = 0
            }
            groups[groups.count - 1].append(dirent)
            fill += length
        }
        return groups
    }

    func encodeGroup(_ group: [(name: [UInt8], target: Int)]) -> [UInt8] {
        var w = ByteWriter()
        var nameOffset = ComposefsFormat.direntSize * group.count
        for dirent in group {
            w.u64(nids[dirent.target])
            w.u16(UInt16(nameOffset))
            w.u8(fileTypes[dirent.target])
            w.u8(0)
            nameOffset += dirent.name.count
        }
        for dirent in group { w.append(dirent.name) }
        return w.bytes
    }

    func fileType(_ type: FileType) -> UInt8 {
        switch type {
        case .regular: 1
        case .directory: 2
        case .charDevice: 3
        case .blockDevice: 4
        case .fifo: 5
        case .socket: 6
        case .symlink: 7
        }
    }

    func emitEntry(_ xattr: Xattr, into w: inout ByteWriter) {
        let (prefixIndex, name) = splitPrefix(xattr.key)
        let start = w.count
        w.u8(UInt8(truncatingIfNeeded: name.count))
        w.u8(prefixIndex)
        w.u16(UInt16(truncatingIfNeeded: xattr.value.count))
        w.append(name)
        w.append(xattr.value)
        w.pad(to: start + entrySize(xattr))
    }

    func entrySize(_ xattr: Xattr) -> Int {
        roundUp(4 + splitPrefix(xattr.key).1.count + xattr.value.count, 4)
    }
}

let aclAccess = Array("system.posix_acl_access".utf8)
let aclDefault = Array("system.posix_acl_default".utf8)
private let prefixes: [([UInt8], UInt8)] = [
    (Array("user.".utf8), 1), (aclAccess, 2), (aclDefault, 3), (Array("trusted.".utf8), 4),
    (Array("security.".utf8), 6),
]

/// §6: the EROFS name index and the stored name (key without its prefix).
func splitPrefix(_ key: [UInt8]) -> (UInt8, [UInt8]) {
    for (prefix, index) in prefixes where key.starts(with: prefix) { return (index, Array(key[prefix.count...])) }
    return (0, key)
}
