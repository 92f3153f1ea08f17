/// The one check every model passes before a writer sees it, whatever its source (a dump, a
/// directory, a `.cfs`, a `.sqfs`, a disk): what each format and the objects store can hold,
/// so that no reader lets through what a writer would trap on or write wrongly, and no writer
/// emits what its own reader refuses.
///
/// Readers keep their own, better-placed messages (a dump names its line); this is the
/// backstop that holds for every source, and the only check for sources that have no such
/// messages (images read back, directory trees).
extension Image {
    /// Throws the first entry that breaks a model invariant, by path.
    public func validate() throws(ModelError) {
        try checkPathLengths()
        var checkedSets = [Bool](repeating: false, count: xattrTable.count)
        for index in inodes.indices {
            // The inode is read where it lies (a copy per inode retained its data).
            if let reason = Self.problem(with: inodes[index]) {
                throw .invalidEntry(path: displayPath(of: primaries[index]), reason: reason)
            }
            let set = Int(inodes[index].xattrs.rawValue)
            guard !checkedSets[set] else { continue }
            if let reason = Self.problem(withXattrs: xattrTable[inodes[index].xattrs]) {
                throw .invalidEntry(path: displayPath(of: primaries[index]), reason: reason)
            }
            checkedSets[set] = true
        }
    }

    /// Every path within `Limits.maxPathLength`: lengths summed down the tree, iteratively.
    func checkPathLengths() throws(ModelError) {
        var stack: [(EntryID, Int)] = [(.root, 0)]
        while let (entry, length) = stack.popLast() {
            for child in records[entry.index].children {
                let childLength = length + 1 + Int(records[child.index].nameLength)
                guard childLength <= Limits.maxPathLength else {
                    throw .invalidEntry(
                        path: String(decoding: path(of: child).prefix(200), as: UTF8.self) + "…",
                        reason: "path of \(childLength) bytes, longer than \(Limits.maxPathLength)")
                }
                stack.append((child, childLength))
            }
        }
    }

    /// Why `inode` cannot be in a model (nil when it can), apart from its xattrs.
    static func problem(with inode: Inode) -> String? {
        guard inode.mtime.nanoseconds < 1_000_000_000 else {
            return "mtime nanoseconds \(inode.mtime.nanoseconds) must be below 1000000000"
        }
        // By type, then data (a tuple of both would copy the data).
        switch inode.type {
        case .regular:
            switch inode.data {
            case .inline(let content):
                guard content.count <= Limits.maxInlineContentLength else {
                    return "\(content.count) bytes of inline content, more than \(Limits.maxInlineContentLength)"
                }
                guard UInt64(content.count) == inode.size else {
                    return "inline content of \(content.count) bytes for a size of \(inode.size)"
                }
            case .external(let object):
                guard inode.size <= Limits.maxExternalFileSize else {
                    return "\(inode.size) bytes, larger than the composefs maximum of 2^53"
                }
                if case .path(let bytes) = object.payload, let reason = Payload.problem(with: bytes) { return reason }
            case .none, .symlink:
                return "a regular file without content"
            }
        case .symlink:
            guard case .symlink(let target) = inode.data else { return "a symlink without a target" }
            guard !target.isEmpty, target.count <= Limits.maxSymlinkTargetLength else {
                return "symlink target of \(target.count) bytes (1…\(Limits.maxSymlinkTargetLength))"
            }
            guard !target.contains(0) else { return "symlink target contains a NUL byte" }
            guard inode.size == UInt64(target.count) else {
                return "symlink size \(inode.size) differs from its target's length \(target.count)"
            }
        case .directory, .blockDevice, .charDevice, .fifo, .socket:
            if inode.type == .blockDevice || inode.type == .charDevice, let reason = deviceNumberProblem(inode.rdev) {
                return reason
            }
            if case .none = inode.data { break }
            return "a \(inode.type.jsonName) cannot carry file data"
        }
        return nil
    }

    /// Why a device number cannot be a device's (nil when it can): the kernel's are 32 bits
    /// (a 12-bit major, a 20-bit minor), and so are both image formats'. A wider one would be
    /// cut to another device's number, or to 0/0, a whiteout that hides the entry.
    public static func deviceNumberProblem(_ rdev: UInt64) -> String? {
        guard rdev > UInt64(UInt32.max) else { return nil }
        return "device number \(rdev) is wider than 32 bits (no kernel device has one; the formats store 32)"
    }

    /// Why an xattr set cannot be an inode's (nil when it can): key and value sizes, the
    /// per-inode budget, duplicate keys.
    static func problem(withXattrs xattrs: [Xattr]) -> String? {
        var budget = Limits.xattrHeaderOverhead
        var keys = Set<[UInt8]>()
        for xattr in xattrs {
            let shown = String(decoding: xattr.key.prefix(80), as: UTF8.self)
            guard !xattr.key.isEmpty, xattr.key.count <= Limits.maxXattrKeyLength else {
                return "xattr key of \(xattr.key.count) bytes (1…\(Limits.maxXattrKeyLength))"
            }
            guard !xattr.key.contains(0) else { return "xattr key \(shown) contains a NUL byte" }
            guard xattr.value.count <= Limits.maxXattrValueLength else {
                return
                    "xattr \(shown) has a value of \(xattr.value.count) bytes, more than \(Limits.maxXattrValueLength)"
            }
            guard keys.insert(xattr.key).inserted else { return "xattr \(shown) appears twice" }
            budget += xattr.budgetCost
            guard budget <= Limits.maxXattrBudget else {
                return "xattrs need \(budget) bytes, more than the per-inode maximum of \(Limits.maxXattrBudget)"
            }
        }
        return nil
    }
}

extension Payload {
    /// Why `bytes` cannot be a payload (nil when it can). A payload names a file inside the
    /// objects store: relative, at most `Limits.maxPayloadLength` bytes, no NUL, and in the
    /// normal form overlayfs takes as a redirect — no empty, `.` or `..` component — so it can
    /// never reach outside the store however it is joined to the store's path. One pass over
    /// the bytes; the message is built only for a refusal.
    public static func problem(with bytes: [UInt8]) -> String? {
        var shown: String { String(decoding: bytes.prefix(200), as: UTF8.self) }
        if bytes.isEmpty { return "empty payload path" }
        if bytes.count > Limits.maxPayloadLength {
            return "payload of \(bytes.count) bytes, longer than \(Limits.maxPayloadLength)"
        }
        if bytes[0] == UInt8(ascii: "/") {
            return "payload \(shown) is absolute; it must be relative to the objects store"
        }
        var componentStart = 0
        for index in 0...bytes.count {
            let byte = index < bytes.count ? bytes[index] : UInt8(ascii: "/")
            if byte == 0 { return "payload \(shown) contains a NUL byte" }
            guard byte == UInt8(ascii: "/") else { continue }
            let length = index - componentStart
            let dots = length <= 2 && (componentStart..<index).allSatisfy { bytes[$0] == UInt8(ascii: ".") }
            if dots && length == 2 {
                return "payload \(shown) has a '..' component; it must stay inside the objects store"
            }
            if length == 0 || dots {
                return "payload \(shown) has an empty or '.' component; payloads are normalised paths"
            }
            if length > Limits.maxNameLength {
                return "payload \(shown) has a component longer than \(Limits.maxNameLength) bytes"
            }
            componentStart = index + 1
        }
        return nil
    }
}
