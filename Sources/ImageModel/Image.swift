/// Identifies one name in the tree (a path). Hard links are several entries of one inode.
public struct EntryID: Hashable, Sendable, Comparable {
    public let rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ index: Int) { self.rawValue = UInt32(index) }
    public var index: Int { Int(rawValue) }
    /// The root directory is always entry 0.
    public static let root = EntryID(UInt32(0))
    public static func < (a: EntryID, b: EntryID) -> Bool { a.rawValue < b.rawValue }
}

/// Identifies one inode in the image's inode table.
public struct InodeID: Hashable, Sendable, Comparable {
    public let rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ index: Int) { self.rawValue = UInt32(index) }
    public var index: Int { Int(rawValue) }
    public static func < (a: InodeID, b: InodeID) -> Bool { a.rawValue < b.rawValue }
}

/// Per-entry storage. Names live in one shared byte arena so a large model costs a few
/// dozen bytes per entry rather than an array allocation per name.
struct EntryRecord: Sendable {
    var nameStart: UInt32
    var nameLength: UInt16
    var parent: EntryID
    var inode: InodeID
    /// Child entries (directories only), sorted by name bytes once the image is built.
    var children: [EntryID]
}

/// The image model: a tree of named entries over a table of inodes.
///
/// Pure data, no I/O. Children are kept sorted by the raw bytes of their names, which is the
/// order composefs, squashfs and every dump use. Hard links are several entries sharing an
/// inode; one of them is the inode's *primary* path (the full line in a dump, the inode's
/// position in a composefs image). Directory link counts are derived, never stored.
///
/// Build one with ``ImageBuilder``. Two images are equal when they describe the same tree:
/// the same names, inodes (xattrs compared by value), hard-link groups and primary paths,
/// whatever order they were built in.
public struct Image: Sendable {
    var names: [UInt8]
    var records: [EntryRecord]
    public internal(set) var inodes: [Inode]
    var primaries: [EntryID]
    public internal(set) var xattrTable: XattrTable

    /// Number of entries (paths), root and every hard link included.
    public var entryCount: Int { records.count }

    /// Changes every inode in place (their content and metadata; a type must stay a type).
    public mutating func updateInodes(_ body: (inout Inode) throws -> Void) rethrows {
        for index in inodes.indices {
            let type = inodes[index].type
            try body(&inodes[index])
            precondition(inodes[index].type == type, "updateInodes changed an inode's type")
        }
    }
    /// Number of inodes (hard links counted once).
    public var inodeCount: Int { inodes.count }
    public var root: EntryID { .root }

    /// Every entry id, in creation order.
    public var entryIDs: [EntryID] { (0..<records.count).map(EntryID.init) }

    /// The inode an entry names.
    public func inodeID(of entry: EntryID) -> InodeID { records[entry.index].inode }

    /// The inode an entry names.
    public func inode(of entry: EntryID) -> Inode { inodes[records[entry.index].inode.index] }

    /// An inode, lent where it lies: read a field of it, or pass it as an argument, and it is
    /// not copied (a copy retains each array it holds).
    public subscript(inode id: InodeID) -> Inode {
        _read { yield inodes[id.index] }
    }

    /// An inode's type (without copying the inode).
    public func fileType(of id: InodeID) -> FileType { inodes[id.index].type }

    /// The type of the inode an entry names (without copying the inode).
    public func fileType(of entry: EntryID) -> FileType { inodes[records[entry.index].inode.index].type }

    /// Whether an entry is a whiteout (a 0/0 character device), read in place.
    public func isWhiteout(_ entry: EntryID) -> Bool {
        let index = records[entry.index].inode.index
        return inodes[index].type == .charDevice && inodes[index].rdev == 0
    }

    /// Whether an inode is a regular file with at least one byte of inline content, read in
    /// place (a validated model's inline content is `size` bytes).
    public func hasInlineContent(_ id: InodeID) -> Bool {
        guard inodes[id.index].type == .regular, inodes[id.index].size > 0 else { return false }
        if case .inline = inodes[id.index].data { return true }
        return false
    }

    /// The entry's name (empty for the root).
    public func name(of entry: EntryID) -> ArraySlice<UInt8> {
        let record = records[entry.index]
        let start = Int(record.nameStart)
        return names[start..<start + Int(record.nameLength)]
    }

    /// The entry's parent directory (the root is its own parent).
    public func parent(of entry: EntryID) -> EntryID { records[entry.index].parent }

    /// The children of a directory entry, sorted by name bytes.
    public func children(of entry: EntryID) -> [EntryID] { records[entry.index].children }

    /// The primary path of an inode.
    public func primaryEntry(of inode: InodeID) -> EntryID { primaries[inode.index] }

    /// Whether `entry` is its inode's primary path (false for the extra paths of hard links).
    public func isPrimary(_ entry: EntryID) -> Bool { primaries[records[entry.index].inode.index] == entry }

    /// The xattrs of an inode, in their recorded order.
    public func xattrs(of inode: Inode) -> [Xattr] { xattrTable[inode.xattrs] }

    /// The link count: recorded for non-directories; `2 + subdirectories` for directories.
    public func nlink(of id: InodeID) -> UInt32 {
        guard inodes[id.index].type == .directory else { return inodes[id.index].nlink }
        let entry = primaries[id.index]
        var count: UInt32 = 2
        for child in records[entry.index].children where fileType(of: child) == .directory {
            count += 1
        }
        return count
    }

    /// The absolute path of an entry, `/` for the root.
    public func path(of entry: EntryID) -> [UInt8] { paths.path(of: entry) }

    /// Display form of a path (invalid UTF-8 replaced), for messages.
    public func displayPath(of entry: EntryID) -> String { String(decoding: path(of: entry), as: UTF8.self) }

    /// The tree's names alone, to name entries in messages without holding on to the inodes
    /// (a pass that rewrites the inodes in place must not share them).
    public var paths: EntryPaths { EntryPaths(names: names, records: records) }

    /// The child of `directory` called `name`, by binary search.
    public func child(named name: some Collection<UInt8>, in directory: EntryID) -> EntryID? {
        let children = records[directory.index].children
        let key = Array(name)
        var low = 0, high = children.count
        while low < high {
            let mid = (low + high) / 2
            let order = compareBytes(self.name(of: children[mid]), key)
            if order == 0 { return children[mid] }
            if order < 0 { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    /// The entry at an absolute path (`/` is the root; repeated slashes are not accepted).
    public func lookup(path: some Collection<UInt8>) -> EntryID? {
        var current = EntryID.root
        for component in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            guard inode(of: current).type == .directory,
                let next = child(named: component, in: current)
            else { return nil }
            current = next
        }
        return current
    }

    /// Visits every entry depth-first (pre-order), children in name order.
    public func forEachDepthFirst(_ body: (EntryID) throws -> Void) rethrows {
        var stack: [EntryID] = [.root]
        while let entry = stack.popLast() {
            try body(entry)
            stack.append(contentsOf: records[entry.index].children.reversed())
        }
    }

    /// Every entry in depth-first pre-order, children in name order (the order of a dump).
    public var depthFirstOrder: [EntryID] {
        var order: [EntryID] = []
        order.reserveCapacity(records.count)
        forEachDepthFirst { order.append($0) }
        return order
    }
}

extension Image: Equatable {
    public static func == (a: Image, b: Image) -> Bool {
        guard a.entryCount == b.entryCount, a.inodeCount == b.inodeCount else { return false }
        var inodeMap: [InodeID: InodeID] = [:]
        var stack: [(EntryID, EntryID)] = [(.root, .root)]
        while let (x, y) = stack.popLast() {
            guard a.name(of: x) == b.name(of: y), a.isPrimary(x) == b.isPrimary(y) else { return false }
            let (ix, iy) = (a.inodeID(of: x), b.inodeID(of: y))
            if let mapped = inodeMap[ix] {
                guard mapped == iy else { return false }
                continue
            }
            inodeMap[ix] = iy
            var nx = a[inode: ix], ny = b[inode: iy]
            guard a.xattrs(of: nx) == b.xattrs(of: ny) else { return false }
            nx.xattrs = .empty
            ny.xattrs = .empty
            if nx.type == .directory {
                nx.nlink = 0
                ny.nlink = 0
            }
            guard nx == ny else { return false }
            let (cx, cy) = (a.children(of: x), b.children(of: y))
            guard cx.count == cy.count else { return false }
            stack.append(contentsOf: zip(cx, cy).map { ($0, $1) })
        }
        return true
    }
}

/// Compares two byte strings like `memcmp` then length: the order of names in directories.
@inline(__always)
public func compareBytes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Int {
    let x = a.span, y = b.span
    let common = min(x.count, y.count)
    var i = 0
    while i < common {
        let p = x[i], q = y[i]
        if p != q { return p < q ? -1 : 1 }
        i += 1
    }
    return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
}

/// Compares two byte strings like `memcmp` then length: the order of names in directories.
@inline(__always)
public func compareBytes(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Int {
    var ia = a.makeIterator(), ib = b.makeIterator()
    while true {
        switch (ia.next(), ib.next()) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case let (x?, y?): if x != y { return x < y ? -1 : 1 }
        }
    }
}

extension Image {
    /// This image with each hard-linked inode's primary path set to its first path in
    /// depth-first order — all that a filesystem image can tell when it is read back.
    public func withFirstPathsPrimary() -> Image {
        var copy = self
        var seen = Set<InodeID>()
        forEachDepthFirst { entry in
            let id = inodeID(of: entry)
            if seen.insert(id).inserted { copy.primaries[id.index] = entry }
        }
        return copy
    }
}

/// The names of an image's entries, apart from its inodes: see ``Image/paths``.
public struct EntryPaths: Sendable {
    let names: [UInt8]
    let records: [EntryRecord]

    /// The absolute path of an entry, `/` for the root.
    public func path(of entry: EntryID) -> [UInt8] {
        if entry == .root { return [UInt8(ascii: "/")] }
        var chain: [EntryID] = []
        var current = entry
        while current != .root {
            chain.append(current)
            current = records[current.index].parent
        }
        var path: [UInt8] = []
        for id in chain.reversed() {
            let record = records[id.index]
            path.append(UInt8(ascii: "/"))
            path.append(contentsOf: names[Int(record.nameStart)..<Int(record.nameStart) + Int(record.nameLength)])
        }
        return path
    }

    /// Display form of an entry's absolute path (invalid UTF-8 replaced), for messages.
    public func displayPath(of entry: EntryID) -> String { String(decoding: path(of: entry), as: UTF8.self) }
}
