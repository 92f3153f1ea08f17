import CSquashfsShim
import Glibc
import ImageModel

/// Reads a squashfs image back into a model (the overlay *layer*; `OverlayTranslation.untranslate`
/// turns it into the image model).
///
/// Regular files that carry `trusted.overlay.metacopy` are read as external objects of their
/// size (their data is not read); other regular files are read as inline content. xattrs come
/// back in the image's order; hard links are found by inode number and the first path in
/// depth-first order becomes primary.
public enum SquashfsReader {
    /// Summary facts of an image's superblock.
    public struct Superblock: Sendable, Codable {
        public var compression: String
        public var blockSize: Int
        public var inodes: Int
        public var bytesUsed: UInt64
        public var flags: UInt16
    }

    public static func read(path: String) throws -> (Image, Superblock) {
        let reader = try Session(path: path)
        return (try reader.readTree(), reader.summary)
    }

    /// Whether a file starts with the squashfs magic (`hsqs`).
    public static func hasMagic(_ prefix: [UInt8]) -> Bool { prefix.starts(with: [0x68, 0x73, 0x71, 0x73]) }
}

private final class Session {
    let path: String
    let file: SqfsFile
    var superblock = sqfs_super_t()
    let compressor: SqfsCompressor
    let ids: SqfsObject
    let dirReader: SqfsObject
    let xattrReader: SqfsObject?
    let dataReader: SqfsObject

    init(path: String) throws {
        self.path = path
        file = try SqfsFile(path: path, flags: SQFS_FILE_OPEN_READ_ONLY)
        try check(sqfs_super_read(&superblock, file.pointer), "read the superblock (not a squashfs image?)", path: path)
        compressor = try SqfsCompressor(id: SQFS_COMPRESSOR(UInt32(superblock.compression_id)), blockSize: Int(superblock.block_size),
                                        level: nil, raw: false, forReading: true, path: path)
        if superblock.flags & UInt16(SQFS_FLAG_COMPRESSOR_OPTIONS.rawValue) != 0 {
            try check(ovl_sqfs_compressor_read_options(compressor.pointer, file.pointer), "read compressor options", path: path)
        }
        guard let ids = sqfs_id_table_create(0) else { throw SquashfsError(path: path, operation: "create the id table", code: -1) }
        self.ids = SqfsObject(ids)
        try check(sqfs_id_table_read(ids, file.pointer, &superblock, compressor.pointer), "read the id table", path: path)
        guard let dirs = sqfs_dir_reader_create(&superblock, compressor.pointer, file.pointer, 0) else {
            throw SquashfsError(path: path, operation: "create the directory reader", code: -1)
        }
        dirReader = SqfsObject(dirs)
        if superblock.flags & UInt16(SQFS_FLAG_NO_XATTRS.rawValue) == 0, superblock.xattr_id_table_start != UInt64.max {
            guard let xr = sqfs_xattr_reader_create(0) else {
                throw SquashfsError(path: path, operation: "create the xattr reader", code: -1)
            }
            xattrReader = SqfsObject(xr)
            try check(sqfs_xattr_reader_load(xr, &superblock, file.pointer, compressor.pointer), "read the xattr table", path: path)
        } else {
            xattrReader = nil
        }
        guard let data = sqfs_data_reader_create(file.pointer, Int(superblock.block_size), compressor.pointer, 0) else {
            throw SquashfsError(path: path, operation: "create the data reader", code: -1)
        }
        dataReader = SqfsObject(data)
        try check(sqfs_data_reader_load_fragment_table(data, &superblock), "read the fragment table", path: path)
    }

    var summary: SquashfsReader.Superblock {
        SquashfsReader.Superblock(
            compression: SqfsCompressor.name(SQFS_COMPRESSOR(UInt32(superblock.compression_id))),
            blockSize: Int(superblock.block_size), inodes: Int(superblock.inode_count),
            bytesUsed: superblock.bytes_used, flags: superblock.flags)
    }

    func readTree() throws -> Image {
        var tree: UnsafeMutablePointer<sqfs_tree_node_t>?
        try check(sqfs_dir_reader_get_full_hierarchy(dirReader.pointer, ids.pointer, nil, 0, &tree), "read the directory tree", path: path)
        guard let root = tree else { throw SquashfsError(path: path, operation: "read the directory tree", code: -5) }
        defer { sqfs_dir_tree_destroy(root) }
        let (rootInode, rootXattrs) = try inode(of: root)
        var builder = try ImageBuilder(root: rootInode)
        builder.setXattrs(rootXattrs, of: InodeID(0))
        var seen: [UInt32: InodeID] = [:]
        // (node, parent entry) pairs, depth-first, children in on-disk (sorted) order.
        var stack: [(UnsafeMutablePointer<sqfs_tree_node_t>, EntryID)] = []
        func pushChildren(of node: UnsafeMutablePointer<sqfs_tree_node_t>, as entry: EntryID) {
            var children: [UnsafeMutablePointer<sqfs_tree_node_t>] = []
            var child = node.pointee.children
            while let current = child {
                children.append(current)
                child = current.pointee.next
            }
            for current in children.reversed() { stack.append((current, entry)) }
        }
        pushChildren(of: root, as: .root)
        while let (node, parent) = stack.popLast() {
            let cName = ovl_sqfs_tree_node_name(node)!
            let name = UnsafeRawBufferPointer(start: cName, count: strlen(cName)).map { $0 }
            let number = node.pointee.inode.pointee.base.inode_number
            let entry: EntryID
            if let existing = seen[number] {
                entry = try builder.addHardLink(name: name, in: parent, to: existing)
            } else {
                var (built, xattrs) = try inode(of: node)
                built.xattrs = builder.internXattrs(xattrs)
                entry = try builder.add(name: name, in: parent, inode: built)
                seen[number] = builder.inodeID(of: entry)
            }
            if builder.inode(of: entry).type == .directory { pushChildren(of: node, as: entry) }
        }
        return try builder.build()
    }

    /// The inode of a tree node (xattrs not yet interned) and its xattrs.
    private func inode(of node: UnsafeMutablePointer<sqfs_tree_node_t>) throws -> (Inode, [Xattr]) {
        let generic = node.pointee.inode!
        let base = generic.pointee.base
        let xattrs = try readXattrs(generic)
        var inode = Inode(type: .regular, permissions: base.mode & 0o7777, uid: node.pointee.uid, gid: node.pointee.gid,
                          nlink: 1, mtime: Timestamp(seconds: Int64(base.mod_time)))
        let hasMetacopy = xattrs.contains { $0.key == Array("trusted.overlay.metacopy".utf8) }
        switch SQFS_INODE_TYPE(UInt32(base.type)) {
        case SQFS_INODE_DIR:
            inode.type = .directory
            inode.size = UInt64(generic.pointee.data.dir.size)
        case SQFS_INODE_EXT_DIR:
            inode.type = .directory
            inode.size = UInt64(generic.pointee.data.dir_ext.size)
        case SQFS_INODE_FILE, SQFS_INODE_EXT_FILE:
            var size: UInt64 = 0
            try check(sqfs_inode_get_file_size(generic, &size), "read a file size", path: path)
            inode.size = size
            if base.type == UInt16(SQFS_INODE_EXT_FILE.rawValue) { inode.nlink = generic.pointee.data.file_ext.nlink }
            if hasMetacopy {
                inode.data = .external(ExternalObject(payload: nil, digest: nil))
            } else {
                inode.data = .inline(try readContent(generic, size: size))
            }
        case SQFS_INODE_SLINK, SQFS_INODE_EXT_SLINK:
            inode.type = .symlink
            let count = Int(generic.pointee.data.slink.target_size)
            let extra = ovl_sqfs_inode_extra_const(generic)!
            let target = (0..<count).map { extra[$0] }
            inode.nlink = generic.pointee.data.slink.nlink
            inode.size = UInt64(count)
            inode.data = .symlink(target)
        case SQFS_INODE_BDEV, SQFS_INODE_EXT_BDEV, SQFS_INODE_CDEV, SQFS_INODE_EXT_CDEV:
            let isBlock = base.type == UInt16(SQFS_INODE_BDEV.rawValue) || base.type == UInt16(SQFS_INODE_EXT_BDEV.rawValue)
            inode.type = isBlock ? .blockDevice : .charDevice
            inode.nlink = generic.pointee.data.dev.nlink
            inode.rdev = UInt64(generic.pointee.data.dev.devno)
        case SQFS_INODE_FIFO, SQFS_INODE_EXT_FIFO:
            inode.type = .fifo
            inode.nlink = generic.pointee.data.ipc.nlink
        case SQFS_INODE_SOCKET, SQFS_INODE_EXT_SOCKET:
            inode.type = .socket
            inode.nlink = generic.pointee.data.ipc.nlink
        default:
            throw SquashfsError(path: path, operation: "read inode type \(base.type)", code: -5)
        }
        return (inode, xattrs)
    }

    private func readXattrs(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>) throws -> [Xattr] {
        guard let xattrReader else { return [] }
        var index: UInt32 = 0xFFFF_FFFF
        try check(sqfs_inode_get_xattr_index(inode, &index), "read an xattr index", path: path)
        guard index != 0xFFFF_FFFF else { return [] }
        var desc = sqfs_xattr_id_t()
        try check(sqfs_xattr_reader_get_desc(xattrReader.pointer, index, &desc), "read xattr set \(index)", path: path)
        try check(sqfs_xattr_reader_seek_kv(xattrReader.pointer, &desc), "seek to xattr set \(index)", path: path)
        var xattrs: [Xattr] = []
        for _ in 0..<desc.count {
            var key: UnsafeMutablePointer<sqfs_xattr_entry_t>?
            try check(sqfs_xattr_reader_read_key(xattrReader.pointer, &key), "read an xattr key", path: path)
            defer { ovl_sqfs_free(key) }
            var value: UnsafeMutablePointer<sqfs_xattr_value_t>?
            try check(sqfs_xattr_reader_read_value(xattrReader.pointer, key, &value), "read an xattr value", path: path)
            defer { ovl_sqfs_free(value) }
            let keyBytes = ovl_sqfs_xattr_key(key!)!
            let keyLength = (0...).first { keyBytes[$0] == 0 }!
            let valueBytes = ovl_sqfs_xattr_value(value!)!
            xattrs.append(Xattr(key: (0..<keyLength).map { keyBytes[$0] },
                                value: (0..<Int(value!.pointee.size)).map { valueBytes[$0] }))
        }
        return xattrs
    }

    private func readContent(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>, size: UInt64) throws -> [UInt8] {
        guard size > 0 else { return [] }
        guard size <= 1 << 30 else { throw SquashfsError(path: path, operation: "read a \(size)-byte inline file", code: -7) }
        var content = [UInt8](repeating: 0, count: Int(size))
        let read = content.withUnsafeMutableBytes {
            sqfs_data_reader_read(dataReader.pointer, inode, 0, $0.baseAddress, UInt32($0.count))
        }
        try check(read, "read file data", path: path)
        return content
    }
}
