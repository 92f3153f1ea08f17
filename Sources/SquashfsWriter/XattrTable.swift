import CSquashfsShim
import ImageModel

// The squashfs xattr tables, written directly (format: reference 06 §1) instead of through
// libsquashfs's xattr writer, which keeps values hex-encoded in a fixed-size hash table and
// deduplicates every set — superlinear when every stub's metacopy/redirect pair is unique.
//
//   xattr_table_start:    key/value sets in metadata blocks; one set per xattr set id of the
//                         layer, written in the order inodes first use them:
//                           u16 type (0 user, 1 trusted, 2 security) | u16 name size | name
//                           u32 value size | value
//   then:                 id table in metadata blocks, 16 bytes per id:
//                           u64 ref (block offset from xattr_table_start << 16 | offset)
//                           u32 count | u32 size (bytes of the set's entries)
//   xattr_id_table_start: u64 xattr_table_start | u32 ids | u32 0 | u64 location of each id block

/// Collects xattr sets while inodes are written and writes both tables at the end.
final class XattrTableWriter {
    /// The layer's sets, read again when the tables are written (a stub's derived set is
    /// only its digest until then).
    private let table: XattrTable
    /// The layer set of each squashfs xattr id, in id order.
    private var sets: [XattrSetID] = []
    /// Squashfs xattr id per layer xattr set id (nil: not used yet).
    private var ids: [UInt32?]

    init(_ table: XattrTable) {
        self.table = table
        ids = [UInt32?](repeating: nil, count: table.count)
    }

    /// The squashfs xattr index for a layer set (storable xattrs only; none → 0xFFFFFFFF).
    func index(of set: XattrSetID) -> UInt32 {
        if set == .empty { return 0xFFFF_FFFF }
        if let id = ids[Int(set.rawValue)] { return id }
        let storable = !table.allKeys(in: set) { !SquashfsLosses.isStorable($0) }
        let id: UInt32 = storable ? UInt32(sets.count) : 0xFFFF_FFFF
        if storable { sets.append(set) }
        ids[Int(set.rawValue)] = id
        return id
    }

    var isEmpty: Bool { sets.isEmpty }

    /// Writes the tables at the end of `file` and points the superblock at them.
    func write(
        to file: SqfsFile, superblock: inout sqfs_super_t, compressor: UnsafeMutablePointer<sqfs_compressor_t>,
        path: String
    ) throws {
        guard !sets.isEmpty else {
            superblock.xattr_id_table_start = UInt64.max
            return
        }
        let kvStart = file.size
        guard let kv = sqfs_meta_writer_create(file.pointer, compressor, 0) else {
            throw SquashfsError(path: path, operation: "create the xattr writer", code: -1)
        }
        let kvOwner = SqfsObject(kv)
        var entries: [UInt8] = []
        entries.reserveCapacity(16 * sets.count)
        var buffer: [UInt8] = []
        var scratch = Xattr(key: [], value: [])
        for set in sets {
            var block: UInt64 = 0, offset: UInt32 = 0
            sqfs_meta_writer_get_position(kv, &block, &offset)
            buffer.removeAll(keepingCapacity: true)
            var count: UInt32 = 0
            table.forEach(in: set, scratch: &scratch) { xattr in
                guard SquashfsLosses.isStorable(xattr.key) else { return }
                let (type, name) = Self.split(xattr.key)
                buffer.appendLE(type)
                buffer.appendLE(UInt16(name.count))
                buffer.append(contentsOf: name)
                buffer.appendLE(UInt32(xattr.value.count))
                buffer.append(contentsOf: xattr.value)
                count += 1
            }
            try check(
                buffer.withUnsafeBytes { sqfs_meta_writer_append(kv, $0.baseAddress, $0.count) }, "write xattrs",
                path: path)
            entries.appendLE(block << 16 | UInt64(offset))
            entries.appendLE(count)
            entries.appendLE(UInt32(buffer.count))
        }
        try check(sqfs_meta_writer_flush(kv), "flush the xattr table", path: path)
        withExtendedLifetime(kvOwner) {}

        // The id table: one metadata block per 512 entries, each location recorded.
        guard let idWriter = sqfs_meta_writer_create(file.pointer, compressor, 0) else {
            throw SquashfsError(path: path, operation: "create the xattr id writer", code: -1)
        }
        let idOwner = SqfsObject(idWriter)
        var locations: [UInt64] = []
        var start = 0
        while start < entries.count {
            let end = min(entries.count, start + 8192)
            locations.append(file.size)
            try check(
                entries[start..<end].withUnsafeBytes { sqfs_meta_writer_append(idWriter, $0.baseAddress, $0.count) },
                "write xattr ids", path: path)
            try check(sqfs_meta_writer_flush(idWriter), "flush xattr ids", path: path)
            start = end
        }
        withExtendedLifetime(idOwner) {}
        var header: [UInt8] = []
        header.appendLE(kvStart)
        header.appendLE(UInt32(sets.count))
        header.appendLE(UInt32(0))
        for location in locations { header.appendLE(location) }
        superblock.xattr_id_table_start = file.size
        try file.write(at: file.size, header)
        superblock.flags &= ~UInt16(SQFS_FLAG_NO_XATTRS.rawValue)
    }

    /// The squashfs prefix type and the name without its prefix (storable keys only).
    static func split(_ key: [UInt8]) -> (UInt16, ArraySlice<UInt8>) {
        for (type, prefix) in prefixes.enumerated() where key.starts(with: prefix) {
            return (UInt16(type), key[prefix.count...])
        }
        preconditionFailure("unstorable xattr key reached the squashfs xattr table")
    }

    private static let prefixes = ["user.", "trusted.", "security."].map { Array($0.utf8) }
}
