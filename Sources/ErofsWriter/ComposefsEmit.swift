import ImageModel

// Emission: the plan's records and blocks, front to back, handed on a MiB at a time.
// Every record is checked against the offset `layout()` gave it.

extension Plan {
    /// How much is written before it is handed to the sink.
    static let drainSize = 1 << 20

    /// Writes the whole image through `sink`.
    func emit(to sink: ([UInt8]) throws -> Void) throws {
        var w = ByteWriter()
        w.bytes.reserveCapacity(Self.drainSize + 128 * 1024)
        emitHeaders(into: &w)
        var cursor = UInt32(dataStart / blockSize)
        for i in nodes.indices {
            w.pad(to: nodes[i].offset)
            let address = nodes[i].blocks > 0 ? cursor : 0
            cursor += UInt32(nodes[i].blocks)
            emitInode(i, blockAddress: address, into: &w)
            try w.drain(over: Self.drainSize, into: sink)
        }
        w.pad(to: inodesEnd)
        for xattr in xattrSets.shared { emitEntry(xattr, into: &w) }
        w.pad(to: dataStart)
        for i in nodes.indices where nodes[i].blocks > 0 {
            emitBlocks(i, into: &w)
            try w.drain(over: Self.drainSize, into: sink)
        }
        precondition(w.count == dataStart + dataBlocks * blockSize, "data blocks and layout disagree")
        try w.drain(over: 0, into: sink)
    }

    /// The data blocks of node `i` (the tail, if any, is inline in its record).
    private func emitBlocks(_ i: Int, into w: inout ByteWriter) {
        let node = nodes[i]
        let start = w.count
        let inode = layer[inode: node.inode]
        switch inode.data {
        case _ where inode.type == .directory:
            for group in direntGroups(i).prefix(node.blocks) {
                let groupStart = w.count
                encodeGroup(group, of: i, into: &w)
                w.pad(to: groupStart + blockSize)
            }
        case .symlink(let target):
            w.append(target)
        case .external:
            w.append(repeatElement(0xFF, count: blockSize))
        case .inline(let content):
            w.append(content.prefix(node.blocks * blockSize))
        case .none:
            break
        }
        w.pad(to: start + node.blocks * blockSize)
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
    func emitInode(_ i: Int, blockAddress: UInt32, into w: inout ByteWriter) {
        let node = nodes[i]
        emitInode(i, node, layer[inode: node.inode], blockAddress: blockAddress, into: &w)
    }

    /// (`inode` is lent, not copied.)
    private func emitInode(_ i: Int, _ node: Node, _ inode: Inode, blockAddress: UInt32, into w: inout ByteWriter) {
        let set = Int(inode.xattrs.rawValue)
        let xattrSize = Int(xattrSets.bodySize[set])
        let start = w.count
        let isExternal = node.chunkCount > 0
        let layout: ComposefsFormat.DataLayout =
            isExternal ? .chunkBased : (node.tail > 0 ? .flatInline : .flatPlain)
        let format = layout.rawValue << 1 | (node.extended ? 1 : 0)
        let icount = xattrSize == 0 ? 0 : UInt16((xattrSize - ComposefsFormat.xattrBodyHeaderSize) / 4 + 1)
        let size: UInt64
        var u: UInt32 = node.blocks > 0 ? blockAddress : 0
        switch inode.type {
        case .directory: size = UInt64(node.blocks * blockSize + node.tail)
        case .regular: size = inode.size
        case .symlink: size = UInt64(inode.symlinkTarget?.count ?? 0)
        case .charDevice, .blockDevice:
            size = 0
            u = UInt32(truncatingIfNeeded: inode.rdev)
        case .fifo, .socket: size = 0
        }
        if isExternal {
            u =
                (node.blocks > 0 ? blockAddress & 0xFFFF_0000 : 0)
                | UInt32(Int(node.chunkBits) - ComposefsFormat.minChunkBits)
        }
        let fields = CoreFields(
            format: format, icount: icount, mode: UInt16(truncatingIfNeeded: inode.mode), size: size, u: u,
            ino: UInt32(truncatingIfNeeded: i), nlink: node.nlink)
        if node.extended { emitExtendedCore(fields, inode, into: &w) } else { emitCompactCore(fields, inode, into: &w) }
        if xattrSize > 0 { emitXattrBody(set, into: &w) }
        if node.tail > 0 {
            switch inode.data {
            case _ where inode.type == .directory: encodeGroup(direntGroups(i).last!, of: i, into: &w)
            case .symlink(let target): w.append(target)
            case .external: w.append(repeatElement(0xFF, count: ComposefsFormat.chunkEntrySize * node.chunkCount))
            case .inline(let content): w.append(content.suffix(node.tail))
            case .none: break
            }
        }
        let core = node.extended ? ComposefsFormat.extendedInodeSize : ComposefsFormat.compactInodeSize
        precondition(w.count - start == core + xattrSize + node.tail, "inode size mismatch")
    }

    /// The fields both inode cores hold.
    struct CoreFields {
        var format, icount, mode: UInt16
        var size: UInt64
        var u, ino, nlink: UInt32
    }

    private func emitExtendedCore(_ f: CoreFields, _ inode: Inode, into w: inout ByteWriter) {
        w.u16(f.format)
        w.u16(f.icount)
        w.u16(f.mode)
        w.u16(0)
        w.u64(f.size)
        w.u32(f.u)
        w.u32(f.ino)
        w.u32(inode.uid)
        w.u32(inode.gid)
        w.u64(UInt64(bitPattern: inode.mtime.seconds))
        w.u32(inode.mtime.nanoseconds)
        w.u32(f.nlink)
        w.zeros(16)
    }

    private func emitCompactCore(_ f: CoreFields, _ inode: Inode, into w: inout ByteWriter) {
        w.u16(f.format)
        w.u16(f.icount)
        w.u16(f.mode)
        w.u16(UInt16(truncatingIfNeeded: f.nlink))
        w.u32(UInt32(truncatingIfNeeded: f.size))
        w.u32(0)
        w.u32(f.u)
        w.u32(f.ino)
        w.u16(UInt16(truncatingIfNeeded: inode.uid))
        w.u16(UInt16(truncatingIfNeeded: inode.gid))
        w.u32(0)
    }

    /// The inline xattr body (§6) of set `set`: bloom filter, shared count, shared indexes,
    /// inline entries.
    func emitXattrBody(_ set: Int, into w: inout ByteWriter) {
        let positions = xattrSets.base[set]..<xattrSets.base[set + 1]
        w.u32(xattrSets.bloom[set])
        w.u8(UInt8(positions.count { xattrSets.sharedOffset($0) != nil }))
        w.zeros(7)
        for p in positions {
            if let offset = xattrSets.sharedOffset(p) { w.u32(UInt32(((inodesEnd % blockSize) + offset) / 4)) }
        }
        var scratch = Xattr(key: [], value: [])
        xattrSets.forEachSorted(set, scratch: &scratch) { i, xattr in
            if xattrSets.sharedOffset(positions.lowerBound + i) == nil { emitEntry(xattr, into: &w) }
        }
    }

    /// The dirents `group` of directory node `directory` (§9.1): records, then names.
    func encodeGroup(_ group: Range<Int>, of directory: Int, into w: inout ByteWriter) {
        var nameOffset = ComposefsFormat.direntSize * group.count
        for k in group {
            let target = direntTarget(k, of: directory)
            w.u64(nodes[target].nid)
            w.u16(UInt16(nameOffset))
            w.u8(fileType(layer.fileType(of: nodes[target].inode)))
            w.u8(0)
            nameOffset += direntName(k).count
        }
        for k in group { w.append(direntName(k)) }
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
        let (prefixIndex, prefixLength) = namePrefix(xattr.key)
        let start = w.count
        w.u8(UInt8(truncatingIfNeeded: xattr.key.count - prefixLength))
        w.u8(prefixIndex)
        w.u16(UInt16(truncatingIfNeeded: xattr.value.count))
        w.append(xattr.key[prefixLength...])
        w.append(xattr.value)
        w.pad(to: start + entrySize(xattr))
    }
}
