import CSquashfsShim
import Dispatch
import ImageModel
import LinuxSys
import Synchronization

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
    /// learn (or refuse) what the image will not hold. With `jobs` of 2 or more the xattr
    /// tables are written on a second thread beside the inode and directory tables; the image
    /// is the same byte for byte.
    @discardableResult
    public static func write(
        _ layer: Image, to destination: String, options: SquashfsOptions = SquashfsOptions(), jobs: Int = 1
    ) throws -> SquashfsWriteResult {
        let temporary = try TemporarySibling(destination: destination)
        let result = try write(layer, into: temporary, options: options, jobs: jobs)
        try temporary.commit()
        return result
    }

    /// Writes `layer` into a temporary file that the caller commits (or hands on, as the data
    /// partition of a disk image).
    @discardableResult
    public static func write(
        _ layer: Image, into temporary: TemporarySibling, options: SquashfsOptions = SquashfsOptions(), jobs: Int = 1
    ) throws -> SquashfsWriteResult {
        try options.validate()
        try SquashfsLimits.check(layer, blockSize: options.blockSize)
        let stubs: Int
        do {
            let session = try Session(
                layer: layer, path: temporary.path, displayPath: temporary.destination, options: options, jobs: jobs)
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
    /// The write order and the inode numbers.
    let plan: WritePlan
    let ids: SqfsObject
    /// Per inode: its uid's and gid's indexes in the id table (uid | gid << 16).
    let owners: [UInt32]
    let xattrTable: XattrTableWriter
    /// The xattr tables' own compressor (they may be written on another thread).
    let xattrCompressor: SqfsCompressor
    let jobs: Int

    init(layer: Image, path temporaryPath: String, displayPath: String, options: SquashfsOptions, jobs: Int) throws {
        self.layer = layer
        self.jobs = jobs
        self.options = options
        self.path = displayPath
        file = try SqfsFile(path: temporaryPath, flags: SQFS_FILE_OPEN_OVERWRITE, displayPath: displayPath)
        let id = options.compression.id
        real =
            options.compression == .none
            ? nil
            : try SqfsCompressor(
                id: id, blockSize: options.blockSize, level: options.effectiveLevel, raw: false, path: displayPath)
        raw = try SqfsCompressor(id: id, blockSize: options.blockSize, level: nil, raw: true, path: displayPath)
        xattrCompressor = try SqfsCompressor(
            id: id, blockSize: options.blockSize, level: options.effectiveLevel, raw: options.isRaw(.xattrs),
            path: displayPath)
        plan = WritePlan(layer, order: options.inodeOrder)
        // Xattr sets and ids are numbered as the inodes are written, first use first; both are
        // fixed here, before any table is written, so the xattr tables can be written beside
        // the others.
        xattrTable = XattrTableWriter(
            layer.xattrTable, uses: plan.order.lazy.map { layer.inodes[layer.inodeID(of: $0).index].xattrs })
        guard let ids = sqfs_id_table_create(0) else {
            throw SquashfsError(path: displayPath, operation: "create the id table", code: -1)
        }
        self.ids = SqfsObject(ids)
        var owners = [UInt32](repeating: 0, count: layer.inodeCount)
        // The id table keeps ids in first-use order: each inode's uid, then its gid.
        var known: [UInt32: UInt16] = [:]
        var last: (id: UInt32, index: UInt16)? = nil
        for entry in plan.order {
            let inode = layer.inodeID(of: entry).index
            var pair: UInt32 = 0
            for (shift, owner) in [(0, layer.inodes[inode].uid), (16, layer.inodes[inode].gid)] {
                var index: UInt16 = 0
                if let last, last.id == owner {
                    index = last.index
                } else if let found = known[owner] {
                    index = found
                } else {
                    try check(
                        sqfs_id_table_id_to_index(ids, owner, &index), "record uid/gid \(owner)", path: displayPath)
                    known[owner] = index
                }
                last = (owner, index)
                pair |= UInt32(index) << shift
            }
            owners[inode] = pair
        }
        self.owners = owners
    }

    func compressor(for table: SquashfsOptions.Table) -> UnsafeMutablePointer<sqfs_compressor_t> {
        options.isRaw(table) ? raw.pointer : real!.pointer
    }

    /// Writes the whole image; returns the number of stubs.
    func run() throws -> Int {
        // Where no scratch file can be made beside the output, one thread writes them all.
        let xattrWork =
            jobs > 1 && xattrTable.setCount >= XattrWork.minimumSets
            ? (try? SpillFile(nextTo: path, path: path)).map {
                XattrWork(writer: xattrTable, spill: $0, compressor: xattrCompressor, path: path)
            }
            : nil
        defer { xattrWork?.cancel() }
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
        let inodeTable = MetadataWriter(
            streamingTo: file, compressor: compressor(for: .inodes), name: "the inode table", path: path)
        let directoryTable = MetadataWriter(
            compressor: compressor(for: .directories), name: "the directory table", path: path)
        let directories = DirectoryTableWriter(meta: directoryTable, policy: options.directoryIndex, path: path)
        let encoder = InodeEncoder(
            layer: layer, plan: plan, xattrs: xattrTable, owners: owners, blocksStart: superblock.inode_table_start,
            blockSize: options.blockSize, path: path)
        var stubs = 0
        var refs = [UInt64](repeating: 0, count: layer.inodeCount)
        // Each directory's listing from when it is written until its inode is.
        var listings: [InodeID: DirectoryListing] = [:]
        for step in plan.steps {
            switch step {
            case .inode(let entry):
                let id = layer.inodeID(of: entry)
                refs[id.index] = inodeTable.reference
                let listing = layer.fileType(of: id) == .directory ? listings.removeValue(forKey: id) : nil
                let dataInode = dataInodes.isEmpty ? nil : dataInodes[id]
                if try encoder.write(entry, id: id, listing: listing, dataInode: dataInode, into: inodeTable) {
                    stubs += 1
                }
            case .listing(let directory):
                listings[layer.inodeID(of: directory)] = try directories.write(
                    layer.children(of: directory).map { child in
                        let childID = layer.inodeID(of: child)
                        return DirectoryChild(
                            name: layer.name(of: child), inodeNumber: plan.numbers[childID.index],
                            inodeRef: refs[childID.index], type: Self.listingType(layer.fileType(of: childID)))
                    })
            }
        }
        try inodeTable.finish()
        try directoryTable.finish()
        superblock.root_inode_ref = refs[layer.inodeID(of: .root).index]
        superblock.directory_table_start = file.size
        try directoryTable.writeOut(to: file, at: file.size)
        superblock.inode_count = UInt32(plan.order.count)
        try check(
            sqfs_frag_table_write(fragments, file.pointer, &superblock, compressor(for: .inodes)),
            "write the fragment table", path: path)
        try check(
            sqfs_id_table_write(ids.pointer, file.pointer, &superblock, compressor(for: .ids)), "write the id table",
            path: path)
        if xattrTable.isEmpty {
            superblock.xattr_id_table_start = UInt64.max
        } else {
            let start = file.size
            let section: XattrSection
            if let xattrWork {
                // What the worker has written so far is copied while it goes on; the rest it
                // writes into the image itself.
                try xattrWork.sink.handOff(to: file, at: start)
                section = try xattrWork.finish()
            } else {
                section = try xattrTable.writeSection(
                    to: file, at: start, compressor: xattrCompressor.pointer, path: path)
            }
            try XattrTableWriter.writeHeader(section, at: start, file: file, superblock: &superblock)
        }
        setUncompressedFlags()
        superblock.bytes_used = file.size
        try check(sqfs_super_write(&superblock, file.pointer), "rewrite the superblock", path: path)
        let padding = Int((4096 - file.size % 4096) % 4096)
        if padding > 0 { try file.write(at: file.size, [UInt8](repeating: 0, count: padding)) }
        withExtendedLifetime(fragmentTable) {}
        return stubs
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
        let inline = plan.order.filter { layer.hasInlineContent(layer.inodeID(of: $0)) }
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

    func setUncompressedFlags() {
        let flags: [(SquashfsOptions.Table, SQFS_SUPER_FLAGS)] = [
            (.inodes, SQFS_FLAG_UNCOMPRESSED_INODES), (.data, SQFS_FLAG_UNCOMPRESSED_DATA),
            (.data, SQFS_FLAG_UNCOMPRESSED_FRAGMENTS), (.xattrs, SQFS_FLAG_UNCOMPRESSED_XATTRS),
            (.ids, SQFS_FLAG_UNCOMPRESSED_IDS),
        ]
        for (table, flag) in flags where options.isRaw(table) { superblock.flags |= UInt16(flag.rawValue) }
    }
}

/// The xattr tables written on a thread of their own, into a spill file while the session
/// writes the inode and directory tables (both read the same immutable layer), then, once the
/// session knows where they go and has copied what was spilled, into the image (see
/// ``HandoffSink``). The writer, sink and compressor are the worker's alone until
/// ``finish()`` or ``cancel()`` has waited for it.
private final class XattrWork: @unchecked Sendable {
    /// Below this many sets the thread costs more than it saves.
    static let minimumSets = 1024

    let sink: HandoffSink
    private let writer: XattrTableWriter
    private let compressor: SqfsCompressor
    private let path: String
    private let cancelled = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    /// Set by the worker before it signals `done`; read after waiting on it.
    private var result: Result<XattrSection, any Error>?
    private var joined = false

    init(writer: XattrTableWriter, spill: SpillFile, compressor: SqfsCompressor, path: String) {
        self.writer = writer
        self.sink = HandoffSink(spill)
        self.compressor = compressor
        self.path = path
        // Unowned: the session holds this until it has waited for the worker, so the last
        // release (and the scratch file's removal) happens on the session's thread.
        DispatchQueue.global().async { [unowned self] in
            result = Result {
                try self.writer.writeSection(
                    to: self.sink, at: 0, compressor: self.compressor.pointer, path: self.path,
                    cancelled: { self.cancelled.load(ordering: .relaxed) })
            }
            done.signal()
        }
    }

    private func join() {
        guard !joined else { return }
        done.wait()
        joined = true
    }

    /// Waits for the tables; their place in the spill file, or the worker's error.
    func finish() throws -> XattrSection {
        join()
        return try result!.get()
    }

    /// Stops the worker early (when the image failed) and waits for it; harmless after `finish`.
    func cancel() {
        cancelled.store(true, ordering: .relaxed)
        join()
    }
}
