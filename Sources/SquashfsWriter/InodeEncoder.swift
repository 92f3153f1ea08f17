import CSquashfsShim
import ImageModel

/// Writes inodes into the inode table (reference 06 §1: the 16-byte header, then the type's
/// fields, laid out as libsquashfs's `sqfs_meta_writer_write_inode` lays them out). Everything
/// it reads is fixed before the table is started, and held in `let`s.
struct InodeEncoder {
    let layer: Image
    let plan: WritePlan
    let xattrs: XattrTableWriter
    /// Per inode id: its uid's index in the id table, and its gid's << 16.
    let owners: [UInt32]
    /// Where stubs' (empty) block lists say their data starts: the inode table's start.
    let blocksStart: UInt64
    let blockSize: Int
    /// The image, for errors.
    let path: String

    /// Writes one inode (a directory's with its listing); returns whether it was a sparse stub.
    func write(
        _ entry: EntryID, id: InodeID, listing: DirectoryListing?, dataInode: SqfsInode?, into table: MetadataWriter
    ) throws -> Bool {
        let inode = layer[inode: id]
        let xattr = xattrs.index(of: inode.xattrs)
        let extended = xattr != 0xFFFF_FFFF
        let owner = owners[id.index]
        let uid = UInt16(truncatingIfNeeded: owner), gid = UInt16(truncatingIfNeeded: owner >> 16)
        func header(_ type: SQFS_INODE_TYPE) throws(SquashfsError) {
            try table.append(UInt16(type.rawValue))
            try table.append(inode.permissions & 0o7777)
            try table.append(uid)
            try table.append(gid)
            try table.append(UInt32(clamping: max(0, inode.mtime.seconds)))
            try table.append(plan.numbers[id.index])
        }
        switch inode.type {
        case .directory:
            guard let listing else { preconditionFailure("directory inode planned before its listing") }
            let parent =
                entry == .root
                ? UInt32(plan.order.count + 1) : plan.numbers[layer.inodeID(of: layer.parent(of: entry)).index]
            let nlink = layer.nlink(of: id)
            // Basic unless it has xattrs, an index or a listing of 64 KiB or more.
            guard extended || listing.size > 0xFFFF || !listing.index.isEmpty else {
                try header(SQFS_INODE_DIR)
                try table.append(listing.startBlock)
                try table.append(nlink)
                try table.append(UInt16(listing.size))
                try table.append(listing.offset)
                try table.append(parent)
                return false
            }
            try header(SQFS_INODE_EXT_DIR)
            try table.append(nlink)
            try table.append(listing.size)
            try table.append(listing.startBlock)
            try table.append(parent)
            try table.append(UInt16(listing.index.count))
            try table.append(listing.offset)
            try table.append(xattr)
            for index in listing.index {
                try table.append(index.index)
                try table.append(index.startBlock)
                try table.append(UInt32(index.name.count - 1))
                try table.append(index.name)
            }
            return false
        case .regular:
            if let dataInode {
                try writeDataInode(dataInode, entry: entry, inode: inode, xattr: xattr, header: header, into: table)
                return false
            }
            let isStub = inode.externalObject != nil && inode.size > 0
            guard isStub || extended || inode.nlink != 1 else {
                try header(SQFS_INODE_FILE)
                try table.append(UInt32(0))  // blocks_start
                try table.append(UInt32(0xFFFF_FFFF))  // fragment_index
                try table.append(UInt32(0xFFFF_FFFF))  // fragment_offset
                try table.append(UInt32(0))  // file_size
                return false
            }
            try header(SQFS_INODE_EXT_FILE)
            try table.append(blocksStart)
            try table.append(isStub ? inode.size : 0)
            try table.append(isStub ? inode.size : 0)
            try table.append(inode.nlink)
            try table.append(UInt32(0xFFFF_FFFF))
            try table.append(UInt32(0xFFFF_FFFF))
            try table.append(xattr)
            guard isStub else { return false }
            // The block list: one zero word (a sparse block) per block of logical size.
            let blocks = (inode.size + UInt64(blockSize) - 1) / UInt64(blockSize)
            try table.appendZeros(4 * Int(blocks))
            return true
        case .symlink:
            let target = inode.symlinkTarget ?? []
            try header(extended ? SQFS_INODE_EXT_SLINK : SQFS_INODE_SLINK)
            try table.append(inode.nlink)
            try table.append(UInt32(target.count))
            try table.append(target)
        case .blockDevice, .charDevice:
            let isBlock = inode.type == .blockDevice
            try header(
                extended
                    ? (isBlock ? SQFS_INODE_EXT_BDEV : SQFS_INODE_EXT_CDEV)
                    : (isBlock ? SQFS_INODE_BDEV : SQFS_INODE_CDEV))
            try table.append(inode.nlink)
            try table.append(UInt32(truncatingIfNeeded: inode.rdev))
        case .fifo, .socket:
            let isFifo = inode.type == .fifo
            try header(
                extended
                    ? (isFifo ? SQFS_INODE_EXT_FIFO : SQFS_INODE_EXT_SOCKET)
                    : (isFifo ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET))
            try table.append(inode.nlink)
        }
        if extended { try table.append(xattr) }
        return false
    }

    /// Writes a file with data in the image, from the inode the block processor made (extended
    /// when it has xattrs or several links).
    func writeDataInode(
        _ node: SqfsInode, entry: EntryID, inode: Inode, xattr: UInt32,
        header: (SQFS_INODE_TYPE) throws(SquashfsError) -> Void,
        into table: MetadataWriter
    ) throws {
        let generic = node.pointer
        if xattr != 0xFFFF_FFFF || inode.nlink != 1 {
            try check(sqfs_inode_make_extended(generic), "extend \(layer.displayPath(of: entry))", path: path)
        }
        if generic.pointee.base.type == UInt16(SQFS_INODE_EXT_FILE.rawValue) {
            let file = generic.pointee.data.file_ext
            try header(SQFS_INODE_EXT_FILE)
            try table.append(file.blocks_start)
            try table.append(file.file_size)
            try table.append(file.sparse)
            try table.append(inode.nlink)
            try table.append(file.fragment_idx)
            try table.append(file.fragment_offset)
            try table.append(xattr)
        } else {
            let file = generic.pointee.data.file
            try header(SQFS_INODE_FILE)
            try table.append(file.blocks_start)
            try table.append(file.fragment_index)
            try table.append(file.fragment_offset)
            try table.append(file.file_size)
        }
        // The block sizes.
        try table.append(
            UnsafeRawBufferPointer(
                start: ovl_sqfs_inode_extra_const(generic), count: Int(generic.pointee.payload_bytes_used)))
    }

}
