import CSquashfsShim
import ImageModel
import LinuxSys

/// What `SquashfsWriter.write` produced.
public struct SquashfsWriteResult: Sendable, Codable {
    /// Size of the image file (padded to 4 KiB).
    public var bytes: UInt64
    public var inodes: Int
    public var entries: Int
    /// Regular files written as sparse stubs (external objects).
    public var stubs: Int

    public init(bytes: UInt64, inodes: Int, entries: Int, stubs: Int) {
        (self.bytes, self.inodes, self.entries, self.stubs) = (bytes, inodes, entries, stubs)
    }
}

/// Writes an overlay layer (the output of `OverlayTranslation.translate`) as a squashfs image
/// with libsquashfs (reference 06 §2).
///
/// Regular files with an external object become extended file inodes of the object's size
/// whose block list is all sparse — no zero byte goes through the data path. Inline files get
/// real data (fragments). Inodes are written in post-order and numbered in that order; xattr
/// sets are deduplicated; the output is a function of the model and options only, and goes to
/// a temporary file that is renamed into place when complete.
public enum SquashfsWriter {
    /// Writes `layer` to `destination`. Check the model with ``SquashfsLosses`` first to
    /// learn (or refuse) what the image will not hold.
    @discardableResult
    public static func write(_ layer: Image, to destination: String, options: SquashfsOptions = SquashfsOptions())
        throws -> SquashfsWriteResult
    {
        let temporary = try TemporarySibling(destination: destination)
        let result = try write(layer, into: temporary, options: options)
        try temporary.commit()
        return result
    }

    /// Writes `layer` into a temporary file that the caller commits (or hands on, as the data
    /// partition of a disk image).
    @discardableResult
    public static func write(
        _ layer: Image, into temporary: TemporarySibling, options: SquashfsOptions = SquashfsOptions()
    ) throws -> SquashfsWriteResult {
        try options.validate()
        try SquashfsLimits.check(layer, blockSize: options.blockSize)
        let stubs: Int
        do {
            let session = try Session(
                layer: layer, path: temporary.path, displayPath: temporary.destination, options: options)
            stubs = try session.run()
        }
        return SquashfsWriteResult(
            bytes: try temporary.size(), inodes: layer.inodeCount, entries: layer.entryCount, stubs: stubs)
    }
}

/// Strict mode refused a model that the image would not hold completely.
public struct SquashfsLossError: Error, Sendable, CustomStringConvertible {
    public var losses: SquashfsLosses
    public init(losses: SquashfsLosses) { self.losses = losses }
    public var description: String {
        "squashfs cannot hold everything in this model (--strict):\n"
            + losses.lines.map { "  " + $0 }.joined(separator: "\n")
    }
}

/// One image being written: the libsquashfs objects and the walk over the layer.
private final class Session {
    let layer: Image
    let options: SquashfsOptions
    let path: String
    let file: SqfsFile
    let real: SqfsCompressor?
    let raw: SqfsCompressor
    var superblock = sqfs_super_t()
    var numbers: [UInt32]
    /// Inodes in write order (each inode once, at its first entry).
    var order: [EntryID] = []
    /// What to write, in order: inodes, and each directory's listing after its children's inodes.
    var steps: [Step] = []
    var refs: [UInt64]
    /// Each directory's listing from when it is written until its inode is.
    var listings: [InodeID: DirectoryListing] = [:]
    let ids: SqfsObject
    let xattrTable: XattrTableWriter

    init(layer: Image, path temporaryPath: String, displayPath: String, options: SquashfsOptions) throws {
        self.layer = layer
        self.options = options
        self.path = displayPath
        file = try SqfsFile(path: temporaryPath, flags: SQFS_FILE_OPEN_OVERWRITE)
        let id = options.compression.id
        real =
            options.compression == .none
            ? nil
            : try SqfsCompressor(
                id: id, blockSize: options.blockSize, level: options.effectiveLevel, raw: false, path: displayPath)
        raw = try SqfsCompressor(id: id, blockSize: options.blockSize, level: nil, raw: true, path: displayPath)
        numbers = [UInt32](repeating: 0, count: layer.inodeCount)
        refs = [UInt64](repeating: 0, count: layer.inodeCount)
        xattrTable = XattrTableWriter(layer.xattrTable)
        guard let ids = sqfs_id_table_create(0) else {
            throw SquashfsError(path: displayPath, operation: "create the id table", code: -1)
        }
        self.ids = SqfsObject(ids)
    }

    func compressor(for table: SquashfsOptions.Table) -> UnsafeMutablePointer<sqfs_compressor_t> {
        options.isRaw(table) ? raw.pointer : real!.pointer
    }

    /// Writes the whole image; returns the number of stubs.
    func run() throws -> Int {
        planOrder()
        try check(
            sqfs_super_init(&superblock, options.blockSize, options.modificationTime, options.compression.id),
            "initialise the superblock", path: path)
        try check(sqfs_super_write(&superblock, file.pointer), "write the superblock", path: path)
        if let real {
            let written = ovl_sqfs_compressor_write_options(real.pointer, file.pointer)
            try check(written, "write compressor options", path: path)
            if written > 0 { superblock.flags |= UInt16(SQFS_FLAG_COMPRESSOR_OPTIONS.rawValue) }
        }

        // File data: only inline files have any. Must precede the inode table.
        guard let fragments = sqfs_frag_table_create(0) else {
            throw SquashfsError(path: path, operation: "create the fragment table", code: -1)
        }
        let fragmentTable = SqfsObject(fragments)
        let dataInodes = try writeData(fragments: fragments)

        superblock.inode_table_start = file.size
        guard let inodeMeta = sqfs_meta_writer_create(file.pointer, compressor(for: .inodes), 0),
            let dirMeta = sqfs_meta_writer_create(
                file.pointer, compressor(for: .directories),
                UInt32(SQFS_META_WRITER_KEEP_IN_MEMORY.rawValue))
        else {
            throw SquashfsError(path: path, operation: "create the metadata writers", code: -1)
        }
        let inodeMetaOwner = SqfsObject(inodeMeta), dirMetaOwner = SqfsObject(dirMeta)
        let directories = DirectoryTableWriter(meta: dirMeta, policy: options.directoryIndex, path: path)
        var stubs = 0
        for step in steps {
            switch step {
            case .inode(let entry):
                let id = layer.inodeID(of: entry)
                var block: UInt64 = 0, offset: UInt32 = 0
                sqfs_meta_writer_get_position(inodeMeta, &block, &offset)
                refs[id.index] = block << 16 | UInt64(offset)
                if try writeInode(entry, id: id, meta: inodeMeta, dataInode: dataInodes[id]) { stubs += 1 }
            case .listing(let directory):
                listings[layer.inodeID(of: directory)] = try directories.write(
                    layer.children(of: directory).map { child in
                        let childID = layer.inodeID(of: child)
                        return DirectoryChild(
                            name: layer.name(of: child), inodeNumber: numbers[childID.index],
                            inodeRef: refs[childID.index], type: Self.listingType(layer.fileType(of: childID)))
                    })
            }
        }
        try check(sqfs_meta_writer_flush(inodeMeta), "flush the inode table", path: path)
        try check(sqfs_meta_writer_flush(dirMeta), "flush the directory table", path: path)
        superblock.root_inode_ref = refs[layer.inodeID(of: .root).index]
        superblock.directory_table_start = file.size
        try check(sqfs_meta_write_write_to_file(dirMeta), "write the directory table", path: path)
        superblock.inode_count = UInt32(order.count)
        try check(
            sqfs_frag_table_write(fragments, file.pointer, &superblock, compressor(for: .inodes)),
            "write the fragment table", path: path)
        try check(
            sqfs_id_table_write(ids.pointer, file.pointer, &superblock, compressor(for: .ids)), "write the id table",
            path: path)
        try xattrTable.write(to: file, superblock: &superblock, compressor: compressor(for: .xattrs), path: path)
        setUncompressedFlags()
        superblock.bytes_used = file.size
        try check(sqfs_super_write(&superblock, file.pointer), "rewrite the superblock", path: path)
        let padding = Int((4096 - file.size % 4096) % 4096)
        if padding > 0 { try file.write(at: file.size, [UInt8](repeating: 0, count: padding)) }
        withExtendedLifetime((fragmentTable, inodeMetaOwner, dirMetaOwner)) {}
        return stubs
    }

    enum Step {
        case inode(EntryID)
        case listing(EntryID)
    }

    /// Plans `steps` and numbers the inodes in write order (each at its first path; the root,
    /// written last, is N). A directory's listing follows its children's inodes and precedes
    /// the directory's own inode.
    func planOrder() {
        switch options.inodeOrder {
        case .directories: planDirectoryGroups()
        case .name: planPostOrder(subdirectoriesFirst: false)
        case .grouped: planPostOrder(subdirectoriesFirst: true)
        }
        emit(.root)
    }

    /// Appends the inode of `entry` unless its inode (a hard link's) is already planned.
    private func emit(_ entry: EntryID) {
        let id = layer.inodeID(of: entry)
        guard numbers[id.index] == 0 else { return }
        order.append(entry)
        numbers[id.index] = UInt32(order.count)
        steps.append(.inode(entry))
    }

    private func isDirectory(_ entry: EntryID) -> Bool { layer.fileType(of: entry) == .directory }

    /// Inode order `directories`: per directory, its subdirectories' contents first, then all
    /// its children together in name order, then its listing.
    private func planDirectoryGroups() {
        var stack: [(EntryID, Bool)] = [(.root, false)]
        while let (directory, expanded) = stack.popLast() {
            let children = layer.children(of: directory)
            if expanded {
                for child in children { emit(child) }
                steps.append(.listing(directory))
            } else {
                stack.append((directory, true))
                for child in children.reversed() where isDirectory(child) { stack.append((child, false)) }
            }
        }
    }

    /// Inode orders `name` (children in name order, each subtree before the next sibling) and
    /// `grouped` (a directory's subdirectory subtrees first, then its other entries); each
    /// directory's listing and inode come after its subtree. The root is left to the caller.
    private func planPostOrder(subdirectoriesFirst: Bool) {
        var stack: [(EntryID, Bool)] = [(.root, false)]
        while let (entry, expanded) = stack.popLast() {
            guard isDirectory(entry) else {
                emit(entry)
                continue
            }
            if expanded {
                steps.append(.listing(entry))
                if entry != .root { emit(entry) }
                continue
            }
            stack.append((entry, true))
            let children = layer.children(of: entry)
            if subdirectoriesFirst {
                // Popped in reverse: subdirectories (with their subtrees) first, then the rest.
                for child in children.reversed() where !isDirectory(child) { stack.append((child, false)) }
                for child in children.reversed() where isDirectory(child) { stack.append((child, false)) }
            } else {
                for child in children.reversed() { stack.append((child, false)) }
            }
        }
    }

    /// The basic inode type a directory entry records.
    static func listingType(_ type: FileType) -> UInt16 {
        let type: SQFS_INODE_TYPE =
            switch type {
            case .directory: SQFS_INODE_DIR
            case .regular: SQFS_INODE_FILE
            case .symlink: SQFS_INODE_SLINK
            case .blockDevice: SQFS_INODE_BDEV
            case .charDevice: SQFS_INODE_CDEV
            case .fifo: SQFS_INODE_FIFO
            case .socket: SQFS_INODE_SOCKET
            }
        return UInt16(type.rawValue)
    }

    /// Feeds every non-empty inline file through a block processor (fragments).
    func writeData(fragments: OpaquePointer) throws -> [InodeID: SqfsInode] {
        var inodes: [InodeID: SqfsInode] = [:]
        let inline = order.filter { layer.inode(of: $0).inlineContent.map { !$0.isEmpty } ?? false }
        guard !inline.isEmpty else { return inodes }
        guard let blockWriter = sqfs_block_writer_create(file.pointer, 4096, 0) else {
            throw SquashfsError(path: path, operation: "create the block writer", code: -1)
        }
        let writerOwner = SqfsObject(blockWriter)
        guard
            let processor = sqfs_block_processor_create(
                options.blockSize, compressor(for: .data), 1, 16, blockWriter, fragments)
        else {
            throw SquashfsError(path: path, operation: "create the block processor", code: -1)
        }
        let processorOwner = SqfsObject(processor)
        // The processor keeps the address of each file's inode pointer and replaces the inode
        // when it grows it, until `finish`: the slots must outlive the processor's work.
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<sqfs_inode_generic_t>?>.allocate(capacity: inline.count)
        slots.initialize(repeating: nil, count: inline.count)
        defer {
            for index in 0..<inline.count where inodes[layer.inodeID(of: inline[index])] == nil {
                ovl_sqfs_free(slots[index])
            }
            slots.deallocate()
        }
        for (index, entry) in inline.enumerated() {
            let content = layer.inode(of: entry).inlineContent!
            try check(
                sqfs_block_processor_begin_file(processor, slots + index, nil, 0),
                "add \(layer.displayPath(of: entry))", path: path)
            try check(
                content.withUnsafeBytes { sqfs_block_processor_append(processor, $0.baseAddress, $0.count) },
                "write data of \(layer.displayPath(of: entry))", path: path)
            try check(sqfs_block_processor_end_file(processor), "finish \(layer.displayPath(of: entry))", path: path)
        }
        try check(sqfs_block_processor_finish(processor), "flush file data", path: path)
        for (index, entry) in inline.enumerated() {
            if let inode = slots[index] { inodes[layer.inodeID(of: entry)] = SqfsInode(inode) }
        }
        withExtendedLifetime((writerOwner, processorOwner)) {}
        return inodes
    }

    /// The squashfs xattr index of an inode's xattr set.
    func xattrIndex(of inode: Inode) -> UInt32 {
        xattrTable.index(of: inode.xattrs)
    }

    /// Writes one inode; returns whether it was a sparse stub.
    func writeInode(_ entry: EntryID, id: InodeID, meta: OpaquePointer, dataInode: SqfsInode?) throws -> Bool {
        let inode = layer[inode: id]
        let xattr = xattrIndex(of: inode)
        let extended = xattr != 0xFFFF_FFFF
        let node: SqfsInode
        var stubBlocks = 0
        switch inode.type {
        case .directory:
            guard let listing = listings.removeValue(forKey: id) else {
                preconditionFailure("directory inode planned before its listing")
            }
            let parentNumber =
                entry == .root ? UInt32(order.count + 1) : numbers[layer.inodeID(of: layer.parent(of: entry)).index]
            node = try directoryInode(listing, nlink: layer.nlink(of: id), parent: parentNumber, xattr: xattr)
        case .regular:
            if let dataInode {
                node = dataInode
                if extended || inode.nlink != 1 {
                    try check(
                        sqfs_inode_make_extended(node.pointer), "extend \(layer.displayPath(of: entry))", path: path)
                    node.pointer.pointee.data.file_ext.nlink = inode.nlink
                }
            } else {
                node = try SqfsInode(payloadBytes: 0, path: path)
                let isStub = inode.externalObject != nil && inode.size > 0
                if isStub || extended || inode.nlink != 1 {
                    node.pointer.pointee.base.type = UInt16(SQFS_INODE_EXT_FILE.rawValue)
                    node.pointer.pointee.data.file_ext = sqfs_inode_file_ext_t(
                        blocks_start: superblock.inode_table_start, file_size: isStub ? inode.size : 0,
                        sparse: isStub ? inode.size : 0, nlink: inode.nlink, fragment_idx: 0xFFFF_FFFF,
                        fragment_offset: 0xFFFF_FFFF, xattr_idx: 0xFFFF_FFFF)
                    if isStub {
                        stubBlocks = Int((inode.size + UInt64(options.blockSize) - 1) / UInt64(options.blockSize))
                    }
                } else {
                    node.pointer.pointee.base.type = UInt16(SQFS_INODE_FILE.rawValue)
                    node.pointer.pointee.data.file = sqfs_inode_file_t(
                        blocks_start: 0, fragment_index: 0xFFFF_FFFF, fragment_offset: 0xFFFF_FFFF, file_size: 0)
                }
            }
        case .symlink:
            let target = inode.symlinkTarget ?? []
            node = try SqfsInode(payloadBytes: target.count, path: path)
            node.pointer.pointee.base.type = UInt16((extended ? SQFS_INODE_EXT_SLINK : SQFS_INODE_SLINK).rawValue)
            node.pointer.pointee.data.slink_ext.nlink = inode.nlink
            node.pointer.pointee.data.slink_ext.target_size = UInt32(target.count)
            node.setPayload(target)
        case .blockDevice, .charDevice:
            node = try SqfsInode(payloadBytes: 0, path: path)
            let type =
                inode.type == .blockDevice
                ? (extended ? SQFS_INODE_EXT_BDEV : SQFS_INODE_BDEV)
                : (extended ? SQFS_INODE_EXT_CDEV : SQFS_INODE_CDEV)
            node.pointer.pointee.base.type = UInt16(type.rawValue)
            node.pointer.pointee.data.dev_ext.nlink = inode.nlink
            node.pointer.pointee.data.dev_ext.devno = UInt32(truncatingIfNeeded: inode.rdev)
        case .fifo, .socket:
            node = try SqfsInode(payloadBytes: 0, path: path)
            let type =
                inode.type == .fifo
                ? (extended ? SQFS_INODE_EXT_FIFO : SQFS_INODE_FIFO)
                : (extended ? SQFS_INODE_EXT_SOCKET : SQFS_INODE_SOCKET)
            node.pointer.pointee.base.type = UInt16(type.rawValue)
            node.pointer.pointee.data.ipc_ext.nlink = inode.nlink
        }
        if extended && inode.type != .directory {
            try check(
                sqfs_inode_set_xattr_index(node.pointer, xattr), "set xattrs of \(layer.displayPath(of: entry))",
                path: path)
        }
        try fillBase(node, inode: inode, number: numbers[id.index], entry: entry)
        try check(
            sqfs_meta_writer_write_inode(meta, node.pointer), "write the inode of \(layer.displayPath(of: entry))",
            path: path)
        if stubBlocks > 0 { try appendZeroBlockList(count: stubBlocks, meta: meta, entry: entry) }
        return stubBlocks > 0
    }

    /// A basic directory inode, or an extended one (with the listing's index) when it has
    /// xattrs, an index or a listing of 64 KiB or more.
    func directoryInode(_ listing: DirectoryListing, nlink: UInt32, parent: UInt32, xattr: UInt32) throws -> SqfsInode {
        guard xattr != 0xFFFF_FFFF || listing.size > 0xFFFF || !listing.index.isEmpty else {
            let node = try SqfsInode(payloadBytes: 0, path: path)
            node.pointer.pointee.base.type = UInt16(SQFS_INODE_DIR.rawValue)
            node.pointer.pointee.data.dir = sqfs_inode_dir_t(
                start_block: listing.startBlock, nlink: nlink, size: UInt16(listing.size),
                offset: listing.offset, parent_inode: parent)
            return node
        }
        // libsquashfs serialises the payload as host-order sqfs_dir_index_t + name, one after another.
        var payload: [UInt8] = []
        payload.reserveCapacity(listing.indexBytes)
        for entry in listing.index {
            for field in [entry.index, entry.startBlock, UInt32(entry.name.count - 1)] {
                withUnsafeBytes(of: field) { payload.append(contentsOf: $0) }
            }
            payload.append(contentsOf: entry.name)
        }
        let node = try SqfsInode(payloadBytes: payload.count, path: path)
        node.pointer.pointee.base.type = UInt16(SQFS_INODE_EXT_DIR.rawValue)
        node.pointer.pointee.data.dir_ext = sqfs_inode_dir_ext_t(
            nlink: nlink, size: listing.size, start_block: listing.startBlock, parent_inode: parent,
            inodex_count: UInt16(listing.index.count), offset: listing.offset, xattr_idx: xattr)
        node.setPayload(payload)
        return node
    }

    func fillBase(_ node: SqfsInode, inode: Inode, number: UInt32, entry: EntryID) throws {
        var uid: UInt16 = 0, gid: UInt16 = 0
        try check(sqfs_id_table_id_to_index(ids.pointer, inode.uid, &uid), "record uid \(inode.uid)", path: path)
        try check(sqfs_id_table_id_to_index(ids.pointer, inode.gid, &gid), "record gid \(inode.gid)", path: path)
        node.pointer.pointee.base.mode = inode.permissions
        node.pointer.pointee.base.uid_idx = uid
        node.pointer.pointee.base.gid_idx = gid
        node.pointer.pointee.base.mod_time = UInt32(clamping: max(0, inode.mtime.seconds))
        node.pointer.pointee.base.inode_number = number
    }

    /// A stub's block list: one zero word (a sparse block) per block of logical size, appended
    /// in chunks — libsquashfs would copy a long list onto the stack.
    func appendZeroBlockList(count: Int, meta: OpaquePointer, entry: EntryID) throws {
        let chunkWords = 16384
        let zeros = [UInt8](repeating: 0, count: 4 * min(count, chunkWords))
        var remaining = count
        while remaining > 0 {
            let words = min(remaining, chunkWords)
            try check(
                zeros.withUnsafeBytes { sqfs_meta_writer_append(meta, $0.baseAddress, 4 * words) },
                "write the block list of \(layer.displayPath(of: entry))", path: path)
            remaining -= words
        }
    }

    func setUncompressedFlags() {
        let flags: [(SquashfsOptions.Table, SQFS_SUPER_FLAGS)] = [
            (.inodes, SQFS_FLAG_UNCOMPRESSED_INODES), (.data, SQFS_FLAG_UNCOMPRESSED_DATA),
            (.data, SQFS_FLAG_UNCOMPRESSED_FRAGMENTS), (.xattrs, SQFS_FLAG_UNCOMPRESSED_XATTRS),
            (.ids, SQFS_FLAG_UNCOMPRESSED_IDS),
        ]
        for (table, flag) in flags where options.isRaw(table) { superblock.flags |= UInt16(flag.rawValue) }
    }
}
