/// The on-disk constants of a composefs image (reference 09), named once for the writer and
/// the reader. Every integer is little-endian.
///
///     offset  size  what
///     0       32    composefs header: magic, header version (1), flags (bit 0: has ACLs),
///                   composefs format version; zeros to 1024
///     1024    128   EROFS superblock: magic, checksum (0), feature_compat, blkszbits (12),
///                   extslots, root nid (u16), inode count (u64), build time (u64 s, u32 ns),
///                   block count, meta_blkaddr, xattr_blkaddr; zeros to 1152
///     1152          inode records, 32-byte aligned; then the shared xattr table; then data
///                   blocks of 4096 bytes
enum ComposefsFormat {
    static let headerMagic: UInt32 = 0xD078_629A
    static let headerVersion: UInt32 = 1
    /// Header flags: the image has POSIX ACLs.
    static let flagHasACL: UInt32 = 1

    static let superblockOffset = 1024
    static let erofsMagic: UInt32 = 0xE0F5_E1E2
    /// feature_compat: SB_MTIME (per-image build time) | XATTR_FILTER (bloom filter per inode).
    static let featureCompat: UInt32 = 0x6
    static let blockSizeBits: UInt8 = 12
    static let blockSize = 1 << 12
    /// Inode records start here (the superblock's end); nid × 32 is an offset from 0.
    static let inodeTableOffset = superblockOffset + 128

    /// Inode records sit in 32-byte slots: a nid is the record's offset / 32.
    static let inodeSlot = 32
    static let compactInodeSize = 32
    static let extendedInodeSize = 64
    /// The inline xattr body header: bloom filter (u32), shared count (u8), 7 reserved bytes.
    static let xattrBodyHeaderSize = 12
    /// The seed of the xattr bloom filter's xxHash32 (plus the name prefix index).
    static let xattrFilterSeed: UInt32 = 0x25BB_E08F
    /// At most this many shared xattrs per inode (the count is a u8, mkcomposefs stops at 128).
    static let maxSharedXattrsPerInode = 128

    /// A directory entry record: nid (u64), name offset (u16), file type (u8), reserved (u8).
    static let direntSize = 12
    /// A tail longer than this gets a block of its own instead of being inlined.
    static let maxInlineTail = blockSize / 2
    /// A chunk index entry of an external file: a u32 block address (0xFFFFFFFF: a hole).
    static let chunkEntrySize = 4
    static let minChunkBits = 12
    static let maxChunkBits = 43

    /// i_format's data layouts (bits 1–3).
    enum DataLayout: UInt16 {
        case flatPlain = 0
        case flatInline = 2
        case chunkBased = 4
    }
}
