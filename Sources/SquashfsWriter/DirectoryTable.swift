import CSquashfsShim
import ImageModel

/// One child in a directory listing, in the order the listing holds them (strcmp order).
struct DirectoryChild {
    /// The name, as a slice of the layer's names (no copy per entry).
    var name: ArraySlice<UInt8>
    var inodeNumber: UInt32
    /// The child's inode reference: on-disk block offset in the inode table << 16 | offset.
    var inodeRef: UInt64
    /// Basic squashfs inode type (1 directory … 7 socket).
    var type: UInt16
}

/// Where a listing went and the index that lets the kernel find names in it.
struct DirectoryListing {
    struct IndexEntry {
        /// Byte offset of a directory header within the listing.
        var index: UInt32
        /// On-disk offset (from the directory table start) of the metadata block holding it.
        var startBlock: UInt32
        /// Name of the first entry after that header.
        var name: [UInt8]
    }

    var startBlock: UInt32
    var offset: UInt16
    /// Listing bytes + 3, as squashfs stores it.
    var size: UInt32
    var index: [IndexEntry]

    /// Bytes the index adds to the directory's inode.
    var indexBytes: Int { index.reduce(0) { $0 + 12 + $1.name.count } }
}

/// Writes directory listings into the directory table (reference 06 §1: headers of ≤ 256
/// entries sharing an inode metadata block and an inode number base ±32767, then entries).
///
/// The kernel's `squashfs_lookup` scans a listing linearly, two metadata reads per entry, from
/// the last index entry whose name is ≤ the one looked up. mksquashfs and libsquashfs index only
/// the headers that start a new 8 KiB metadata block, so a lookup in a directory of n entries
/// scans up to ~250 entries and walking a directory costs O(n²) reads — the bulk of a cold
/// `ls -lR` (docs/performance.md). The kernel accepts an index entry at any header, so the
/// `.dense` policy starts a header (and an index entry) every ⌈√n⌉ entries: a lookup then reads
/// about √n index entries and √n directory entries.
final class DirectoryTableWriter {
    let meta: MetadataWriter
    let policy: SquashfsOptions.DirectoryIndex
    /// The image, for errors.
    let path: String

    init(meta: MetadataWriter, policy: SquashfsOptions.DirectoryIndex, path: String) {
        self.meta = meta
        self.policy = policy
        self.path = path
    }

    static let metadataBlockSize = MetadataWriter.blockSize

    /// The error for a table past what squashfs's 32-bit block offsets reach.
    private func tooLarge(_ table: String) -> SquashfsError {
        SquashfsError(
            path: path, operation: "write the directory table (the \(table) table is larger than 4 GiB)", code: -7)
    }

    /// Appends one directory's listing; `children` must be in strcmp order.
    func write(_ children: [DirectoryChild]) throws(SquashfsError) -> DirectoryListing {
        let start = meta.position
        // Listings and the inodes they name are found by 32-bit block offsets.
        guard start.block <= UInt32.max else { throw tooLarge("directory") }
        var listing = DirectoryListing(
            startBlock: UInt32(start.block), offset: UInt16(start.offset), size: 3, index: [])
        let stride = policy.headerStride(entries: children.count)
        var length = 0
        var lastIndexedBlock = start.block
        var first = 0
        while first < children.count {
            let blockOfInodes = children[first].inodeRef >> 16
            guard blockOfInodes <= UInt32.max else { throw tooLarge("inode") }
            let base = Int64(children[first].inodeNumber)
            let headerLinear = start.offset + length
            var end = first + 1
            var linear = headerLinear + 12 + 8 + children[first].name.count
            while end < children.count, end - first < 256 {
                let child = children[end]
                let delta = Int64(child.inodeNumber) - base
                guard child.inodeRef >> 16 == blockOfInodes, delta >= -32768, delta <= 32767 else { break }
                if let stride, end - first >= stride { break }
                // Without a stride (`blocks`, or a directory of ≤ 16): a new header where the
                // listing enters a new metadata block, as mksquashfs writes it.
                if stride == nil, linear / Self.metadataBlockSize != headerLinear / Self.metadataBlockSize { break }
                linear += 8 + child.name.count
                end += 1
            }
            let here = meta.position
            guard here.block <= UInt32.max else { throw tooLarge("directory") }
            let indexed = first > 0 && (stride != nil || here.block != lastIndexedBlock)
            if indexed {
                listing.index.append(
                    .init(index: UInt32(length), startBlock: UInt32(here.block), name: Array(children[first].name)))
                lastIndexedBlock = here.block
            }
            try meta.append(UInt32(end - first - 1))
            try meta.append(UInt32(blockOfInodes))
            try meta.append(UInt32(base))
            for child in children[first..<end] {
                try meta.append(UInt16(truncatingIfNeeded: child.inodeRef & 0xFFFF))
                try meta.append(UInt16(bitPattern: Int16(Int64(child.inodeNumber) - base)))
                try meta.append(child.type)
                try meta.append(UInt16(child.name.count - 1))
                try meta.append(child.name)
            }
            length = linear - start.offset
            first = end
        }
        listing.size = UInt32(length + 3)
        // The inode counts index entries in 16 bits; any ordered subset is still a valid index.
        if listing.index.count > 0xFFFF {
            let keep = (listing.index.count + 0xFFFE) / 0xFFFF
            listing.index = listing.index.enumerated().filter { $0.offset % keep == 0 }.map(\.element)
        }
        return listing
    }
}
