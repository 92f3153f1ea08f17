import CSquashfsShim

/// How to write a squashfs image.
public struct SquashfsOptions: Sendable, Equatable {
    /// A compressor the kernel's squashfs can read (LZO is not built into libsquashfs 1.2, and
    /// the kernel cannot read LZMA).
    public enum Compression: String, Sendable, CaseIterable, Codable {
        case none, gzip, lz4, zstd, xz

        var id: SQFS_COMPRESSOR {
            switch self {
            case .none, .gzip: SQFS_COMP_GZIP
            case .lz4: SQFS_COMP_LZ4
            case .zstd: SQFS_COMP_ZSTD
            case .xz: SQFS_COMP_XZ
            }
        }
    }

    /// The tables of an image, each of which can be stored uncompressed.
    public enum Table: String, Sendable, CaseIterable, Codable, Comparable {
        /// File data blocks and fragment blocks (only inline files have data).
        case data
        case inodes, directories, xattrs, ids

        public static func < (a: Table, b: Table) -> Bool { a.rawValue < b.rawValue }

        /// The metadata tables (everything but file data and fragments).
        public static let metadata: Set<Table> = [.inodes, .directories, .xattrs, .ids]
    }

    /// The compressor for every table not in `uncompressedTables`. `.none` stores everything
    /// raw (the superblock then names gzip, which every kernel has, as squashfs requires one).
    public var compression: Compression
    /// Compression level; nil takes ``defaultLevel(for:)``.
    public var compressionLevel: Int?

    /// ovlcfs's default level per compressor. libsquashfs defaults zstd to 15 and gzip to 9,
    /// which write 8× and 3× slower than 3 and 6 for a few percent of metadata size
    /// (cs9-x86_64-minimal: zstd 15 880 KiB in 0.33 s, zstd 3 916 KiB in 0.04 s).
    public static func defaultLevel(for compression: Compression) -> Int? {
        switch compression {
        case .zstd: 3
        case .gzip: 6
        case .xz, .lz4, .none: nil
        }
    }

    /// The level actually used.
    var effectiveLevel: Int? { compressionLevel ?? Self.defaultLevel(for: compression) }
    /// Tables to store uncompressed even though `compression` is set.
    public var uncompressedTables: Set<Table>
    /// Data block size: a power of two from 4 KiB to 1 MiB. Stubs cost 4 bytes of inode per
    /// block of logical size, so large blocks keep the inode table small.
    public var blockSize: Int
    /// Superblock modification time (fixed, so builds are reproducible).
    public var modificationTime: UInt32

    /// How inodes are ordered in the inode table (a directory's listing, which needs its
    /// children's references, always comes after their inodes; the directory's inode after it).
    public enum InodeOrder: String, Sendable, CaseIterable, Codable {
        /// Post-order by name: a directory's files are interleaved with its subdirectories' subtrees.
        case name
        /// Per directory: the subdirectories' subtrees first, then all its other entries
        /// together, then the directory — so a directory's files share metadata blocks.
        case grouped
        /// Every directory's children together in name order, subdirectories included (each
        /// written after its own subtree's listing): the order in which `ls -l`, `find` and a
        /// directory's lookups visit them. The root comes last.
        case directories
    }

    public var inodeOrder: InodeOrder = .directories

    /// Which directory headers get an entry in the directory's index (the kernel's lookup
    /// starts its linear scan of a listing at the last index entry ≤ the name).
    public enum DirectoryIndex: String, Sendable, CaseIterable, Codable {
        /// A header and an index entry every ⌈√n⌉ entries (directories of more than 16):
        /// a lookup reads ~2√n entries instead of up to ~250.
        case dense
        /// Only headers that start a new 8 KiB metadata block, as mksquashfs and libsquashfs write.
        case blocks

        /// Entries per header (each with an index entry) in a directory of `entries`; nil: no
        /// headers beyond those the format needs.
        public func headerStride(entries: Int) -> Int? {
            guard self == .dense, entries > 16 else { return nil }
            var root = 1
            while root * root < entries { root += 1 }
            return root
        }
    }

    public var directoryIndex: DirectoryIndex = .dense

    public init(
        compression: Compression = .lz4, compressionLevel: Int? = nil, uncompressedTables: Set<Table> = [],
        blockSize: Int = 1 << 20, modificationTime: UInt32 = 0
    ) {
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.uncompressedTables = uncompressedTables
        self.blockSize = blockSize
        self.modificationTime = modificationTime
    }

    func isRaw(_ table: Table) -> Bool { compression == .none || uncompressedTables.contains(table) }

    /// Checks the values; the message names the option.
    public func validate() throws(SquashfsOptionsError) {
        guard blockSize >= 4096, blockSize <= 1 << 20, blockSize & (blockSize - 1) == 0 else {
            throw SquashfsOptionsError("block size \(blockSize) must be a power of two from 4096 to 1048576")
        }
        if let level = compressionLevel {
            let range: ClosedRange<Int>? =
                switch compression {
                case .gzip: 1...9
                case .zstd: 1...22
                case .xz: 0...9
                case .lz4, .none: nil
                }
            guard let range else { throw SquashfsOptionsError("\(compression.rawValue) takes no compression level") }
            guard range.contains(level) else {
                throw SquashfsOptionsError(
                    "\(compression.rawValue) level \(level) is outside \(range.lowerBound)…\(range.upperBound)")
            }
        }
    }
}

public struct SquashfsOptionsError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
