import ImageModel

/// Paths and hard links of a dump: checking, normalizing, finding parents and link targets.
extension DumpParser {
    // MARK: - Paths

    /// The path without its leading `/` (the root is empty), checked or normalized.
    func checkedPath(_ raw: consuming [UInt8], field: DumpField = .path) throws(DumpError) -> [UInt8] {
        if options.normalizePaths { return normalize(raw) }
        var path = raw
        guard path.first == UInt8(ascii: "/") else {
            throw error(field, "path \(displayBytes(path)) is not absolute (it must start with \"/\")")
        }
        if path.count == 1 { return [] }
        if let problem = Self.componentProblem(path.span) {
            switch problem {
            case .empty: throw error(field, "empty path component in \(displayBytes(path))")
            case .dots: throw error(field, "invalid . or .. in path: \(displayBytes(path))")
            case .long(let length):
                throw error(
                    field,
                    "path component of \(length) bytes in \(displayBytes(path)) is longer than \(Limits.maxNameLength)")
            }
        }
        // The leading `/` goes in place: the field's own buffer becomes the path.
        path.removeFirst()
        return path
    }

    enum ComponentProblem: Equatable { case empty, dots, long(Int) }

    /// The first thing wrong with a component of an absolute path (`/` first), if any:
    /// empty, `.` or `..`, or longer than a name may be.
    static func componentProblem(_ path: Span<UInt8>) -> ComponentProblem? {
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var start = 1
        var index = 1
        let n = path.count
        while true {
            if index == n || path[index] == slash {
                let length = index - start
                if length == 0 { return .empty }
                if length <= 2 && path[start] == dot && path[index - 1] == dot { return .dots }
                if length > Limits.maxNameLength { return .long(length) }
                if index == n { return nil }
                start = index + 1
            }
            index += 1
        }
    }

    /// Lexical normalization: drops empty and `.` components, `..` removes the previous one.
    func normalize(_ raw: [UInt8]) -> [UInt8] {
        var components: [ArraySlice<UInt8>] = []
        for component in raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if component == [UInt8(ascii: ".")][...] { continue }
            if component == [UInt8(ascii: "."), UInt8(ascii: ".")][...] {
                _ = components.popLast()
                continue
            }
            components.append(component)
        }
        return Array(components.joined(separator: [UInt8(ascii: "/")]))
    }

    /// Splits a checked path into its parent directory's entry and its name.
    func locateParent(_ path: [UInt8], rawPath: [UInt8]) throws(DumpError) -> (EntryID, ArraySlice<UInt8>) {
        guard !path.isEmpty else { return (.root, []) }
        let slash = path.lastIndex(of: UInt8(ascii: "/"))
        let parentKey = slash.map { path[..<$0] } ?? []
        let name = slash.map { path[($0 + 1)...] } ?? path[...]
        if equal(parentKey.span, lastParent.key) { return (lastParent.entry, name) }
        let key = Array(parentKey)
        guard let parent = directories[ByteKey(key)] else {
            if let blocker = existingNonDirectory(key) {
                throw error(
                    .path,
                    "parent must be a directory for \(displayBytes(rawPath)): \(displayBytes(blocker)) is not one")
            }
            throw error(.path, "parent directory missing for \(displayBytes(rawPath))")
        }
        lastParent = (key, parent)
        return (parent, name)
    }

    /// The first prefix of `key` that names an existing non-directory, if any (error path only).
    func existingNonDirectory(_ key: [UInt8]) -> [UInt8]? {
        guard let builder else { return nil }
        var current = EntryID.root
        var prefix: [UInt8] = []
        for component in key.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            prefix.append(UInt8(ascii: "/"))
            prefix.append(contentsOf: component)
            guard let next = builder.child(named: component, in: current) else { return nil }
            if builder.inode(of: next).type != .directory { return prefix }
            current = next
        }
        return nil
    }

    func directoryPath(_ entry: EntryID) -> [UInt8] {
        for (key, value) in directories where value == entry { return [UInt8(ascii: "/")] + key.bytes }
        return []
    }

    // MARK: - Hard links

    func resolveHardLinks(_ builder: inout ImageBuilder) throws(DumpError) {
        guard !pendingLinks.isEmpty else { return }
        var linkIndex: [[UInt8]: Int] = [:]
        for (index, link) in pendingLinks.enumerated() { linkIndex[link.path] = index }
        for link in pendingLinks {
            // Follow link → link chains to a real entry.
            var target = link.target
            var seen: Set<[UInt8]> = [link.path]
            while let next = linkIndex[target] {
                guard seen.insert(target).inserted else {
                    throw DumpError(
                        input: input, line: link.line, field: .payload,
                        reason: "hardlink cycle through \(displayBytes([UInt8(ascii: "/")] + target))")
                }
                target = pendingLinks[next].target
            }
            guard let entry = findEntry(target, in: builder) else {
                throw DumpError(
                    input: input, line: link.line, field: .payload,
                    reason: "no target at \(displayBytes([UInt8(ascii: "/")] + target)) for hardlink")
            }
            do {
                let added = try builder.addHardLink(name: link.name, in: link.parent, to: builder.inodeID(of: entry))
                precondition(added.index == lineOfEntry.count)
                lineOfEntry.append(UInt32(link.line))
            } catch {
                throw DumpError(input: input, line: link.line, field: .payload, reason: error.description)
            }
        }
    }

    /// Finds a (non-link) entry by path before the image is built (children still unsorted),
    /// through a name index per directory built on first use: O(links + size of the
    /// directories they point into), not a scan of the directory per link.
    func findEntry(_ path: [UInt8], in builder: ImageBuilder) -> EntryID? {
        if let dir = directories[ByteKey(path)] { return dir }
        let slash = path.lastIndex(of: UInt8(ascii: "/"))
        let parentKey = Array(slash.map { path[..<$0] } ?? [])
        let name = Array(slash.map { path[($0 + 1)...] } ?? path[...])
        guard let parent = directories[ByteKey(parentKey)] else { return nil }
        if let index = childIndexes[parent] { return index[name] }
        let index = builder.childIndex(of: parent)
        childIndexes[parent] = index
        return index[name]
    }

}
