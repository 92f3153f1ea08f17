import Dispatch

/// Builds an ``Image`` entry by entry, in any order; ``build()`` sorts every directory and
/// rejects duplicate names.
public struct ImageBuilder: Sendable {
    private var image: Image

    /// Starts an image whose root has the given (directory) inode.
    public init(root: Inode) throws(ModelError) {
        guard root.type == .directory else { throw .rootNotDirectory }
        image = Image(
            names: [],
            records: [EntryRecord(nameStart: 0, nameLength: 0, parent: .root, inode: InodeID(0), children: [])],
            inodes: [root],
            primaries: [.root],
            xattrTable: XattrTable()
        )
    }

    public var entryCount: Int { image.records.count }

    /// Reserves room for about `count` entries.
    public mutating func reserveCapacity(entries count: Int) {
        image.records.reserveCapacity(count)
        image.inodes.reserveCapacity(count)
        image.primaries.reserveCapacity(count)
        image.names.reserveCapacity(count * 12)
    }

    /// Interns an xattr list (keep its order; keys should be unique).
    public mutating func internXattrs(_ xattrs: [Xattr]) -> XattrSetID { image.xattrTable.intern(xattrs) }

    /// The xattrs of an interned set.
    public func xattrs(_ id: XattrSetID) -> [Xattr] { image.xattrTable[id] }

    public func inodeID(of entry: EntryID) -> InodeID { image.inodeID(of: entry) }
    public func inode(of entry: EntryID) -> Inode { image.inode(of: entry) }
    public subscript(inode id: InodeID) -> Inode { image.inodes[id.index] }

    /// The child of `directory` called `name` (a linear scan: children are sorted only by
    /// `build()`).
    public func child(named name: some Collection<UInt8>, in directory: EntryID) -> EntryID? {
        image.records[directory.index].children.first { image.name(of: $0).elementsEqual(name) }
    }

    /// Name → entry for every child of `directory` so far (the first of equal names), for
    /// callers that look up many names in one directory.
    public func childIndex(of directory: EntryID) -> [[UInt8]: EntryID] {
        var index: [[UInt8]: EntryID] = [:]
        for child in image.records[directory.index].children where index[Array(image.name(of: child))] == nil {
            index[Array(image.name(of: child))] = child
        }
        return index
    }

    /// Changes an inode in place.
    public mutating func updateInode(_ id: InodeID, _ body: (inout Inode) -> Void) {
        body(&image.inodes[id.index])
    }

    /// Adds an entry with a new inode under `parent`.
    @discardableResult
    public mutating func add(name: [UInt8], in parent: EntryID, inode: consuming Inode) throws(ModelError) -> EntryID {
        try add(name: name[...], in: parent, inode: inode)
    }

    /// Adds an entry with a new inode under `parent` (`validated`: the name is known to be a
    /// valid one, as every name of an image is).
    @discardableResult
    public mutating func add(
        name: ArraySlice<UInt8>, in parent: EntryID, inode: consuming Inode, validated: Bool = false
    ) throws(ModelError) -> EntryID {
        let inodeID = InodeID(image.inodes.count)
        let entry = try addRecord(name: name, parent: parent, inode: inodeID, validated: validated)
        image.inodes.append(inode)
        image.primaries.append(entry)
        return entry
    }

    /// Adds an entry under `parent` that is another name (hard link) of an existing inode.
    @discardableResult
    public mutating func addHardLink(name: [UInt8], in parent: EntryID, to inode: InodeID) throws(ModelError) -> EntryID
    {
        guard image.inodes[inode.index].type != .directory else { throw .hardLinkToDirectory(inode: inode) }
        return try addRecord(name: name[...], parent: parent, inode: inode)
    }

    /// Makes `entry` the primary path of its inode.
    public mutating func makePrimary(_ entry: EntryID) {
        image.primaries[image.records[entry.index].inode.index] = entry
    }

    /// Sorts every directory by name and returns the image; fails on duplicate names.
    public consuming func build() throws(ModelError) -> Image {
        var image = self.image
        let sorted = try Self.sortedChildLists(names: image.names, records: image.records)
        for (index, children) in sorted { image.records[index].children = children }
        return image
    }

    /// Every directory's children sorted by name (lists of 0 or 1 are left out).
    private static func sortedChildLists(names: [UInt8], records: [EntryRecord]) throws(ModelError) -> [(
        Int, [EntryID]
    )] {
        func name(_ id: EntryID) -> ArraySlice<UInt8> {
            let record = records[id.index]
            return names[Int(record.nameStart)..<Int(record.nameStart) + Int(record.nameLength)]
        }
        var result: [(Int, [EntryID])] = []
        for index in records.indices where records[index].children.count > 1 {
            // Most lists come in order (dumps and copies are sorted): strictly increasing
            // means sorted and without duplicates.
            let list = records[index].children
            if zip(list, list.dropFirst()).allSatisfy({ compareBytes(name($0), name($1)) < 0 }) { continue }
            let children = list.sorted { a, b in
                let order = compareBytes(name(a), name(b))
                return order < 0 || (order == 0 && a < b)
            }
            for (a, b) in zip(children, children.dropFirst()) where name(a) == name(b) {
                throw .duplicateName(directory: EntryID(index), name: Array(name(a)), first: a, second: b)
            }
            result.append((index, children))
        }
        return result
    }

    fileprivate mutating func addRecord(
        name: ArraySlice<UInt8>, parent: EntryID, inode: InodeID, validated: Bool = false
    ) throws(ModelError) -> EntryID {
        if !validated { try Self.validate(name: name) }
        guard image.inodes[image.records[parent.index].inode.index].type == .directory else {
            throw .parentNotDirectory(parent: parent)
        }
        let entry = EntryID(image.records.count)
        let start = image.names.count
        image.names.append(contentsOf: name)
        image.records.append(
            EntryRecord(
                nameStart: UInt32(start), nameLength: UInt16(name.count), parent: parent, inode: inode, children: []))
        image.records[parent.index].children.append(entry)
        return entry
    }

    /// Checks that `name` can be a path component: 1…255 bytes, no `/` or NUL, not `.`/`..`.
    public static func validate(name: ArraySlice<UInt8>) throws(ModelError) {
        let count = name.count
        if count == 0 { throw .invalidName(name: [], reason: "empty path component") }
        if count > Limits.maxNameLength {
            throw .invalidName(name: Array(name), reason: "\(count) bytes, longer than \(Limits.maxNameLength)")
        }
        for byte in name where byte == UInt8(ascii: "/") || byte == 0 {
            throw .invalidName(name: Array(name), reason: byte == 0 ? "contains a NUL byte" : "contains '/'")
        }
        if (count == 1 || count == 2) && name.first == UInt8(ascii: ".") && name.last == UInt8(ascii: ".") {
            throw .invalidName(name: Array(name), reason: "'.' and '..' are not names")
        }
    }
}

extension ImageBuilder {
    /// Starts a builder holding a copy of `image`, for passes that turn one model into another.
    ///
    /// Entries are copied depth-first; an entry for which `keep` returns false is left out with
    /// its subtree. Xattr sets of inodes for which `isUnique` (asked after `transform`) returns
    /// true are stored without deduplication. `transform` sees each inode once (at its primary path, or at the first kept
    /// path) with its xattrs as a list, and may change both. Hard links and primary paths are
    /// preserved.
    public init(
        copying image: Image,
        keep: (EntryID) -> Bool = { _ in true },
        isUnique: (Inode) -> Bool = { _ in false },
        transform: (EntryID, inout Inode, inout [Xattr]) throws -> Void
    ) throws {
        var root = image.inode(of: .root)
        var rootXattrs = image.xattrs(of: root)
        try transform(.root, &root, &rootXattrs)
        root.xattrs = .empty
        var builder = try ImageBuilder(root: root)
        let rootXattrID = builder.internXattrs(rootXattrs)
        builder.updateInode(InodeID(0)) { $0.xattrs = rootXattrID }
        // Old id → new id, indexed by the old id (nil: not copied yet / left out).
        var inodeMap = [InodeID?](repeating: nil, count: image.inodeCount)
        var entryMap = [EntryID?](repeating: nil, count: image.entryCount)
        inodeMap[image.inodeID(of: .root).index] = InodeID(0)
        entryMap[EntryID.root.index] = .root
        builder.reserveCapacity(entries: image.entryCount)
        var sets = XattrRemap(sourceSets: image.xattrTable.count)
        var stack = image.children(of: .root).reversed().map { $0 }
        while let entry = stack.popLast() {
            guard keep(entry), let parent = entryMap[image.parent(of: entry).index] else { continue }
            let oldInode = image.inodeID(of: entry)
            let name = image.name(of: entry)
            let copied: EntryID
            if let existing = inodeMap[oldInode.index] {
                copied = try builder.addRecord(name: name, parent: parent, inode: existing, validated: true)
            } else {
                var inode = image[inode: oldInode]
                let oldSet = inode.xattrs
                let original = image.xattrTable[oldSet]
                var xattrs = original
                try transform(entry, &inode, &xattrs)
                inode.xattrs = sets.store(
                    xattrs, transformedFrom: original, set: oldSet, unique: isUnique(inode),
                    in: &builder.image.xattrTable)
                copied = try builder.add(name: name, in: parent, inode: inode, validated: true)
                inodeMap[oldInode.index] = builder.inodeID(of: copied)
            }
            if image.isPrimary(entry) { builder.makePrimary(copied) }
            entryMap[entry.index] = copied
            stack.append(contentsOf: image.children(of: entry).reversed())
        }
        self = builder
    }

    /// Starts a builder from `image` itself, for passes that change inodes and xattrs but keep
    /// the tree (entries may be added after): the same entries, names, hard links and primary
    /// paths, and inode ids. Nothing of the tree is copied.
    ///
    /// `transform` sees each inode once, in inode order, with its primary entry and its xattrs
    /// as a list, and may change both (a type must stay a type… or become another that keeps
    /// the tree valid). The xattr table is made afresh; the sets of inodes for which `isUnique`
    /// (asked after `transform`) is true are stored without deduplication.
    ///
    /// With `deriving`, an inode for which its `digest` gives one carries the transformed list
    /// followed by its `xattrs` made from that digest, stored as the digest (see
    /// ``XattrTable/append(base:deriving:from:)``).
    ///
    /// With `jobs` > 1 the transform runs on that many threads, over batches of inodes; the
    /// sets are then stored in inode order, so the result (and the first error, in inode
    /// order) is the same for any number.
    public init(
        rewriting image: consuming Image,
        jobs: Int = 1,
        isUnique: (Inode) -> Bool = { _ in false },
        deriving derived: Derivation? = nil,
        transform: @Sendable (EntryID, inout Inode, inout [Xattr]) throws -> Void
    ) throws {
        var image = image
        let old = image.xattrTable
        image.xattrTable = XattrTable()
        var sets = XattrRemap(sourceSets: old.count)
        let parts = min(max(1, jobs), 256)
        let batch = 16_384 * parts
        var batchStart = 0
        while batchStart < image.inodes.count {
            let batchEnd = min(image.inodes.count, batchStart + batch)
            // The workers share the inodes only until they are done: the writes below then
            // change them in place, not a copy.
            let results = RewrittenInodes.run(
                image.inodes, image.primaries, old, batchStart..<batchEnd, parts: parts, transform)
            for part in results {
                var nextChanged = 0
                for k in part.xattrs.indices {
                    let index = part.range.lowerBound + k
                    let oldSet = image.inodes[index].xattrs
                    // Most inodes come back as they were: only the changed ones are copied in.
                    if nextChanged < part.changed.count, part.changed[nextChanged].offset == k {
                        image.inodes[index] = part.changed[nextChanged].inode
                        nextChanged += 1
                    }
                    let original = old[oldSet]
                    let xattrs = part.xattrs[k] ?? original
                    let inode = image.inodes[index]
                    let set: XattrSetID
                    if let derived, let digest = derived.digest(inode) {
                        let base = sets.store(
                            xattrs, transformedFrom: original, set: oldSet, unique: false, in: &image.xattrTable)
                        set = image.xattrTable.append(base: base, deriving: derived.xattrs, from: digest)
                    } else {
                        set = sets.store(
                            xattrs, transformedFrom: original, set: oldSet, unique: isUnique(inode),
                            in: &image.xattrTable)
                    }
                    image.inodes[index].xattrs = set
                }
                if let error = part.error { throw error }
            }
            batchStart = batchEnd
        }
        self.image = image
    }

    /// The xattrs of an inode (resolved from its interned set).
    public func xattrs(of inode: InodeID) -> [Xattr] { xattrs(self[inode: inode].xattrs) }

    /// Replaces an inode's xattrs.
    public mutating func setXattrs(_ xattrs: [Xattr], of inode: InodeID) {
        let id = internXattrs(xattrs)
        updateInode(inode) { $0.xattrs = id }
    }
}

/// Xattrs a rewriting pass derives from a digest of each inode that has one (the overlay
/// translation's metacopy and redirect of a stub), stored as the digest.
public struct Derivation {
    public var xattrs: DigestXattrs
    /// The digest an inode's derived xattrs are made from, or nil: the inode has none.
    public var digest: (Inode) -> Digest?

    public init(_ xattrs: DigestXattrs, digest: @escaping (Inode) -> Digest?) {
        self.xattrs = xattrs
        self.digest = digest
    }
}

/// Where the transformed xattr lists of a copying or rewriting pass go in the new table: a
/// unique set (a stub's) is appended without a lookup; a list the pass left as it was keeps
/// the id its source set got the first time; anything else is interned.
private struct XattrRemap {
    /// Per source set: the id an unchanged copy of it got (nil: none yet).
    private var ids: [XattrSetID?]

    init(sourceSets count: Int) { ids = [XattrSetID?](repeating: nil, count: count) }

    mutating func store(
        _ xattrs: [Xattr], transformedFrom original: [Xattr], set source: XattrSetID, unique: Bool,
        in table: inout XattrTable
    ) -> XattrSetID {
        if unique { return table.append(xattrs) }
        let unchanged = xattrs == original
        if unchanged, let id = ids[Int(source.rawValue)] { return id }
        let id = table.intern(xattrs)
        if unchanged { ids[Int(source.rawValue)] = id }
        return id
    }
}

/// One part of a batch of inodes, transformed on a thread of its own: the inodes and xattr
/// lists up to the first that failed, and that failure.
private final class RewrittenInodes: @unchecked Sendable {
    let range: Range<Int>
    /// The inodes the transform changed, by offset in `range`, in order.
    var changed: [(offset: Int, inode: Inode)] = []
    /// Per inode: its transformed xattrs, or nil where they are its set's list as it was.
    var xattrs: [[Xattr]?] = []
    var error: (any Error)?

    init(range: Range<Int>) { self.range = range }

    static func run(
        _ inodes: [Inode], _ primaries: [EntryID], _ table: XattrTable, _ batch: Range<Int>, parts: Int,
        _ transform: @Sendable (EntryID, inout Inode, inout [Xattr]) throws -> Void
    ) -> [RewrittenInodes] {
        let size = (batch.count + parts - 1) / parts
        let results = stride(from: batch.lowerBound, to: batch.upperBound, by: size).map {
            RewrittenInodes(range: $0..<min($0 + size, batch.upperBound))
        }
        @Sendable func work(_ p: Int) {
            let part = results[p]
            // Filled as locals, then handed over: a class's properties would be checked for
            // exclusive access at run time on every append.
            var changed: [(offset: Int, inode: Inode)] = []
            var lists: [[Xattr]?] = []
            lists.reserveCapacity(part.range.count)
            defer { (part.changed, part.xattrs) = (changed, lists) }
            for index in part.range {
                let original = inodes[index]
                var inode = original
                let originalXattrs = table[inode.xattrs]
                var xattrs = originalXattrs
                do {
                    try transform(primaries[index], &inode, &xattrs)
                } catch {
                    part.error = error
                    return
                }
                if inode != original { changed.append((index - part.range.lowerBound, inode)) }
                // (Equal lists that share storage compare without reading their elements.)
                lists.append(xattrs == originalXattrs ? nil : xattrs)
            }
        }
        if results.count == 1 {
            work(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: results.count) { work($0) }
        }
        return results
    }
}
