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

/// Where the xattr tables' bytes lie, from the start of the key/value table.
struct XattrSection: Sendable {
    /// Bytes of both tables.
    var bytes: UInt64
    /// Where each block of the id table starts.
    var idBlocks: [UInt64]
    /// Number of ids.
    var count: UInt32
}

/// Numbers the xattr sets in the order inodes first use them, then writes both tables. The
/// numbering is done once, at the start, and never changes: the tables can then be written on
/// another thread while the inodes that name the sets are.
final class XattrTableWriter: Sendable {
    /// The layer's sets, read again when the tables are written (a stub's derived set is
    /// only its digest until then).
    private let table: XattrTable
    /// The layer set of each squashfs xattr id, in id order.
    private let sets: [XattrSetID]
    /// Squashfs xattr id per layer xattr set id (0xFFFFFFFF: none, or not used).
    private let ids: [UInt32]

    /// Numbers the storable sets among `uses` (a set per inode, in write order) as first met.
    init(_ table: XattrTable, uses: some Sequence<XattrSetID>) {
        self.table = table
        var sets: [XattrSetID] = []
        var ids = [UInt32](repeating: 0xFFFF_FFFF, count: table.count)
        var numbered = [Bool](repeating: false, count: table.count)
        // A set is stored when it holds at least one key squashfs can store (the others are
        // left out of it, and reported as losses). Per list set and per rule: whether it holds
        // such a key (nil: not looked at yet). Derived sets share both.
        var storableLists = [Bool?](repeating: nil, count: table.count)
        var storableRules = [Bool?](repeating: nil, count: table.ruleCount)
        // (No local function: the locals it captured would be checked at run time.)
        for set in uses where set != .empty && !numbered[Int(set.rawValue)] {
            numbered[Int(set.rawValue)] = true
            var list = set
            var ruleStorable = false
            if let (base, rule, _) = table.derivation(of: set) {
                list = base
                ruleStorable =
                    storableRules[rule]
                    ?? table.rule(rule).entries.contains { SquashfsLosses.isStorable($0.key) }
                storableRules[rule] = ruleStorable
            }
            let listStorable =
                storableLists[Int(list.rawValue)]
                ?? !table.allKeys(in: list, satisfy: { !SquashfsLosses.isStorable($0) })
            storableLists[Int(list.rawValue)] = listStorable
            if ruleStorable || listStorable {
                ids[Int(set.rawValue)] = UInt32(sets.count)
                sets.append(set)
            }
        }
        self.sets = sets
        self.ids = ids
    }

    /// The squashfs xattr index for a layer set (storable xattrs only; none → 0xFFFFFFFF).
    func index(of set: XattrSetID) -> UInt32 { ids[Int(set.rawValue)] }

    var isEmpty: Bool { sets.isEmpty }
    var setCount: Int { sets.count }

    /// The key/value table and the id table, written to `sink` from `start` on; their
    /// content does not depend on where they end up in the image (references count from the
    /// key/value table's start), so they can be written beside the other tables and copied
    /// into place. `cancelled` is polled now and then: a failed image stops the work early.
    func writeSection(
        to sink: any MetadataSink, at start: UInt64, compressor: UnsafeMutablePointer<sqfs_compressor_t>,
        path: String, cancelled: () -> Bool = { false }
    ) throws -> XattrSection {
        // Both tables named as one in errors: where a write fails (in the scratch file, the
        // copy or the image) depends on the threads' timing, and the message must not.
        let kv = MetadataWriter(
            streamingTo: sink, at: start, compressor: compressor, name: "the xattr tables", path: path)
        // 16 bytes an id, 512 ids a block; kept in memory until the key/value table ends.
        let ids = MetadataWriter(compressor: compressor, name: "the xattr tables", path: path)
        var idBlocks: [UInt64] = []
        var encoder = SetEncoder(table: table)
        for (number, set) in sets.enumerated() {
            if number % 512 == 0 {
                if cancelled() { throw CancellationError() }
                idBlocks.append(ids.position.block)
            }
            let ref = kv.reference
            let (count, size) = try encoder.write(set, to: kv)
            try ids.append(ref)
            try ids.append(count)
            try ids.append(size)
        }
        try kv.finish()
        try ids.finish()
        try ids.writeOut(to: sink, at: start + kv.size)
        return XattrSection(
            bytes: kv.size + ids.size, idBlocks: idBlocks.map { kv.size + $0 }, count: UInt32(sets.count))
    }

    /// Ends the xattr tables whose section starts at `start` in `file` and ends where the file
    /// does: the id table's header and block locations, and the superblock's pointer to them.
    static func writeHeader(
        _ section: XattrSection, at start: UInt64, file: SqfsFile, superblock: inout sqfs_super_t
    ) throws(SquashfsError) {
        var header: [UInt8] = []
        header.appendLE(start)
        header.appendLE(section.count)
        header.appendLE(UInt32(0))
        for block in section.idBlocks { header.appendLE(start + block) }
        superblock.xattr_id_table_start = file.size
        try file.write(at: file.size, header)
        superblock.flags &= ~UInt16(SQFS_FLAG_NO_XATTRS.rawValue)
    }

    /// Serialises sets: a derived set's base list is encoded once for all the sets that share
    /// it, and its derived entries' keys once per rule; only the values are made per set.
    struct SetEncoder {
        let table: XattrTable
        /// Encoded storable xattrs of a base list, and how many there are, by set id.
        private var bases: [XattrSetID: (bytes: [UInt8], count: UInt32)] = [:]
        /// Per rule: each storable entry with its encoded key.
        private var rules: [[(entry: DigestXattrs.Entry, key: [UInt8])]?]
        private var value: [UInt8] = []

        init(table: XattrTable) {
            self.table = table
            rules = Array(repeating: nil, count: table.ruleCount)
        }

        /// Writes a set's storable xattrs; returns their count and bytes.
        mutating func write(_ set: XattrSetID, to kv: MetadataWriter) throws(SquashfsError) -> (UInt32, UInt32) {
            guard let (base, rule, digest) = table.derivation(of: set) else {
                let encoded = Self.encode(table[set])
                try kv.append(encoded.bytes)
                return (encoded.count, UInt32(encoded.bytes.count))
            }
            let shared = bases[base] ?? Self.encode(table[base])
            bases[base] = shared
            let derived = rules[rule] ?? Self.encode(table.rule(rule))
            rules[rule] = derived
            try kv.append(shared.bytes)
            var size = shared.bytes.count
            for (entry, key) in derived {
                entry.value(for: digest, into: &value)
                try kv.append(key)
                try kv.append(UInt32(value.count))
                try kv.append(value)
                size += key.count + 4 + value.count
            }
            return (shared.count + UInt32(derived.count), UInt32(size))
        }

        /// `u16 type | u16 name size | name` of a storable key.
        static func encode(key: [UInt8]) -> [UInt8] {
            let (type, name) = split(key)
            var bytes: [UInt8] = []
            bytes.appendLE(type)
            bytes.appendLE(UInt16(name.count))
            bytes.append(contentsOf: name)
            return bytes
        }

        /// The storable xattrs of a list, encoded, and their count.
        static func encode(_ xattrs: [Xattr]) -> (bytes: [UInt8], count: UInt32) {
            var bytes: [UInt8] = []
            var count: UInt32 = 0
            for xattr in xattrs where SquashfsLosses.isStorable(xattr.key) {
                bytes.append(contentsOf: encode(key: xattr.key))
                bytes.appendLE(UInt32(xattr.value.count))
                bytes.append(contentsOf: xattr.value)
                count += 1
            }
            return (bytes, count)
        }

        /// A rule's storable entries with their encoded keys.
        static func encode(_ rule: DigestXattrs) -> [(entry: DigestXattrs.Entry, key: [UInt8])] {
            rule.entries.filter { SquashfsLosses.isStorable($0.key) }.map { ($0, encode(key: $0.key)) }
        }
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
