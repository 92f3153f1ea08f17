import ImageModel

/// How strictly to read a dump.
public struct DumpOptions: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// What mkcomposefs accepts by default: a missing final newline, non-zero RDEV on
        /// non-devices (ignored), a symlink SIZE that differs from its target's length
        /// (replaced), CONTENT on a symlink (ignored), MODE bits above 0177777 (dropped).
        case lenient
        /// What mkcomposefs accepts with `CFS_PARSE_STRICT`: none of the above.
        case strict
    }

    public var mode: Mode
    /// Resolve `.`, `..` and repeated `/` in PATH lexically (and accept relative paths) instead
    /// of rejecting them — for dumps written by tools that print `./usr/…`.
    public var normalizePaths: Bool

    public init(mode: Mode = .lenient, normalizePaths: Bool = false) {
        self.mode = mode
        self.normalizePaths = normalizePaths
    }

    public static let lenient = DumpOptions()
    public static let strict = DumpOptions(mode: .strict)
}

/// A streaming reader of the composefs dump format (reference 01): feed it bytes in chunks
/// of any size, then `finish()` to get the ``Image``.
///
/// Beyond what mkcomposefs checks it refuses, each with its own message: a DIGEST that is not
/// exactly 64 hex digits, numbers that overflow their field or are negative, duplicate paths,
/// a missing or non-directory parent, `.`/`..`/empty path components, payloads that are
/// absolute or contain `..`, and raw control bytes (binary garbage).
public final class DumpParser {
    /// The longest line accepted, in bytes. The longest legal line is far shorter (a 4 KiB
    /// path, payload and 5000 bytes of content, each escaped four times over, and 64 KiB of
    /// xattrs); this bound is checked as bytes arrive, so input without newlines cannot grow
    /// a buffer without end.
    public static let maxLineLength = 1 << 18

    public let input: String
    public let options: DumpOptions

    private var lineNumber = 0
    private var carry: [UInt8] = []
    private var builder: ImageBuilder?
    /// Line of each entry, by entry index, to name the line of a duplicate.
    private var lineOfEntry: [UInt32] = []
    /// Directory paths (without the leading `/`; the root is empty) → entry.
    private var directories: [[UInt8]: EntryID] = [:]
    private var lastParent: (key: [UInt8], entry: EntryID) = ([], .root)
    private var pendingLinks: [PendingLink] = []
    /// Name → entry of the directories hard links point into (built while resolving them).
    private var childIndexes: [EntryID: [[UInt8]: EntryID]] = [:]
    private var lastXattrs: (text: [UInt8], id: XattrSetID) = ([], .empty)
    private var xattrCache: [[UInt8]: XattrSetID] = [:]
    private var endedWithNewline = true
    /// Field boundaries of the current line (kept to reuse its storage).
    private var bounds: [Range<Int>] = []

    private struct PendingLink {
        var path: [UInt8]
        var parent: EntryID
        var name: [UInt8]
        var target: [UInt8]
        var line: Int
    }

    /// - Parameters:
    ///   - input: the name used in messages (a path, or `<stdin>`).
    public init(input: String, options: DumpOptions = .lenient) {
        self.input = input
        self.options = options
    }

    /// Parses a complete dump held in memory.
    public static func parse(_ bytes: [UInt8], input: String, options: DumpOptions = .lenient) throws(DumpError)
        -> Image
    {
        let parser = DumpParser(input: input, options: options)
        try parser.feed(bytes[...])
        return try parser.finish()
    }

    /// Feeds the next chunk of input.
    public func feed(_ chunk: ArraySlice<UInt8>) throws(DumpError) {
        guard !chunk.isEmpty else { return }
        var start = chunk.startIndex
        if !carry.isEmpty {
            guard let newline = chunk.firstIndex(of: 0x0A) else {
                try checkCarry(adding: chunk.count)
                carry.append(contentsOf: chunk)
                return
            }
            try checkCarry(adding: newline - start)
            carry.append(contentsOf: chunk[start..<newline])
            let line = carry
            carry.removeAll(keepingCapacity: true)
            try parseLine(line.span)
            start = newline + 1
        }
        let span = chunk.span
        let base = chunk.startIndex
        var lineStart = start - base
        var i = lineStart
        let n = span.count
        while i < n {
            if span[i] == 0x0A {
                try parseLine(span.extracting(lineStart..<i))
                lineStart = i + 1
            }
            i += 1
        }
        if lineStart < n {
            try checkCarry(adding: n - lineStart)
            carry.append(contentsOf: chunk[(base + lineStart)...])
        }
        endedWithNewline = chunk.last == 0x0A
    }

    /// Ends the input: parses a last line without newline, resolves hard links, checks for
    /// duplicates and returns the image.
    public func finish() throws(DumpError) -> Image {
        if !carry.isEmpty {
            let line = carry
            carry = []
            try parseLine(line.span)
            if options.mode == .strict {
                throw DumpError(input: input, line: lineNumber, field: .line, reason: "missing trailing newline")
            }
        }
        guard var builder else {
            throw DumpError(input: input, line: max(lineNumber, 1), field: .line, reason: "no files in dump file")
        }
        self.builder = nil
        try resolveHardLinks(&builder)
        do {
            return try builder.build()
        } catch {
            if case .duplicateName(let directory, let name, let first, let second) = error {
                let line = Int(lineOfEntry[second.index])
                let firstLine = Int(lineOfEntry[first.index])
                var path = directory == .root ? [] : directoryPath(directory)
                path.append(UInt8(ascii: "/"))
                path.append(contentsOf: name)
                throw DumpError(
                    input: input, line: line, field: .path,
                    reason: "duplicate path \(displayBytes(path)) (first on line \(firstLine))")
            }
            throw DumpError(input: input, line: lineNumber, field: .line, reason: error.description)
        }
    }

    // MARK: - One line

    /// Refuses a line that would grow past ``maxLineLength`` with `count` more bytes.
    private func checkCarry(adding count: Int) throws(DumpError) {
        guard carry.count + count > Self.maxLineLength else { return }
        throw DumpError(
            input: input, line: lineNumber + 1, field: .line,
            reason: "line longer than \(Self.maxLineLength) bytes (binary data, or no newlines?)")
    }

    private func parseLine(_ line: Span<UInt8>) throws(DumpError) {
        lineNumber += 1
        guard line.count <= Self.maxLineLength else {
            throw error(.line, "line of \(line.count) bytes, longer than \(Self.maxLineLength) (binary data?)")
        }
        try checkRawBytes(line)

        // Split off the 11 fixed fields at the first 11 spaces.
        bounds.removeAll(keepingCapacity: true)
        var fieldStart = 0
        var xattrStart: Int? = nil
        var i = 0
        let n = line.count
        while i < n {
            if line[i] == 0x20 {
                bounds.append(fieldStart..<i)
                fieldStart = i + 1
                if bounds.count == 11 {
                    xattrStart = fieldStart
                    break
                }
            }
            i += 1
        }
        if xattrStart == nil {
            bounds.append(fieldStart..<n)
        }
        // mkcomposefs reads missing trailing fields as empty tokens; the optional CONTENT and
        // DIGEST then read as unset. Lenient mode accepts that (a corpus vector relies on it).
        let present = bounds.count
        if options.mode == .lenient && present >= 9 {
            while bounds.count < 11 { bounds.append(0..<0) }
        }
        guard bounds.count == 11 else {
            let missing = fixedFields[bounds.count]
            throw error(
                missing,
                "missing field \(missing.rawValue.uppercased()) (a line has 11 space-separated fields, then xattrs)")
        }

        // MODE first: it decides what the other fields mean.
        let modeField = line.extracting(bounds[2])
        let isHardLink = !modeField.isEmpty && modeField[0] == UInt8(ascii: "@")
        let rawMode = try parseOctal(isHardLink ? modeField.extracting(1...) : modeField, .mode)
        guard let type = FileType(mode: UInt32(truncatingIfNeeded: rawMode)), rawMode <= UInt64(UInt32.max) else {
            throw error(.mode, "invalid mode \(text(modeField)): it names no file type")
        }
        if rawMode > 0o177777 && options.mode == .strict {
            throw error(.mode, "mode \(text(modeField)) has bits above 0177777")
        }
        let size = try parseDecimal(line.extracting(bounds[1]), .size)
        let nlink = try parseDecimal(line.extracting(bounds[3]), .nlink, max: UInt64(UInt32.max), bits: 32)
        let uid = try parseDecimal(line.extracting(bounds[4]), .uid, max: UInt64(UInt32.max), bits: 32)
        let gid = try parseDecimal(line.extracting(bounds[5]), .gid, max: UInt64(UInt32.max), bits: 32)
        let rdev = try parseDecimal(line.extracting(bounds[6]), .rdev)
        let mtime = try parseMtime(line.extracting(bounds[7]))
        let payload = try optionalField(line.extracting(bounds[8]), .payload)
        let content = present > 9 ? try optionalField(line.extracting(bounds[9]), .content) : nil
        let digest = present > 10 ? try parseDigest(line.extracting(bounds[10])) : nil

        // PATH.
        let rawPath = try unescape(line.extracting(bounds[0]), .path)
        let path = try checkedPath(rawPath)

        if lineNumber == 1 || builder == nil {
            guard path.isEmpty else {
                throw error(.path, "the first line must be the root directory \"/\", not \(displayBytes(rawPath))")
            }
            guard type == .directory, !isHardLink else { throw error(.mode, "the root must be a directory") }
        } else if path.isEmpty {
            throw error(.path, "a second root (\(displayBytes(rawPath))): the root is defined on line 1")
        }

        if isHardLink {
            guard type != .directory else { throw error(.mode, "directories can't be hardlinked") }
            guard let target = payload, !target.isEmpty else {
                throw error(.payload, "hardlink has no target path in PAYLOAD")
            }
            let targetPath = try checkedPath(target, field: .payload)
            guard targetPath != path else {
                throw error(.payload, "self-referential hardlink \(displayBytes(rawPath))")
            }
            let (parent, name) = try locateParent(path, rawPath: rawPath)
            pendingLinks.append(
                PendingLink(path: path, parent: parent, name: Array(name), target: targetPath, line: lineNumber))
            return
        }

        if rdev != 0 && type != .blockDevice && type != .charDevice && options.mode == .strict {
            throw error(.rdev, "RDEV \(rdev) on a \(typeName(type)): only devices have a device number")
        }

        var inode = Inode(
            type: type, permissions: UInt16(truncatingIfNeeded: rawMode & 0o7777), uid: UInt32(uid),
            gid: UInt32(gid), nlink: UInt32(nlink),
            rdev: type == .blockDevice || type == .charDevice ? rdev : 0,
            size: size, mtime: mtime)

        switch type {
        case .regular:
            if let content {
                guard content.count <= Limits.maxInlineContentLength else {
                    throw error(
                        .content,
                        "inline content size \(content.count) exceeds maximum \(Limits.maxInlineContentLength)")
                }
                guard UInt64(content.count) == size else {
                    throw error(.content, "invalid content size: CONTENT has \(content.count) bytes, SIZE says \(size)")
                }
                inode.data = .inline(content)
            } else if size == 0 && payload == nil && digest == nil {
                inode.data = .inline([])
            } else {
                guard size <= Limits.maxExternalFileSize else {
                    throw error(
                        .size,
                        "file too large: \(size) bytes exceeds the composefs maximum of 2^53 (\(Limits.maxExternalFileSize))"
                    )
                }
                var object: Payload? = nil
                if let payload { object = try checkedPayload(payload) }
                inode.data = .external(ExternalObject(payload: object, digest: digest))
            }
        case .symlink:
            guard let target = payload, !target.isEmpty else {
                throw error(.payload, "invalid symlink: PAYLOAD must hold the target")
            }
            guard target.count <= Limits.maxSymlinkTargetLength else {
                throw error(
                    .payload,
                    "invalid symlink: target is \(target.count) bytes, longer than \(Limits.maxSymlinkTargetLength)")
            }
            if options.mode == .strict {
                if size != UInt64(target.count) {
                    throw error(.size, "symlink SIZE \(size) differs from its target's length \(target.count)")
                }
                if content != nil { throw error(.content, "a symlink cannot have CONTENT") }
            }
            inode.size = UInt64(target.count)
            inode.data = .symlink(target)
        default:
            break
        }

        let (parent, name) = try locateParent(path, rawPath: rawPath)
        if builder == nil {
            do { builder = try ImageBuilder(root: inode) } catch { throw self.error(.mode, error.description) }
            lineOfEntry.append(UInt32(lineNumber))
            directories[[]] = .root
            if let start = xattrStart, start < n {
                let xattrs = try parseXattrs(line.extracting(start..<n))
                builder!.updateInode(InodeID(0)) { $0.xattrs = xattrs }
            }
            return
        }
        if let start = xattrStart, start < n {
            inode.xattrs = try parseXattrs(line.extracting(start..<n))
        }
        let entry: EntryID
        do {
            entry = try builder!.add(name: name, in: parent, inode: inode)
        } catch {
            throw self.error(.path, "\(displayBytes(rawPath)): \(error.description)")
        }
        lineOfEntry.append(UInt32(lineNumber))
        if type == .directory {
            if let existing = directories.updateValue(entry, forKey: path) {
                throw self.error(
                    .path, "duplicate path \(displayBytes(rawPath)) (first on line \(lineOfEntry[existing.index]))")
            }
        }
    }

    // MARK: - Paths

    /// The path without its leading `/` (the root is empty), checked or normalized.
    private func checkedPath(_ raw: [UInt8], field: DumpField = .path) throws(DumpError) -> [UInt8] {
        if options.normalizePaths { return normalize(raw) }
        guard raw.first == UInt8(ascii: "/") else {
            throw error(field, "path \(displayBytes(raw)) is not absolute (it must start with \"/\")")
        }
        if raw.count == 1 { return [] }
        var path = raw
        path.removeFirst()
        var componentStart = 0
        for index in 0...path.count {
            guard index == path.count || path[index] == UInt8(ascii: "/") else { continue }
            let component = path[componentStart..<index]
            if component.isEmpty {
                throw error(field, "empty path component in \(displayBytes(raw))")
            }
            if component.count <= 2 && component.first == UInt8(ascii: ".") && component.last == UInt8(ascii: ".") {
                throw error(field, "invalid . or .. in path: \(displayBytes(raw))")
            }
            if component.count > Limits.maxNameLength {
                throw error(
                    field,
                    "path component of \(component.count) bytes in \(displayBytes(raw)) is longer than \(Limits.maxNameLength)"
                )
            }
            componentStart = index + 1
        }
        return path
    }

    /// Lexical normalization: drops empty and `.` components, `..` removes the previous one.
    private func normalize(_ raw: [UInt8]) -> [UInt8] {
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
    private func locateParent(_ path: [UInt8], rawPath: [UInt8]) throws(DumpError) -> (EntryID, ArraySlice<UInt8>) {
        guard !path.isEmpty else { return (.root, []) }
        let slash = path.lastIndex(of: UInt8(ascii: "/"))
        let parentKey = slash.map { path[..<$0] } ?? []
        let name = slash.map { path[($0 + 1)...] } ?? path[...]
        if parentKey.elementsEqual(lastParent.key) { return (lastParent.entry, name) }
        let key = Array(parentKey)
        guard let parent = directories[key] else {
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
    private func existingNonDirectory(_ key: [UInt8]) -> [UInt8]? {
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

    private func directoryPath(_ entry: EntryID) -> [UInt8] {
        for (key, value) in directories where value == entry { return [UInt8(ascii: "/")] + key }
        return []
    }

    // MARK: - Hard links

    private func resolveHardLinks(_ builder: inout ImageBuilder) throws(DumpError) {
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
    private func findEntry(_ path: [UInt8], in builder: ImageBuilder) -> EntryID? {
        if let dir = directories[path] { return dir }
        let slash = path.lastIndex(of: UInt8(ascii: "/"))
        let parentKey = Array(slash.map { path[..<$0] } ?? [])
        let name = Array(slash.map { path[($0 + 1)...] } ?? path[...])
        guard let parent = directories[parentKey] else { return nil }
        if let index = childIndexes[parent] { return index[name] }
        let index = builder.childIndex(of: parent)
        childIndexes[parent] = index
        return index[name]
    }

    // MARK: - Fields

    private func checkRawBytes(_ line: Span<UInt8>) throws(DumpError) {
        for i in line.indices {
            let byte = line[i]
            if byte >= 0x20 && byte != 0x7F { continue }
            if byte == 0 {
                throw error(.line, "invalid embedded NUL character at position \(i)")
            }
            let hint = byte == 0x0D ? " (CRLF line endings? the format uses LF only)" : ""
            throw error(
                .line,
                "raw control byte 0x\(String(byte, radix: 16)) at position \(i); write it escaped as \\x\(String(format2: byte))\(hint)"
            )
        }
    }

    private func unescape(_ field: Span<UInt8>, _ name: DumpField) throws(DumpError) -> [UInt8] {
        do {
            return try DumpEscaping.decode(field)
        } catch {
            switch error {
            case .unsupportedEscape(let kind):
                throw self.error(
                    name,
                    "unsupported escape type \\\(String(decoding: [kind], as: UTF8.self)) in \(name.rawValue.uppercased())"
                )
            case .danglingBackslash:
                throw self.error(name, "\(name.rawValue.uppercased()) ends in a lone backslash")
            case .incompleteHexEscape:
                throw self.error(name, "incomplete \\x escape in \(name.rawValue.uppercased()) (two hex digits needed)")
            }
        }
    }

    private func optionalField(_ field: Span<UInt8>, _ name: DumpField) throws(DumpError) -> [UInt8]? {
        if field.count == 1 && field[0] == UInt8(ascii: "-") { return nil }
        return try unescape(field, name)
    }

    private func checkedPayload(_ bytes: [UInt8]) throws(DumpError) -> Payload {
        if let digestPath = Digest(objectPath: bytes) { return .object(digestPath) }
        if let reason = Payload.problem(with: bytes) { throw error(.payload, reason) }
        return .path(bytes)
    }

    private func parseDigest(_ field: Span<UInt8>) throws(DumpError) -> Digest? {
        if field.count == 1 && field[0] == UInt8(ascii: "-") { return nil }
        guard let digest = Digest(hex: field) else {
            throw error(.digest, "DIGEST \(text(field)) is not 64 hex digits (or '-')")
        }
        return digest
    }

    private func parseDecimal(_ field: Span<UInt8>, _ name: DumpField, max: UInt64 = .max, bits: Int = 64)
        throws(DumpError) -> UInt64
    {
        guard !field.isEmpty else { throw error(name, "\(name.rawValue.uppercased()) is empty") }
        var value: UInt64 = 0
        for i in field.indices {
            let digit = field[i] &- UInt8(ascii: "0")
            guard digit < 10 else {
                if i == 0 && field[i] == UInt8(ascii: "-") {
                    throw error(name, "\(name.rawValue.uppercased()) \(text(field)) is negative")
                }
                throw error(name, "invalid integer \(text(field)) in \(name.rawValue.uppercased())")
            }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            guard !o1, !o2, sum <= max else {
                throw error(name, "\(name.rawValue.uppercased()) \(text(field)) does not fit in \(bits) bits")
            }
            value = sum
        }
        return value
    }

    private func parseOctal(_ field: Span<UInt8>, _ name: DumpField) throws(DumpError) -> UInt64 {
        guard !field.isEmpty else { throw error(name, "\(name.rawValue.uppercased()) is empty") }
        var value: UInt64 = 0
        for i in field.indices {
            let digit = field[i] &- UInt8(ascii: "0")
            guard digit < 8 else { throw error(name, "invalid mode \(text(field)): not an octal number") }
            guard value <= UInt64(UInt32.max) else { throw error(name, "mode \(text(field)) does not fit in 32 bits") }
            value = value << 3 | UInt64(digit)
        }
        return value
    }

    private func parseMtime(_ field: Span<UInt8>) throws(DumpError) -> Timestamp {
        var dot: Int? = nil
        for i in field.indices where field[i] == UInt8(ascii: ".") {
            dot = i
            break
        }
        guard let dot else { throw error(.mtime, "MTIME \(text(field)) must be SECONDS.NANOSECONDS") }
        // Before 1970 the seconds are negative (the dump writer prints them so).
        let negative = dot > 0 && field[0] == UInt8(ascii: "-")
        let magnitude = try parseDecimal(
            field.extracting((negative ? 1 : 0)..<dot), .mtime,
            max: negative ? UInt64(Int64.max) + 1 : UInt64(Int64.max), bits: 64)
        let seconds = negative ? Int64(bitPattern: 0 &- magnitude) : Int64(magnitude)
        let nanos = try parseDecimal(field.extracting((dot + 1)...), .mtime, max: UInt64(UInt32.max), bits: 32)
        guard nanos < 1_000_000_000 else {
            throw error(.mtime, "MTIME nanoseconds \(nanos) must be below 1000000000")
        }
        return Timestamp(seconds: seconds, nanoseconds: UInt32(nanos))
    }

    private func parseXattrs(_ region: Span<UInt8>) throws(DumpError) -> XattrSetID {
        guard region.count <= 65535 else {
            throw error(.xattr, "too many xattrs: \(region.count) bytes of xattrs, the limit is 65535")
        }
        if equal(region, lastXattrs.text) { return lastXattrs.id }
        var text: [UInt8] = []
        text.reserveCapacity(region.count)
        for i in region.indices { text.append(region[i]) }
        if let id = xattrCache[text] {
            lastXattrs = (text, id)
            return id
        }
        var xattrs: [Xattr] = []
        var budget = Limits.xattrHeaderOverhead
        var tokenStart = 0
        for i in 0...region.count {
            guard i == region.count || region[i] == 0x20 else { continue }
            let token = region.extracting(tokenStart..<i)
            tokenStart = i + 1
            var equals: Int? = nil
            for j in token.indices where token[j] == UInt8(ascii: "=") {
                equals = j
                break
            }
            guard let equals else {
                if token.isEmpty { throw error(.xattr, "empty xattr (two spaces in a row?)") }
                throw error(.xattr, "missing = in xattr \(self.text(token))")
            }
            let key = try unescape(token.extracting(..<equals), .xattr)
            let value = try unescape(token.extracting((equals + 1)...), .xattr)
            guard !key.isEmpty else { throw error(.xattr, "xattr key is empty") }
            guard key.count <= Limits.maxXattrKeyLength else {
                throw error(.xattr, "xattr key of \(key.count) bytes is longer than \(Limits.maxXattrKeyLength)")
            }
            guard value.count <= Limits.maxXattrValueLength else {
                throw error(.xattr, "xattr value of \(value.count) bytes is longer than \(Limits.maxXattrValueLength)")
            }
            let xattr = Xattr(key: key, value: value)
            if let existing = xattrs.firstIndex(where: { $0.key == key }) {
                budget -= xattrs[existing].budgetCost
                xattrs[existing] = xattr
            } else {
                xattrs.append(xattr)
            }
            budget += xattr.budgetCost
            guard budget <= Limits.maxXattrBudget else {
                throw error(
                    .xattr, "xattrs need \(budget) bytes, more than the per-inode maximum of \(Limits.maxXattrBudget)")
            }
        }
        let id = builder!.internXattrs(xattrs)
        xattrCache[text] = id
        lastXattrs = (text, id)
        return id
    }

    private func equal(_ span: Span<UInt8>, _ bytes: [UInt8]) -> Bool {
        guard span.count == bytes.count else { return false }
        for i in span.indices where span[i] != bytes[i] { return false }
        return true
    }

    // MARK: - Messages

    private func error(_ field: DumpField, _ reason: String) -> DumpError {
        DumpError(input: input, line: lineNumber, field: field, reason: reason)
    }

    private func text(_ span: Span<UInt8>) -> String {
        var bytes: [UInt8] = []
        for i in span.indices.prefix(80) { bytes.append(span[i]) }
        return displayBytes(bytes) + (span.count > 80 ? "…" : "")
    }

    private func typeName(_ type: FileType) -> String { type.jsonName }
}

private let fixedFields: [DumpField] = [
    .path, .size, .mode, .nlink, .uid, .gid, .rdev, .mtime, .payload, .content, .digest,
]

extension String {
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef".utf8)
        self = String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }
}
