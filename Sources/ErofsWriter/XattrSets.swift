import ImageModel

/// The layer's xattr sets as a composefs image stores them (reference 09 §6): each set's
/// xattrs sorted by key, the shared table (every pair that more than one inode carries), and
/// per set its inline body — computed once per set, not once per inode, since inodes with the
/// same xattrs share a set.
///
/// Positions: xattr `i` of set `s` is at flat position `base[s] + i`.
struct XattrSets {
    /// The layer's sets.
    private let table: XattrTable
    /// A sorted copy of each list set whose xattrs the layer does not keep sorted by key (few:
    /// dumps and the translation keep them sorted).
    private var sortedCopies: [Int: [Xattr]] = [:]

    /// Set `s`'s sorted copy, if it needs one.
    private func sortedCopy(_ s: Int) -> [Xattr]? { sortedCopies.isEmpty ? nil : sortedCopies[s] }
    /// Per set, where its xattrs start among the flat positions (one extra at the end).
    private(set) var base: [Int]
    /// Per set, how many inodes of the image carry it.
    private(set) var uses: [Int]
    /// The shared table in image order, and the size it takes.
    private(set) var shared: [Xattr] = []
    private(set) var sharedSize = 0
    /// Per flat position: the xattr's offset in the shared table in 4-byte words (the table is
    /// addressable below 2^34 bytes, which ``ComposefsImage`` checks), or `inline`.
    private(set) var sharedWord: [UInt32] = []
    static let inline = UInt32.max

    /// Whether the xattr at flat position `p` is in the shared table, and its byte offset.
    func sharedOffset(_ p: Int) -> Int? { sharedWord[p] == Self.inline ? nil : Int(sharedWord[p]) * 4 }
    /// Per set: the size of its xattr body (0 for no xattrs) and its name bloom filter.
    private(set) var bodySize: [UInt32] = []
    private(set) var bloom: [UInt32] = []

    /// Number of sets.
    var count: Int { uses.count }

    /// - Parameters:
    ///   - uses: per set of `table`, how many inodes carry it.
    ///   - hash: the prefilter's hash (tests pass a colliding one to exercise the exact path).
    init(_ table: XattrTable, uses: [Int], hash: (Xattr) -> UInt64 = pairHash) {
        self.table = table
        self.uses = uses
        rules = (0..<table.ruleCount).map { table.rule($0).entries }
        base = [0]
        base.reserveCapacity(table.count + 1)
        for s in 0..<table.count {
            let id = XattrSetID(rawValue: UInt32(s))
            if let (baseSet, rule, _) = table.derivation(of: id) {
                let key = Int(baseSet.rawValue) * rules.count + rule
                if sources[key] == nil {
                    let own = sortedCopy(Int(baseSet.rawValue)) ?? table[baseSet]
                    sources[key] = Self.merge(own, rules[rule])
                }
            } else {
                let list = table[id]
                if !Self.isSorted(list) { sortedCopies[s] = list.sorted { $0.key.lexicographicallyPrecedes($1.key) } }
            }
            base.append(base[s] + table.count(of: id))
        }
        share(XattrClasses(self, hash: hash))
    }

    /// Where each xattr of a derived set comes from, in key order: `j ≥ 0` is its base set's
    /// `j`-th (in the base's key order), `-1 - e` the `e`-th entry of its rule. The same for
    /// every set of one base and rule, so kept per (base, rule): `base * rules + rule`.
    private var sources: [Int: [Int]] = [:]
    /// The table's rules, by index.
    private let rules: [[DigestXattrs.Entry]]

    /// A derived set's base set, rule and digest; nil for a list set.
    func derivation(of s: Int) -> (base: Int, rule: Int, digest: Digest)? {
        guard let (base, rule, digest) = table.derivation(of: XattrSetID(rawValue: UInt32(s))) else { return nil }
        return (Int(base.rawValue), rule, digest)
    }

    /// Where each xattr of a derived set of `base` and `rule` comes from, in key order.
    func sources(base: Int, rule: Int) -> [Int] { sources[base * rules.count + rule]! }

    /// A rule's entries.
    func entries(rule: Int) -> [DigestXattrs.Entry] { rules[rule] }

    /// The order of a base's sorted xattrs merged with a rule's entries (no key is in both).
    private static func merge(_ own: [Xattr], _ entries: [DigestXattrs.Entry]) -> [Int] {
        let derived = entries.indices.sorted { entries[$0].key.lexicographicallyPrecedes(entries[$1].key) }
        var result: [Int] = []
        var b = 0, d = 0
        while b < own.count || d < derived.count {
            if d == derived.count || (b < own.count && own[b].key.lexicographicallyPrecedes(entries[derived[d]].key)) {
                result.append(b)
                b += 1
            } else {
                result.append(-1 - derived[d])
                d += 1
            }
        }
        return result
    }

    /// Xattr `i` (in key order) of set `s`, alone: a derived set's list is not made.
    func xattr(set s: Int, at i: Int) -> Xattr {
        if let copy = sortedCopy(s) { return copy[i] }
        guard let (base, rule, digest) = derivation(of: s) else { return table[XattrSetID(rawValue: UInt32(s))][i] }
        let source = sources(base: base, rule: rule)[i]
        if source >= 0 { return (sortedCopy(base) ?? table[XattrSetID(rawValue: UInt32(base))])[source] }
        let entry = rules[rule][-1 - source]
        return Xattr(key: entry.key, value: entry.value(for: digest))
    }

    /// Set `s`'s xattrs sorted by key (a derived set's made afresh: hold it only briefly).
    func list(_ s: Int) -> [Xattr] {
        if let copy = sortedCopy(s) { return copy }
        let id = XattrSetID(rawValue: UInt32(s))
        guard table.isDerived(id) else { return table[id] }
        var list: [Xattr] = []
        var scratch = Xattr(key: [], value: [])
        forEachSorted(s, scratch: &scratch) { list.append($1) }
        return list
    }

    /// Calls `body` with each xattr of set `s` in key order and its index in that order,
    /// without making a derived set's list: its derived values are made in `scratch`, valid
    /// only during the call (pass one across calls, so its buffer is reused).
    func forEachSorted(_ s: Int, scratch: inout Xattr, _ body: (Int, Xattr) -> Void) {
        if let copy = sortedCopy(s) {
            for (i, xattr) in copy.enumerated() { body(i, xattr) }
            return
        }
        guard let (base, rule, digest) = derivation(of: s) else {
            for (i, xattr) in table[XattrSetID(rawValue: UInt32(s))].enumerated() { body(i, xattr) }
            return
        }
        let own = sortedCopy(base) ?? table[XattrSetID(rawValue: UInt32(base))]
        let entries = rules[rule]
        for (i, source) in sources(base: base, rule: rule).enumerated() {
            if source >= 0 {
                body(i, own[source])
            } else {
                let entry = entries[-1 - source]
                scratch.key = entry.key
                entry.value(for: digest, into: &scratch.value)
                body(i, scratch)
            }
        }
    }

    /// Whether the count visits set `s`: every set an inode carries, and every list set, so
    /// that a pair a derived set shares with its base is represented by the base (a derived
    /// set's list is made afresh each time it is read).
    func isCounted(_ s: Int) -> Bool { uses[s] > 0 || !table.isDerived(XattrSetID(rawValue: UInt32(s))) }

    private static func isSorted(_ list: [Xattr]) -> Bool {
        zip(list, list.dropFirst()).allSatisfy { !$1.key.lexicographicallyPrecedes($0.key) }
    }

    /// Whether any inode carries a POSIX ACL (the header's flag).
    private(set) var hasACL = false

    /// Builds the shared table (pairs on more than one inode, sorted descending by key, value
    /// length, value) and each set's body layout.
    private mutating func share(_ classes: XattrClasses) {
        // Each shared pair is fetched once (a derived set's value is made to fetch it).
        let sharedClasses = classes.uses.indices.filter { classes.uses[$0] > 1 }
            .map { (class: $0, xattr: classes.xattr($0, in: self)) }
            .sorted { a, b in
                let x = a.xattr, y = b.xattr
                if x.key != y.key { return y.key.lexicographicallyPrecedes(x.key) }
                if x.value.count != y.value.count { return x.value.count > y.value.count }
                return y.value.lexicographicallyPrecedes(x.value)
            }
        var classOffset = [Int](repeating: -1, count: classes.uses.count)
        for (c, xattr) in sharedClasses {
            classOffset[c] = sharedSize
            shared.append(xattr)
            sharedSize += entrySize(xattr)
        }
        var sharedWord = [UInt32](repeating: Self.inline, count: base[count])
        var bodySize = [UInt32](repeating: 0, count: count)
        var bloom = [UInt32](repeating: 0, count: count)
        var hasACL = false
        var scratch = Xattr(key: [], value: [])
        // A derived set's keys and value lengths are its base's and rule's: its filter, ACL
        // flag and inline entry sizes are worked out once per (base, rule), and no value is made.
        var derivedKeys: [Int: KeyLayout] = [:]
        var last = (key: -1, layout: KeyLayout())
        for s in 0..<count where uses[s] > 0 && base[s + 1] > base[s] {
            var size = ComposefsFormat.xattrBodyHeaderSize, sharedCount = 0
            let first = base[s]
            /// Files xattr `i`: shared (its offset) or inline (`inlineSize` bytes).
            func place(_ i: Int, inlineSize: Int) {
                let offset = classOffset[Int(classes.classOf[first + i])]
                if offset >= 0 && sharedCount < ComposefsFormat.maxSharedXattrsPerInode {
                    sharedWord[first + i] = UInt32(truncatingIfNeeded: offset / 4)
                    sharedCount += 1
                    size += 4
                } else {
                    size += inlineSize
                }
            }
            if sortedCopy(s) == nil, let (b, rule, _) = derivation(of: s) {
                let key = b * rules.count + rule
                if last.key != key {
                    let layout = derivedKeys[key] ?? keyLayout(base: b, rule: rule)
                    derivedKeys[key] = layout
                    last = (key, layout)
                }
                for i in last.layout.sizes.indices { place(i, inlineSize: last.layout.sizes[i]) }
                hasACL = hasACL || last.layout.hasACL
                bodySize[s] = UInt32(size)
                bloom[s] = last.layout.bits ^ 0xFFFF_FFFF
                continue
            }
            var layout = KeyLayout()
            forEachSorted(s, scratch: &scratch) { i, xattr in
                layout.add(key: xattr.key, valueLength: xattr.value.count)
                place(i, inlineSize: layout.sizes[i])
            }
            hasACL = hasACL || layout.hasACL
            bodySize[s] = UInt32(size)
            bloom[s] = layout.bits ^ 0xFFFF_FFFF
        }
        self.sharedWord = sharedWord
        self.bodySize = bodySize
        self.bloom = bloom
        self.hasACL = hasACL
    }
}

/// What a set's keys decide of its body: the name filter's bits, whether it carries a POSIX
/// ACL, and each xattr's entry size when inline (in key order).
struct KeyLayout {
    var bits: UInt32 = 0
    var hasACL = false
    var sizes: [Int] = []

    mutating func add(key: [UInt8], valueLength: Int) {
        let (prefixIndex, prefixLength) = namePrefix(key)
        if prefixIndex == 2 || prefixIndex == 3 { hasACL = hasACL || prefixLength == key.count }
        let seed = ComposefsFormat.xattrFilterSeed &+ UInt32(prefixIndex)
        let name = key[prefixLength...]
        bits |= 1 << (XXHash32.hash(name.span, seed: seed) & 31)
        sizes.append(entrySize(key: key, valueLength: valueLength))
    }
}

extension XattrSets {
    /// The key layout of every derived set of `base` and `rule`.
    fileprivate func keyLayout(base: Int, rule: Int) -> KeyLayout {
        let own = sortedCopy(base) ?? table[XattrSetID(rawValue: UInt32(base))]
        var layout = KeyLayout()
        for source in sources(base: base, rule: rule) {
            if source >= 0 {
                layout.add(key: own[source].key, valueLength: own[source].value.count)
            } else {
                let entry = rules[rule][-1 - source]
                layout.add(key: entry.key, valueLength: entry.valueLength)
            }
        }
        return layout
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
        classOf = [Int32](repeating: -1, count: sets.base[sets.count])
        if !countByHash(sets, hash: hash) {
            countedExactly = true
            countExactly(sets)
        }
    }

    func xattr(_ c: Int, in sets: XattrSets) -> Xattr {
        let (s, i) = representative[c]
        return sets.xattr(set: Int(s), at: Int(i))
    }

    /// The fast count; false when two different pairs share a hash.
    ///
    /// A derived set's xattrs from its base take the base's classes (the base, a list set, is
    /// counted first); only its own values are hashed.
    private mutating func countByHash(_ sets: XattrSets, hash pairHash: (Xattr) -> UInt64) -> Bool {
        // The pairs hashed: a derived set's pairs from its base are not.
        var hashed = 0
        for s in 0..<sets.count where sets.isCounted(s) {
            let fromBase = sets.derivation(of: s).map { s in sets.sources(base: s.base, rule: s.rule).count { $0 >= 0 }
            }
            hashed += sets.base[s + 1] - sets.base[s] - (fromBase ?? 0)
        }
        // Two slots per three pairs at most; a slot is picked from the hash's low half by a
        // multiply (no power-of-two size), and a probe wraps to slot 0.
        guard hashed < Int(UInt32.max) else { return false }  // a class must fit a slot's low half
        let capacity = max(16, hashed + hashed / 2)
        uses.reserveCapacity(hashed)
        representative.reserveCapacity(hashed)
        // Per slot: a class + 1 in the low 32 bits (0: empty) and the high half of its
        // pair's hash above, so a probe reads one word.
        var slots = [UInt64](repeating: 0, count: capacity)
        func slotOf(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: ((hash & 0xFFFF_FFFF) &* UInt64(capacity)) >> 32) }
        /// Files the pair of `hash` at flat position `p` (xattr `i` of set `s`, made by
        /// `xattr` only to compare it); false on a collision.
        func add(_ hash: UInt64, at p: Int, set s: Int, index i: Int, _ xattr: () -> Xattr) -> Bool {
            let tag = hash & 0xFFFF_FFFF_0000_0000
            var slot = slotOf(hash)
            while true {
                let word = slots[slot]
                if word == 0 {
                    slots[slot] = tag | UInt64(uses.count + 1)
                    classOf[p] = Int32(uses.count)
                    uses.append(sets.uses[s])
                    representative.append((Int32(s), Int32(i)))
                    return true
                }
                if word & 0xFFFF_FFFF_0000_0000 == tag {
                    let c = Int(word & 0xFFFF_FFFF) - 1
                    guard self.xattr(c, in: sets) == xattr() else { return false }
                    classOf[p] = Int32(c)
                    uses[c] += sets.uses[s]
                    return true
                }
                slot = slot + 1 == capacity ? 0 : slot + 1
            }
        }
        // Derived pairs are hashed in batches and their first slots read together before
        // they are filed: the reads miss the cache, and independent ones overlap.
        var batch: [(hash: UInt64, position: Int, set: Int, index: Int)] = []
        batch.reserveCapacity(Self.batchSize)
        var touched: UInt64 = 0
        func fileBatch() -> Bool {
            for pair in batch { touched |= slots[slotOf(pair.hash)] }
            for pair in batch {
                guard
                    add(
                        pair.hash, at: pair.position, set: pair.set, index: pair.index,
                        { sets.xattr(set: pair.set, at: pair.index) })
                else { return false }
            }
            batch.removeAll(keepingCapacity: true)
            return true
        }
        // The base and rule of the last derived set and its sources, and per entry of the
        // rule an xattr whose value is remade for each set.
        var last = (base: -1, rule: -1)
        var sources: [Int] = [], entries: [DigestXattrs.Entry] = [], scratch: [Xattr] = []
        for s in 0..<sets.count where sets.isCounted(s) {
            let first = sets.base[s]
            guard let (base, rule, digest) = sets.derivation(of: s) else {
                guard fileBatch() else { return false }  // in order: classes are numbered as met
                for (i, xattr) in sets.list(s).enumerated() {
                    guard add(pairHash(xattr), at: first + i, set: s, index: i, { xattr }) else { return false }
                }
                continue
            }
            if last != (base, rule) {
                if last.rule != rule {
                    entries = sets.entries(rule: rule)
                    scratch = entries.map { Xattr(key: $0.key, value: []) }
                }
                last = (base, rule)
                sources = sets.sources(base: base, rule: rule)
            }
            let baseFirst = sets.base[base]
            for i in sources.indices {
                let source = sources[i]
                if source >= 0 {
                    let c = Int(classOf[baseFirst + source])
                    classOf[first + i] = Int32(c)
                    uses[c] += sets.uses[s]
                } else {
                    let e = -1 - source
                    entries[e].value(for: digest, into: &scratch[e].value)
                    batch.append((pairHash(scratch[e]), first + i, s, i))
                }
            }
            if batch.count >= Self.batchSize { guard fileBatch() else { return false } }
        }
        guard fileBatch() else { return false }
        // (The reads above only warm the cache; this keeps them from being dropped.)
        if touched == UInt64.max { representative.reserveCapacity(0) }
        return true
    }

    /// Derived pairs hashed before their slots are read.
    static let batchSize = 32

    private mutating func countExactly(_ sets: XattrSets) {
        uses = []
        representative = []
        classOf = [Int32](repeating: -1, count: classOf.count)
        var classes: [Xattr: Int32] = [:]
        var scratch = Xattr(key: [], value: [])
        for s in 0..<sets.count where sets.isCounted(s) {
            let first = sets.base[s], setUses = sets.uses[s]
            sets.forEachSorted(s, scratch: &scratch) { i, xattr in
                let c = classes[xattr] ?? Int32(uses.count)
                if c == uses.count {
                    classes[xattr] = c
                    uses.append(0)
                    representative.append((Int32(s), Int32(i)))
                }
                classOf[first + i] = c
                uses[Int(c)] += setUses
            }
        }
    }
}

/// A 64-bit hash of an xattr's key and value (a multiply-xorshift mix, eight bytes a step).
/// Only a prefilter: equal hashes are always compared byte for byte.
func pairHash(_ xattr: Xattr) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(xattr.key.count) << 32 ^ UInt64(xattr.value.count)
    mixBytes(xattr.key.span, into: &h)
    h = mix(h, 0xFF)
    mixBytes(xattr.value.span, into: &h)
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
private func mixBytes(_ span: Span<UInt8>, into h: inout UInt64) {
    let bytes = span.bytes
    var i = 0
    let n = span.count
    while i + 8 <= n {
        h = mix(h, bytes.unsafeLoadUnaligned(fromByteOffset: i, as: UInt64.self))
        i += 8
    }
    if i < n {
        var last: UInt64 = 0
        for k in i..<n { last = last << 8 | UInt64(span[k]) }
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
func entrySize(_ xattr: Xattr) -> Int { entrySize(key: xattr.key, valueLength: xattr.value.count) }

func entrySize(key: [UInt8], valueLength: Int) -> Int {
    roundUp(4 + key.count - namePrefix(key).length + valueLength, 4)
}
