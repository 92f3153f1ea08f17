import ImageModel
import OverlayTranslation

/// Reads a composefs image (ours or mkcomposefs's) back into the model (reference 09 §11).
///
/// Every read is bounds-checked: a corrupt image gives a `ComposefsError` naming the offset,
/// never a trap. Each nid is parsed once, so a looping directory graph cannot recurse forever.
public enum ComposefsReader {
    public struct Header: Sendable, Codable {
        public var formatVersion: Int
        public var hasACL: Bool
        public var inodes: UInt64
        public var blocks: UInt32
    }

    /// The overlay layer the image holds (xattrs as stored; the 256 root whiteouts included).
    public static func readLayer(_ bytes: [UInt8]) throws(ComposefsError) -> (Image, Header) {
        var reader = Reader(bytes: bytes)
        return try reader.read()
    }

    /// The model the image describes (un-translated).
    public static func read(_ bytes: [UInt8]) throws -> (Image, Header) {
        let (layer, header) = try readLayer(bytes)
        return (try OverlayTranslation.untranslate(layer), header)
    }
}

/// Shared xattr entries already parsed, by id (a class: the reader's lookups are non-mutating).
private final class SharedXattrCache {
    var entries: [Int: Xattr] = [:]
}

private struct Reader {
    let bytes: [UInt8]
    let sharedXattrs = SharedXattrCache()
    var meta = 0
    var xattrBase = 0
    var buildTime = Timestamp(seconds: 0)

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ reason: String) -> ComposefsError { ComposefsError(reason: "corrupt composefs image: \(reason)") }

    func u8(_ at: Int) throws(ComposefsError) -> UInt8 {
        guard at >= 0, at < bytes.count else { throw fail("read past the end at offset \(at)") }
        return bytes[at]
    }
    func u16(_ at: Int) throws(ComposefsError) -> UInt16 { try le(UInt16.self, at) }
    func u32(_ at: Int) throws(ComposefsError) -> UInt32 { try le(UInt32.self, at) }
    func u64(_ at: Int) throws(ComposefsError) -> UInt64 { try le(UInt64.self, at) }
    func le<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, _ at: Int) throws(ComposefsError) -> T {
        guard let value = LittleEndian.read(type, from: bytes, at: at) else {
            throw fail("read past the end at offset \(at)")
        }
        return value
    }
    func slice(_ at: Int, _ count: Int) throws(ComposefsError) -> [UInt8] {
        guard at >= 0, count >= 0, at <= bytes.count, count <= bytes.count - at else {
            throw fail("\(count) bytes at offset \(at) lie outside the \(bytes.count)-byte image")
        }
        return Array(bytes[at..<at + count])
    }

    struct RawInode {
        var inode: Inode
        var xattrs: [Xattr]
        var layout: Int
        var size: UInt64
        var u: UInt32
        var tailStart: Int
    }

    mutating func read() throws(ComposefsError) -> (Image, ComposefsReader.Header) {
        guard bytes.count >= F.blockSize else {
            throw fail("only \(bytes.count) bytes (at least \(F.blockSize) expected)")
        }
        guard try u32(0) == F.headerMagic else { throw fail("no composefs magic at offset 0") }
        guard try u32(4) == F.headerVersion else { throw fail("header version \(try u32(4)), expected 1") }
        guard try u32(F.superblockOffset) == F.erofsMagic else {
            throw fail("no EROFS magic at offset \(F.superblockOffset)")
        }
        guard try u8(1036) == F.blockSizeBits else {
            throw fail("block size 2^\(try u8(1036)), expected \(F.blockSize)")
        }
        let header = ComposefsReader.Header(
            formatVersion: Int(try u32(12)), hasACL: try u32(8) & F.flagHasACL != 0,
            inodes: try u64(1040), blocks: try u32(1060))
        meta = Int(try u32(1064)) * F.blockSize
        xattrBase = Int(try u32(1068)) * F.blockSize
        buildTime = Timestamp(seconds: Int64(bitPattern: try u64(1048)), nanoseconds: try u32(1056))
        let rootNid = Int(try u16(1038))
        let root = try inode(nid: rootNid)
        guard root.inode.type == .directory else { throw fail("the root inode (nid \(rootNid)) is not a directory") }
        var builder: ImageBuilder
        do { builder = try ImageBuilder(root: root.inode) } catch { throw fail("\(error)") }
        builder.setXattrs(root.xattrs, of: InodeID(0))
        var seen: [Int: InodeID] = [rootNid: InodeID(0)]
        // Directories may share blocks in a crafted image: cap the directory entries loaded
        // (not only those visited: a listing is held whole while its subtree is walked) at one
        // per image byte.
        let maxEntries = max(1 << 20, bytes.count)
        var loaded = 0
        func listing(_ dir: RawInode) throws(ComposefsError) -> [([UInt8], Int)] {
            let list = try dirents(of: dir)
            loaded += list.count
            guard loaded <= maxEntries else {
                throw fail(
                    "more than \(maxEntries) directory entries in a \(bytes.count)-byte image (directories sharing blocks?)"
                )
            }
            return list
        }
        // Depth-first, pre-order, entries in on-disk order: the first path met of an inode is
        // its primary, as composefs-info decides. An explicit stack keeps deep trees off the
        // call stack.
        var stack: [(entry: EntryID, dirents: [([UInt8], Int)], next: Int)] = [(.root, try listing(root), 0)]
        while !stack.isEmpty {
            let top = stack.count - 1
            guard stack[top].next < stack[top].dirents.count else {
                stack.removeLast()
                continue
            }
            let (name, nid) = stack[top].dirents[stack[top].next]
            stack[top].next += 1
            let parent = stack[top].entry
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            do {
                if let existing = seen[nid] {
                    try builder.addHardLink(name: name, in: parent, to: existing)
                    continue
                }
                var raw = try inode(nid: nid)
                raw.inode.xattrs = builder.internXattrs(raw.xattrs)
                let child = try builder.add(name: name, in: parent, inode: raw.inode)
                seen[nid] = builder.inodeID(of: child)
                if raw.inode.type == .directory { stack.append((child, try listing(raw), 0)) }
            } catch let error as ComposefsError {
                throw error
            } catch {
                throw fail("directory entry \(String(decoding: name, as: UTF8.self)) (nid \(nid)): \(error)")
            }
        }
        do { return (try builder.build(), header) } catch { throw fail("\(error)") }
    }

    func inode(nid: Int) throws(ComposefsError) -> RawInode {
        let at = meta + 32 * nid
        let format = Int(try u16(at))
        let extended = format & 1 != 0
        let layout = (format >> 1) & 7
        guard [0, 2, 4].contains(layout) else { throw fail("inode nid \(nid) has data layout \(layout)") }
        let icount = Int(try u16(at + 2))
        let mode = UInt32(try u16(at + 4))
        guard let type = FileType(mode: mode) else { throw fail("inode nid \(nid) has mode \(String(mode, radix: 8))") }
        var inode = Inode(type: type, permissions: UInt16(mode & 0o7777))
        let size: UInt64, u: UInt32
        if extended {
            size = try u64(at + 8)
            u = try u32(at + 16)
            inode.uid = try u32(at + 24)
            inode.gid = try u32(at + 28)
            inode.mtime = Timestamp(seconds: Int64(bitPattern: try u64(at + 32)), nanoseconds: try u32(at + 40))
            inode.nlink = try u32(at + 44)
        } else {
            inode.nlink = UInt32(try u16(at + 6))
            size = UInt64(try u32(at + 8))
            u = try u32(at + 16)
            inode.uid = UInt32(try u16(at + 24))
            inode.gid = UInt32(try u16(at + 26))
            inode.mtime = buildTime
        }
        inode.size = size
        let body = at + (extended ? 64 : 32)
        let xattrSize = icount == 0 ? 0 : 12 + 4 * (icount - 1)
        let xattrs = try readXattrs(at: body, size: xattrSize, nid: nid)
        var raw = RawInode(inode: inode, xattrs: xattrs, layout: layout, size: size, u: u, tailStart: body + xattrSize)
        switch type {
        case .charDevice, .blockDevice:
            raw.inode.rdev = UInt64(u)
            raw.inode.size = 0
        case .symlink:
            guard size > 0, size < F.blockSize else { throw fail("symlink nid \(nid) has size \(size)") }
            raw.inode.data = .symlink(try data(of: raw, count: Int(size)))
        case .regular:
            if size == 0 {
                raw.inode.data = .inline([])
            } else if layout == 4 {
                raw.inode.data = .external(ExternalObject(payload: nil, digest: nil))
            } else {
                guard size <= 5000 else {
                    throw fail("regular file nid \(nid) has \(size) bytes of inline data (at most 5000)")
                }
                raw.inode.data = .inline(try data(of: raw, count: Int(size)))
            }
        case .fifo, .socket:
            raw.inode.size = 0
        case .directory:
            break
        }
        return raw
    }

    /// `count` bytes of a flat inode's data: whole blocks from `i_u`, the rest from its tail.
    func data(of raw: RawInode, count: Int) throws(ComposefsError) -> [UInt8] {
        if raw.layout == Int(F.DataLayout.flatPlain.rawValue) { return try slice(Int(raw.u) * F.blockSize, count) }
        let inBlocks = count / F.blockSize * F.blockSize
        var out = inBlocks > 0 ? try slice(Int(raw.u) * F.blockSize, inBlocks) : []
        out += try slice(raw.tailStart, count - inBlocks)
        return out
    }

    /// An inode's xattrs, inline then shared. Charged against the per-inode budget as they are
    /// read (255 shared references to one 64 KiB value would otherwise copy 16 MB per inode);
    /// shared entries are parsed once (their values then shared, not copied).
    func readXattrs(at: Int, size: Int, nid: Int) throws(ComposefsError) -> [Xattr] {
        guard size > 0 else { return [] }
        let sharedCount = Int(try u8(at + 4))
        guard 12 + 4 * sharedCount <= size else {
            throw fail("inode nid \(nid): \(sharedCount) shared xattrs do not fit its xattr body")
        }
        var xattrs: [Xattr] = []
        var budget = Limits.xattrHeaderOverhead
        func charge(_ xattr: Xattr) throws(ComposefsError) {
            budget += xattr.budgetCost
            guard budget <= Limits.maxStoredXattrBudget else {
                throw fail(
                    "inode nid \(nid): xattrs of more than \(Limits.maxStoredXattrBudget) bytes (twice the per-inode maximum)"
                )
            }
            xattrs.append(xattr)
        }
        var pos = at + 12 + 4 * sharedCount
        let end = at + size
        while pos < end {
            let (xattr, length) = try entry(at: pos, nid: nid)
            try charge(xattr)
            pos += length
        }
        guard pos == end else { throw fail("inode nid \(nid): xattr entries overrun their body") }
        for i in 0..<sharedCount {
            let id = Int(try u32(at + 12 + 4 * i))
            if let cached = sharedXattrs.entries[id] {
                try charge(cached)
            } else {
                let xattr = try entry(at: xattrBase + 4 * id, nid: nid).0
                sharedXattrs.entries[id] = xattr
                try charge(xattr)
            }
        }
        return xattrs
    }

    func entry(at pos: Int, nid: Int) throws(ComposefsError) -> (Xattr, Int) {
        let nameLength = Int(try u8(pos))
        let index = Int(try u8(pos + 1))
        let valueLength = Int(try u16(pos + 2))
        let prefixes = [
            "", "user.", "system.posix_acl_access", "system.posix_acl_default", "trusted.", "lustre.", "security.",
        ]
        guard index < prefixes.count else { throw fail("inode nid \(nid): xattr name index \(index)") }
        let name = try slice(pos + 4, nameLength)
        let value = try slice(pos + 4 + nameLength, valueLength)
        return (Xattr(key: Array(prefixes[index].utf8) + name, value: value), roundUp(4 + nameLength + valueLength, 4))
    }

    /// A directory's entries (name, nid), from its blocks and inline tail.
    func dirents(of dir: RawInode) throws(ComposefsError) -> [([UInt8], Int)] {
        let size = Int(clamping: dir.size)
        guard size > 0, size <= bytes.count else { throw fail("directory of \(dir.size) bytes") }
        var blocks: [[UInt8]] = []
        let count = (size + (F.blockSize - 1)) / F.blockSize
        for b in 0..<count {
            let isTail = dir.layout == 2 && b == count - 1
            let length = b == count - 1 && size % F.blockSize != 0 ? size % F.blockSize : F.blockSize
            blocks.append(isTail ? try slice(dir.tailStart, length) : try slice((Int(dir.u) + b) * F.blockSize, length))
        }
        var result: [([UInt8], Int)] = []
        for block in blocks {
            guard block.count >= 12 else { throw fail("directory block of \(block.count) bytes") }
            let first = Int(UInt16(block[8]) | UInt16(block[9]) << 8)
            guard first >= 12, first % 12 == 0, first <= block.count else {
                throw fail("directory block with name offset \(first)")
            }
            let n = first / 12
            for i in 0..<n {
                let record = i * 12
                var nid: UInt64 = 0
                for k in 0..<8 { nid |= UInt64(block[record + k]) << (8 * UInt64(k)) }
                let start = Int(UInt16(block[record + 8]) | UInt16(block[record + 9]) << 8)
                var end = block.count
                if i + 1 < n { end = Int(UInt16(block[record + 20]) | UInt16(block[record + 21]) << 8) }
                guard start <= end, end <= block.count, start >= first else {
                    throw fail("directory entry \(i) has names at \(start)…\(end)")
                }
                var name = Array(block[start..<end])
                if let nul = name.firstIndex(of: 0) { name = Array(name[..<nul]) }
                guard !name.isEmpty, nid < UInt64(bytes.count / 32) else {
                    throw fail("directory entry \(i): nid \(nid)")
                }
                result.append((name, Int(nid)))
            }
        }
        return result
    }
}

private typealias F = ComposefsFormat
