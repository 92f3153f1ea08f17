import ImageModel

/// The layer's xattr sets as a composefs image stores them (reference 09 §6): each set's
/// xattrs sorted by key, the shared table (every pair that more than one inode carries), and
/// per set its inline body — computed once per set, not once per inode, since inodes with the
/// same xattrs share a set.
///
/// Positions: xattr `i` of set `s` is at flat position `base[s] + i`.
struct XattrSets {
    /// Per set, its xattrs sorted by key (the layer's own storage when already sorted).
    private(set) var lists: [[Xattr]]
    /// Per set, where its xattrs start among the flat positions (one extra at the end).
    private(set) var base: [Int]
    /// Per set, how many inodes of the image carry it.
    private(set) var uses: [Int]
    /// The shared table in image order, and the size it takes.
    private(set) var shared: [Xattr] = []
    private(set) var sharedSize = 0
    /// Per flat position: the xattr's offset in the shared table, or -1 when stored inline.
    private(set) var sharedOffset: [Int] = []
    /// Per set: the size of its xattr body (0 for no xattrs) and its name bloom filter.
    private(set) var bodySize: [Int] = []
    private(set) var bloom: [UInt32] = []

    /// - Parameters:
    ///   - uses: per set of `table`, how many inodes carry it.
    ///   - hash: the prefilter's hash (tests pass a colliding one to exercise the exact path).
    init(_ table: XattrTable, uses: [Int], hash: (Xattr) -> UInt64 = pairHash) {
        lists = table.sets
        self.uses = uses
        base = [0]
        base.reserveCapacity(lists.count + 1)
        for s in lists.indices {
            let list = lists[s]
            if !zip(list, list.dropFirst()).allSatisfy({ !$1.key.lexicographicallyPrecedes($0.key) }) {
                lists[s] = list.sorted { $0.key.lexicographicallyPrecedes($1.key) }
            }
            base.append(base[s] + list.count)
        }
        share(XattrClasses(self, hash: hash))
    }

    /// Whether any inode carries a POSIX ACL (the header's flag).
    private(set) var hasACL = false

    /// Builds the shared table (pairs on more than one inode, sorted descending by key, value
    /// length, value) and each set's body layout.
    private mutating func share(_ classes: XattrClasses) {
        let sharedClasses = classes.uses.indices.filter { classes.uses[$0] > 1 }.sorted { a, b in
            let x = classes.xattr(a, in: self), y = classes.xattr(b, in: self)
            if x.key != y.key { return y.key.lexicographicallyPrecedes(x.key) }
            if x.value.count != y.value.count { return x.value.count > y.value.count }
            return y.value.lexicographicallyPrecedes(x.value)
        }
        var classOffset = [Int](repeating: -1, count: classes.uses.count)
        for c in sharedClasses {
            let xattr = classes.xattr(c, in: self)
            classOffset[c] = sharedSize
            shared.append(xattr)
            sharedSize += entrySize(xattr)
        }
        sharedOffset = [Int](repeating: -1, count: base[lists.count])
        bodySize = [Int](repeating: 0, count: lists.count)
        bloom = [UInt32](repeating: 0, count: lists.count)
        for s in lists.indices where uses[s] > 0 && !lists[s].isEmpty {
            var size = ComposefsFormat.xattrBodyHeaderSize, sharedCount = 0, bits: UInt32 = 0
            for (i, xattr) in lists[s].enumerated() {
                let offset = classOffset[Int(classes.classOf[base[s] + i])]
                if offset >= 0 && sharedCount < ComposefsFormat.maxSharedXattrsPerInode {
                    sharedOffset[base[s] + i] = offset
                    sharedCount += 1
                    size += 4
                } else {
                    size += entrySize(xattr)
                }
                let (prefixIndex, prefixLength) = namePrefix(xattr.key)
                if prefixIndex == 2 || prefixIndex == 3 { hasACL = hasACL || prefixLength == xattr.key.count }
                let name = xattr.key[prefixLength...]
                let seed = ComposefsFormat.xattrFilterSeed &+ UInt32(prefixIndex)
                bits |= 1 << (XXHash32.hash(name.span, seed: seed) & 31)
            }
            bodySize[s] = size
            bloom[s] = bits ^ 0xFFFF_FFFF
        }
    }
}

/// Every distinct (key, value) pair among the used sets, and how many inodes carry it.
///
/// Each pair is hashed once with a cheap 64-bit mix into an open-addressing table; pairs with
/// equal hashes are compared byte for byte, so two different pairs are never merged. Should
/// two differ under one hash (chance, or a crafted model), the count starts over on the exact
/// path, a dictionary keyed by the pair: slower, the same result.
struct XattrClasses {
    /// Per flat position of a used set: its pair's class.
    private(set) var classOf: [Int32]
    /// Per class: how many inodes carry the pair, and one flat position holding it.
    private(set) var uses: [Int] = []
    private var representative: [(set: Int32, index: Int32)] = []

    /// Whether the count took the exact path (two different pairs shared a hash).
    private(set) var countedExactly = false

    init(_ sets: XattrSets, hash: (Xattr) -> UInt64 = pairHash) {
        classOf = [Int32](repeating: -1, count: sets.base[sets.lists.count])
        if !countByHash(sets, hash: hash) {
            countedExactly = true
            countExactly(sets)
        }
    }

    func xattr(_ c: Int, in sets: XattrSets) -> Xattr {
        let (s, i) = representative[c]
        return sets.lists[Int(s)][Int(i)]
    }

    /// The fast count; false when two different pairs share a hash.
    private mutating func countByHash(_ sets: XattrSets, hash pairHash: (Xattr) -> UInt64) -> Bool {
        var capacity = 16
        while capacity < 2 * classOf.count { capacity <<= 1 }
        let mask = capacity - 1
        var slots = [Int32](repeating: -1, count: capacity)
        var slotHash = [UInt64](repeating: 0, count: capacity)
        for s in sets.lists.indices where sets.uses[s] > 0 {
            for (i, xattr) in sets.lists[s].enumerated() {
                let hash = pairHash(xattr)
                var slot = Int(truncatingIfNeeded: hash) & mask
                while true {
                    let c = Int(slots[slot])
                    if c < 0 {
                        slots[slot] = Int32(uses.count)
                        slotHash[slot] = hash
                        classOf[sets.base[s] + i] = Int32(uses.count)
                        uses.append(sets.uses[s])
                        representative.append((Int32(s), Int32(i)))
                        break
                    }
                    if slotHash[slot] == hash {
                        guard self.xattr(c, in: sets) == xattr else { return false }
                        classOf[sets.base[s] + i] = Int32(c)
                        uses[c] += sets.uses[s]
                        break
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
        return true
    }

    private mutating func countExactly(_ sets: XattrSets) {
        uses = []
        representative = []
        classOf = [Int32](repeating: -1, count: classOf.count)
        var classes: [Xattr: Int32] = [:]
        for s in sets.lists.indices where sets.uses[s] > 0 {
            for (i, xattr) in sets.lists[s].enumerated() {
                let c = classes[xattr] ?? Int32(uses.count)
                if c == uses.count {
                    classes[xattr] = c
                    uses.append(0)
                    representative.append((Int32(s), Int32(i)))
                }
                classOf[sets.base[s] + i] = c
                uses[Int(c)] += sets.uses[s]
            }
        }
    }
}

/// A 64-bit hash of an xattr's key and value (a multiply-xorshift mix, eight bytes a step).
/// Only a prefilter: equal hashes are always compared byte for byte.
func pairHash(_ xattr: Xattr) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(xattr.key.count) << 32 ^ UInt64(xattr.value.count)
    xattr.key.withUnsafeBytes { mixBytes($0, into: &h) }
    h = mix(h, 0xFF)
    xattr.value.withUnsafeBytes { mixBytes($0, into: &h) }
    h ^= h >> 31
    h = h &* 0xBF58_476D_1CE4_E5B9
    return h ^ (h >> 29)
}

@inline(__always)
private func mix(_ h: UInt64, _ word: UInt64) -> UInt64 {
    let m = (h ^ word) &* 0x9E37_79B9_7F4A_7C15
    return m ^ (m >> 32)
}

@inline(__always)
private func mixBytes(_ bytes: UnsafeRawBufferPointer, into h: inout UInt64) {
    var i = 0
    let n = bytes.count
    while i + 8 <= n {
        h = mix(h, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        i += 8
    }
    if i < n {
        var last: UInt64 = 0
        for k in i..<n { last = last << 8 | UInt64(bytes[k]) }
        h = mix(h, last)
    }
}

let aclAccess = Array("system.posix_acl_access".utf8)
let aclDefault = Array("system.posix_acl_default".utf8)
private let prefixes: [([UInt8], UInt8)] = [
    (Array("user.".utf8), 1), (aclAccess, 2), (aclDefault, 3), (Array("trusted.".utf8), 4),
    (Array("security.".utf8), 6),
]

/// §6: the EROFS name index of a key and the length of the prefix it stands for (the stored
/// name is the key without it). The first byte picks the one or two prefixes to compare.
func namePrefix(_ key: [UInt8]) -> (index: UInt8, length: Int) {
    guard let first = key.first else { return (0, 0) }
    for (prefix, index) in prefixes where prefix[0] == first && key.starts(with: prefix) {
        return (index, prefix.count)
    }
    return (0, 0)
}

/// An xattr entry's size: header, name without its prefix, value, padded to 4 bytes.
func entrySize(_ xattr: Xattr) -> Int {
    roundUp(4 + xattr.key.count - namePrefix(xattr.key).length + xattr.value.count, 4)
}
