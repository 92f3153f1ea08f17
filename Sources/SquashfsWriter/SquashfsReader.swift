import CSquashfsShim
import Glibc
import ImageModel
import LinuxSys

import struct SystemPackage.FileDescriptor

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
        let input = try InputFile(path: path)
        guard input.isRegular else { throw SquashfsError(path: path, operation: "read (not a regular file)", code: -2) }
        return try read(input)
    }

    /// Reads the image held in `size` bytes (default: all) of `input` from `offset` on (a whole
    /// file, or a partition of a disk image).
    ///
    /// Bounded by the input: the walk is iterative (depth costs heap, not stack), a directory
    /// met twice is refused (a loop), and the entries read are capped at
    /// ``maxEntries(forImageBytes:)``, so listings shared by many directories cannot expand a
    /// small image into millions of paths.
    public static func read(_ input: InputFile, offset: UInt64 = 0, size: UInt64? = nil) throws -> (Image, Superblock) {
        let reader = try Session(
            fd: input.descriptor.rawValue, offset: offset, size: size ?? input.size, path: input.name)
        return (try reader.readTree(), reader.summary)
    }

    /// The most entries (paths) read from an image of `bytes` bytes: one per byte, and never
    /// less than 2^20. A real squashfs spends tens of bytes per entry even compressed.
    public static func maxEntries(forImageBytes bytes: UInt64) -> Int { Int(clamping: max(bytes, 1 << 20)) }

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

    let maxEntries: Int
    /// Directory entries loaded so far (against `maxEntries`).
    private var loaded = 0
    /// xattr sets already read, by index (sets are shared between inodes).
    private var xattrSets: [UInt32: [Xattr]] = [:]

    init(fd: Int32, offset: UInt64, size: UInt64, path: String) throws {
        self.path = path
        file = try SqfsFile(fd: fd, offset: offset, size: size, path: path)
        maxEntries = SquashfsReader.maxEntries(forImageBytes: size)
        try check(sqfs_super_read(&superblock, file.pointer), "read the superblock (not a squashfs image?)", path: path)
        compressor = try SqfsCompressor(
            id: SQFS_COMPRESSOR(UInt32(superblock.compression_id)), blockSize: Int(superblock.block_size),
            level: nil, raw: false, forReading: true, path: path)
        if superblock.flags & UInt16(SQFS_FLAG_COMPRESSOR_OPTIONS.rawValue) != 0 {
            try check(
                ovl_sqfs_compressor_read_options(compressor.pointer, file.pointer), "read compressor options",
                path: path)
        }
        guard let ids = sqfs_id_table_create(0) else {
            throw SquashfsError(path: path, operation: "create the id table", code: -1)
        }
        self.ids = SqfsObject(ids)
        try check(
            sqfs_id_table_read(ids, file.pointer, &superblock, compressor.pointer), "read the id table", path: path)
        guard let dirs = sqfs_dir_reader_create(&superblock, compressor.pointer, file.pointer, 0) else {
            throw SquashfsError(path: path, operation: "create the directory reader", code: -1)
        }
        dirReader = SqfsObject(dirs)
        if superblock.flags & UInt16(SQFS_FLAG_NO_XATTRS.rawValue) == 0, superblock.xattr_id_table_start != UInt64.max {
            guard let xr = sqfs_xattr_reader_create(0) else {
                throw SquashfsError(path: path, operation: "create the xattr reader", code: -1)
            }
            xattrReader = SqfsObject(xr)
            try check(
                sqfs_xattr_reader_load(xr, &superblock, file.pointer, compressor.pointer), "read the xattr table",
                path: path)
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

    /// Reads the tree depth-first, pre-order, children in on-disk (sorted) order, so the first
    /// path met of a hard-linked inode becomes its primary. Each directory's listing is read
    /// whole when the walk enters it; the stack holds one listing per level, on the heap.
    func readTree() throws -> Image {
        var rootPointer: UnsafeMutablePointer<sqfs_inode_generic_t>?
        try check(sqfs_dir_reader_get_root_inode(dirReader.pointer, &rootPointer), "read the root inode", path: path)
        let root = OwnedInode(rootPointer!)
        let (rootInode, rootXattrs) = try inode(of: root.pointer)
        guard rootInode.type == .directory else {
            throw SquashfsError(path: path, operation: "read the root (not a directory)", code: -5)
        }
        var builder = try ImageBuilder(root: rootInode)
        builder.setXattrs(rootXattrs, of: InodeID(0))
        var seen: [UInt32: InodeID] = [root.pointer.pointee.base.inode_number: InodeID(0)]
        var stack: [(entry: EntryID, children: [(name: [UInt8], inode: OwnedInode)], next: Int)] = [
            (.root, try listing(of: root), 0)
        ]
        while !stack.isEmpty {
            let top = stack.count - 1
            guard stack[top].next < stack[top].children.count else {
                stack.removeLast()
                continue
            }
            let (name, child) = stack[top].children[stack[top].next]
            stack[top].children[stack[top].next].inode = OwnedInode(nil)
            stack[top].next += 1
            let number = child.pointer.pointee.base.inode_number
            let isDirectory = [SQFS_INODE_DIR, SQFS_INODE_EXT_DIR].contains(
                SQFS_INODE_TYPE(UInt32(child.pointer.pointee.base.type)))
            if let existing = seen[number] {
                guard !isDirectory else {
                    throw SquashfsError(
                        path: path,
                        operation:
                            "read directory inode \(number) a second time (a directory loop or a hard-linked directory)",
                        code: -5)
                }
                try builder.addHardLink(name: name, in: stack[top].entry, to: existing)
                continue
            }
            var (built, xattrs) = try inode(of: child.pointer)
            built.xattrs = builder.internXattrs(xattrs)
            let entry = try builder.add(name: name, in: stack[top].entry, inode: built)
            seen[number] = builder.inodeID(of: entry)
            if isDirectory { stack.append((entry, try listing(of: child), 0)) }
        }
        return try builder.build()
    }

    /// A directory's entries with their inodes, in on-disk order.
    private func listing(of directory: OwnedInode) throws -> [(name: [UInt8], inode: OwnedInode)] {
        try check(sqfs_dir_reader_open_dir(dirReader.pointer, directory.pointer, 0), "open a directory", path: path)
        var children: [(name: [UInt8], inode: OwnedInode)] = []
        while true {
            var entry: UnsafeMutablePointer<sqfs_dir_entry_t>?
            let rc = sqfs_dir_reader_read(dirReader.pointer, &entry)
            if rc > 0 { break }
            try check(rc, "read a directory entry", path: path)
            defer { ovl_sqfs_free(entry) }
            let bytes = ovl_sqfs_dir_entry_name(entry!)!
            let name = (0..<Int(entry!.pointee.size) + 1).map { bytes[$0] }
            var inode: UnsafeMutablePointer<sqfs_inode_generic_t>?
            try check(
                sqfs_dir_reader_get_inode(dirReader.pointer, &inode), "read the inode of a directory entry", path: path)
            children.append((name, OwnedInode(inode!)))
            // Listings are charged as they are loaded (each is held whole while its subtree is
            // walked), so listings shared by many directories cannot expand a small image.
            loaded += 1
            guard loaded <= maxEntries else {
                throw SquashfsError(
                    path: path,
                    operation:
                        "read more than \(maxEntries) directory entries from a \(file.size)-byte image (directories sharing listings?)",
                    code: -5)
            }
        }
        return children
    }

    /// An inode (xattrs not yet interned) and its xattrs.
    private func inode(of generic: UnsafeMutablePointer<sqfs_inode_generic_t>) throws -> (Inode, [Xattr]) {
        let base = generic.pointee.base
        let xattrs = try readXattrs(generic)
        var uid: UInt32 = 0, gid: UInt32 = 0
        try check(
            sqfs_id_table_index_to_id(ids.pointer, base.uid_idx, &uid), "look up uid index \(base.uid_idx)", path: path)
        try check(
            sqfs_id_table_index_to_id(ids.pointer, base.gid_idx, &gid), "look up gid index \(base.gid_idx)", path: path)
        var inode = Inode(
            type: .regular, permissions: base.mode & 0o7777, uid: uid, gid: gid,
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
            let isBlock =
                base.type == UInt16(SQFS_INODE_BDEV.rawValue) || base.type == UInt16(SQFS_INODE_EXT_BDEV.rawValue)
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

    /// An inode's xattr set, read once per set index and charged against the per-inode budget
    /// as it is read (a crafted set cannot make each inode copy megabytes).
    private func readXattrs(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>) throws -> [Xattr] {
        guard let xattrReader else { return [] }
        var index: UInt32 = 0xFFFF_FFFF
        try check(sqfs_inode_get_xattr_index(inode, &index), "read an xattr index", path: path)
        guard index != 0xFFFF_FFFF else { return [] }
        if let cached = xattrSets[index] { return cached }
        var desc = sqfs_xattr_id_t()
        try check(sqfs_xattr_reader_get_desc(xattrReader.pointer, index, &desc), "read xattr set \(index)", path: path)
        guard desc.size <= UInt32(Limits.maxStoredXattrBudget) * 2,
            desc.count <= UInt32(Limits.maxStoredXattrBudget / Limits.xattrEntryOverhead)
        else {
            throw SquashfsError(
                path: path,
                operation:
                    "read xattr set \(index) of \(desc.count) entries, \(desc.size) bytes (more than an inode may carry)",
                code: -5)
        }
        try check(sqfs_xattr_reader_seek_kv(xattrReader.pointer, &desc), "seek to xattr set \(index)", path: path)
        var xattrs: [Xattr] = []
        var budget = Limits.xattrHeaderOverhead
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
            let xattr = Xattr(
                key: (0..<keyLength).map { keyBytes[$0] }, value: (0..<Int(value!.pointee.size)).map { valueBytes[$0] })
            budget += xattr.budgetCost
            guard budget <= Limits.maxStoredXattrBudget else {
                throw SquashfsError(
                    path: path,
                    operation:
                        "read xattr set \(index): more than \(Limits.maxStoredXattrBudget) bytes (twice the per-inode maximum)",
                    code: -5)
            }
            xattrs.append(xattr)
        }
        xattrSets[index] = xattrs
        return xattrs
    }

    /// The content of a plain (not metacopy) file: ovlcfs images hold such files only for
    /// inline model content, so more than `Limits.maxInlineContentLength` bytes is refused
    /// before anything is allocated (a sparse 1 GiB file would cost 1 GiB).
    private func readContent(_ inode: UnsafeMutablePointer<sqfs_inode_generic_t>, size: UInt64) throws -> [UInt8] {
        guard size > 0 else { return [] }
        guard size <= UInt64(Limits.maxInlineContentLength) else {
            throw SquashfsError(
                path: path,
                operation:
                    "read a \(size)-byte file without trusted.overlay.metacopy (an ovlcfs image holds at most \(Limits.maxInlineContentLength) bytes of file content inline)",
                code: -7)
        }
        var content = [UInt8](repeating: 0, count: Int(size))
        let read = content.withUnsafeMutableBytes {
            sqfs_data_reader_read(dataReader.pointer, inode, 0, $0.baseAddress, UInt32($0.count))
        }
        try check(read, "read file data", path: path)
        return content
    }
}

/// A libsquashfs inode owned by Swift (freed with `sqfs_free`); nil once handed on.
private final class OwnedInode {
    let pointer: UnsafeMutablePointer<sqfs_inode_generic_t>!
    init(_ pointer: UnsafeMutablePointer<sqfs_inode_generic_t>?) { self.pointer = pointer }
    deinit { ovl_sqfs_free(pointer) }
}
