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

    /// How many threads read lines (1: read in the calling thread). Whatever the number, the
    /// image and every error — its line number included — are the same.
    public var jobs: Int
    /// The most threads a dump is read on.
    public static let maxJobs = 256
    /// With `jobs` > 1: about how many bytes of input one thread reads at a time (tests and
    /// the fuzzer make it tiny, to cut inputs at every kind of line).
    public var partSize: Int

    public init(mode: Mode = .lenient, normalizePaths: Bool = false, jobs: Int = 1, partSize: Int = 1 << 20) {
        self.mode = mode
        self.normalizePaths = normalizePaths
        self.jobs = min(max(1, jobs), Self.maxJobs)
        self.partSize = min(max(1, partSize), 1 << 26)
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
    /// Said of a longer line, whether its end has arrived or not (so the message does not
    /// depend on how the input was cut).
    static let longLineReason = "line longer than \(maxLineLength) bytes (binary data, or no newlines?)"

    public let input: String
    public let options: DumpOptions

    var lineNumber = 0
    var carry: [UInt8] = []
    var builder: ImageBuilder?
    /// Line of each entry, by entry index, to name the line of a duplicate.
    var lineOfEntry: [UInt32] = []
    /// Directory paths (without the leading `/`; the root is empty) → entry.
    var directories: [ByteKey: EntryID] = [:]
    var lastParent: (key: [UInt8], entry: EntryID) = ([], .root)
    var pendingLinks: [PendingLink] = []
    /// Name → entry of the directories hard links point into (built while resolving them).
    var childIndexes: [EntryID: [[UInt8]: EntryID]] = [:]
    var endedWithNewline = true
    /// Stage one's xattr lists: each distinct xattr text once, by its index (a line names
    /// its list by index; stage two interns each list once).
    var xattrLists: [[Xattr]] = []
    /// The xattr texts met most recently and their lists, looked through before `xattrCache`
    /// (most dumps carry a handful of distinct texts: found without copying or hashing).
    var recentXattrs: [(text: [UInt8], index: Int32)] = []
    var nextRecent = 0
    static let recentXattrCount = 16
    var xattrCache: [ByteKey: Int32] = [:]
    /// Stage two: the set id of each of the current lists (nil: not interned yet).
    var xattrIDs: [XattrSetID?] = []
    /// Parallel reading: input not read yet, and the parts whose stage two is still to run.
    var pending: [UInt8] = []
    /// Where the line still being received starts in `pending`.
    var pendingLineStart = 0
    var preparedParts: [PreparedPart] = []
    /// Field boundaries of the current line (kept to reuse its storage).
    var bounds: [Range<Int>] = []

    struct PendingLink {
        var path: [UInt8]
        var parent: EntryID
        var name: [UInt8]
        var target: [UInt8]
        var line: Int
    }

    /// About how many bytes the input holds, when known (a regular file): after its first
    /// lines the tree makes room for all the entries that many bytes hold, instead of growing
    /// (and copying) as they come. Only a hint: any input is read the same. The room is made
    /// at once, so keep it within memory (``DumpFile`` caps it at an eighth of the machine's).
    public var sizeHint = 0
    /// Bytes of the lines added so far (newlines included), for the estimate.
    var committedBytes = 0
    /// After how many lines the estimate is made.
    static let linesBeforeEstimate = 4096

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
        if options.jobs > 1 {
            try feedParallel(chunk)
            return
        }
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
        if options.jobs > 1 { try finishParallel() }
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
            reason: Self.longLineReason)
    }

    /// One line's fixed fields, parsed and checked on their own (MODE, numbers, escapes, PATH).
    struct Fields {
        /// PATH as written, kept only when it was normalized (else it is `/` + `path`).
        var writtenPath: [UInt8]?
        var path: [UInt8]
        var type: FileType
        var isHardLink: Bool
        var rawMode: UInt64
        var size, nlink, uid, gid, rdev: UInt64
        var mtime: Timestamp
        var payload: [UInt8]?
        /// PAYLOAD is DIGEST's object path (then `payload` is left nil).
        var payloadIsDigestPath = false
        var content: [UInt8]?
        var digest: Digest?

        /// PATH as written.
        var rawPath: [UInt8] { writtenPath ?? [UInt8(ascii: "/")] + path }
    }

    /// One line, read and added in the calling thread.
    func parseLine(_ line: Span<UInt8>) throws(DumpError) {
        lineNumber += 1
        var prepared: Prepared
        do {
            prepared = try prepare(line)
        } catch {
            try reject(error)
        }
        try commit(&prepared)
    }

    // MARK: - Stage one: a line on its own

    /// What a line says, read without looking at any other line. Stage one runs in parallel
    /// over parts of the input; stage two (``commit(_:)``) adds its lines in order.
    struct Prepared {
        var located: Located
        /// A new inode's content and metadata (nil for a hard link).
        var inode: Inode?
        /// A hard link's checked target path.
        var linkTarget: [UInt8]?
        /// The line's xattrs, an index into `xattrLists` (-1: none).
        var xattrs: Int32 = -1
        /// The line's length, its newline included.
        var byteCount = 0
    }

    /// A line that stage one refused: the error, and how far the line got. The checks a
    /// sequential read makes before that point need other lines; ``reject(_:)`` makes them
    /// first, so either way the same error comes out.
    struct Refusal: Error {
        enum Stage { case fields, content, xattrs }
        var error: DumpError
        var stage: Stage
        var located: Located?
    }

    /// What stage two needs of a line's fields: where the entry goes, and what it is. (The
    /// other fields end in stage one, on the thread that read them.)
    struct Located {
        var path: [UInt8]
        /// The PATH field as written, when it is not `/` + `path` (normalized paths).
        var writtenPath: [UInt8]?
        var type: FileType
        var isHardLink: Bool

        /// - Parameter normalized: whether the path was normalized (else it is the PATH field
        ///   without its leading `/`).
        init(_ fields: Fields, normalized: Bool) {
            path = fields.path
            writtenPath = normalized ? fields.rawPath : nil
            type = fields.type
            isHardLink = fields.isHardLink
        }

        /// The PATH field as written (for messages).
        var rawPath: [UInt8] { writtenPath ?? [UInt8(ascii: "/")] + path }
    }

    /// - Parameter clean: the caller has found no control byte in `line`.
    func prepare(_ line: Span<UInt8>, clean: Bool = false) throws(Refusal) -> Prepared {
        let fields: Fields
        let xattrStart: Int?
        do throws(DumpError) {
            guard line.count <= Self.maxLineLength else {
                throw error(.line, Self.longLineReason)
            }
            if !clean { try checkRawBytes(line) }
            let split = try splitFields(line)
            xattrStart = split.xattrStart
            fields = try parseFields(line, present: split.present)
        } catch {
            throw Refusal(error: error, stage: .fields)
        }
        let located = Located(fields, normalized: options.normalizePaths)
        var prepared = Prepared(located: located, byteCount: line.count + 1)
        do throws(DumpError) {
            if fields.isHardLink {
                prepared.linkTarget = try checkedLinkTarget(fields)
                return prepared
            }
            prepared.inode = try makeInode(fields)
        } catch {
            throw Refusal(error: error, stage: .content, located: located)
        }
        if let xattrStart {
            do throws(DumpError) {
                prepared.xattrs = try parseXattrs(line.extracting(xattrStart..<line.count))
            } catch {
                throw Refusal(error: error, stage: .xattrs, located: located)
            }
        }
        return prepared
    }

    // MARK: - Stage two: the line in the tree, in order

    /// Adds a prepared line (line `lineNumber`). Its inode moves into the tree (taken out of
    /// `prepared`, not copied).
    func commit(_ prepared: inout Prepared) throws(DumpError) {
        try checkRoot(prepared.located)
        committedBytes += prepared.byteCount
        if lineNumber == Self.linesBeforeEstimate { reserveForEstimatedEntries() }
        if let target = prepared.linkTarget {
            try addHardLink(prepared.located, target: target)
            return
        }
        try insert(prepared.inode.take()!, prepared.located, xattrs: prepared.xattrs)
    }

    /// Throws a refused line's error (line `lineNumber`), after the checks that come before
    /// it in a sequential read.
    func reject(_ refusal: Refusal) throws(DumpError) -> Never {
        if refusal.stage != .fields, let located = refusal.located {
            try checkRoot(located)
            if refusal.stage == .xattrs { _ = try locateParent(located.path, rawPath: located.rawPath) }
        }
        var error = refusal.error
        error.line = lineNumber
        throw error
    }

    /// Splits off the 11 fixed fields at the first 11 spaces into `bounds`; returns how many
    /// fields the line has and where its xattrs start (if it has any).
    private func splitFields(_ line: Span<UInt8>) throws(DumpError) -> (present: Int, xattrStart: Int?) {
        // Worked on as a local (the property's storage moves out and back, not copied).
        var bounds: [Range<Int>] = []
        swap(&bounds, &self.bounds)
        defer { swap(&bounds, &self.bounds) }
        bounds.removeAll(keepingCapacity: true)
        var fieldStart = 0
        var xattrStart: Int? = nil
        let n = line.count
        // Spaces eight bytes at a time: a word's zero bytes after `^ 0x20…20` are its spaces
        // (the lowest flagged byte is exact; a flag above it is checked against the byte).
        // Read through the span's bytes, with no closure: locals a closure captured would be
        // checked for exclusive access at run time.
        let bytes = line.bytes
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        scan: while i < n {
            var hits: UInt64
            let base = i
            if i + 8 <= n {
                let x =
                    UInt64(littleEndian: bytes.unsafeLoadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ (0x20 &* ones)
                hits = (x &- ones) & ~x & highs
                i += 8
            } else {
                hits = line[i] == 0x20 ? 0x80 : 0
                i += 1
            }
            while hits != 0 {
                let k = base + hits.trailingZeroBitCount / 8
                hits &= hits &- 1
                guard line[k] == 0x20 else { continue }
                bounds.append(fieldStart..<k)
                fieldStart = k + 1
                if bounds.count == 11 {
                    xattrStart = fieldStart
                    break scan
                }
            }
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
        if let start = xattrStart, start >= n { xattrStart = nil }
        return (present, xattrStart)
    }

    private func parseFields(_ line: Span<UInt8>, present: Int) throws(DumpError) -> Fields {
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
        // Most regular files' PAYLOAD is their DIGEST's object path: recognised in place, it
        // needs no copy (and, being plain hex, can raise no error of its own). A DIGEST that
        // parses here is the one parseDigest would return below, in field order.
        let payloadField = line.extracting(bounds[8])
        let validDigest = present > 10 ? Digest(hex: line.extracting(bounds[10])) : nil
        var payloadIsDigestPath = false
        if type == .regular && !isHardLink, validDigest != nil {
            payloadIsDigestPath = Self.isObjectPath(payloadField, ofHex: line.extracting(bounds[10]))
        }
        let payload = payloadIsDigestPath ? nil : try optionalField(payloadField, .payload)
        let content = present > 9 ? try optionalField(line.extracting(bounds[9]), .content) : nil
        var digest = validDigest
        if digest == nil && present > 10 { digest = try parseDigest(line.extracting(bounds[10])) }
        let written = try unescape(line.extracting(bounds[0]), .path)
        let writtenPath = options.normalizePaths ? written : nil
        let path = try checkedPath(written)
        return Fields(
            writtenPath: writtenPath, path: path, type: type, isHardLink: isHardLink, rawMode: rawMode, size: size,
            nlink: nlink, uid: uid, gid: gid, rdev: rdev, mtime: mtime, payload: payload,
            payloadIsDigestPath: payloadIsDigestPath, content: content, digest: digest)
    }

    /// The root comes first, once, and is a directory.
    private func checkRoot(_ fields: Located) throws(DumpError) {
        if lineNumber == 1 || builder == nil {
            guard fields.path.isEmpty else {
                throw error(
                    .path, "the first line must be the root directory \"/\", not \(displayBytes(fields.rawPath))")
            }
            guard fields.type == .directory, !fields.isHardLink else {
                throw error(.mode, "the root must be a directory")
            }
        } else if fields.path.isEmpty {
            throw error(.path, "a second root (\(displayBytes(fields.rawPath))): the root is defined on line 1")
        }
    }

    /// A hard link's target path, checked (the link itself is added in stage two).
    private func checkedLinkTarget(_ fields: Fields) throws(DumpError) -> [UInt8] {
        guard fields.type != .directory else { throw error(.mode, "directories can't be hardlinked") }
        guard let target = fields.payload, !target.isEmpty else {
            throw error(.payload, "hardlink has no target path in PAYLOAD")
        }
        let targetPath = try checkedPath(target, field: .payload)
        guard targetPath != fields.path else {
            throw error(.payload, "self-referential hardlink \(displayBytes(fields.rawPath))")
        }
        return targetPath
    }

    /// Hard links are resolved in ``finish()``, when every target exists.
    private func addHardLink(_ fields: Located, target: [UInt8]) throws(DumpError) {
        let (parent, name) = try locateParent(fields.path, rawPath: fields.rawPath)
        pendingLinks.append(
            PendingLink(path: fields.path, parent: parent, name: Array(name), target: target, line: lineNumber))
    }

    private func makeInode(_ fields: Fields) throws(DumpError) -> Inode {
        let type = fields.type
        let isDevice = type == .blockDevice || type == .charDevice
        if fields.rdev != 0 && !isDevice && options.mode == .strict {
            throw error(.rdev, "RDEV \(fields.rdev) on a \(typeName(type)): only devices have a device number")
        }
        if isDevice, let reason = Image.deviceNumberProblem(fields.rdev) { throw error(.rdev, reason) }
        var inode = Inode(
            type: type, permissions: UInt16(truncatingIfNeeded: fields.rawMode & 0o7777), uid: UInt32(fields.uid),
            gid: UInt32(fields.gid), nlink: UInt32(fields.nlink), rdev: isDevice ? fields.rdev : 0,
            size: fields.size, mtime: fields.mtime)
        switch type {
        case .regular: inode.data = try regularData(fields)
        case .symlink:
            let target = try symlinkTarget(fields)
            inode.size = UInt64(target.count)
            inode.data = .symlink(target)
        default: break
        }
        return inode
    }

    private func regularData(_ fields: Fields) throws(DumpError) -> FileData {
        let size = fields.size
        if let content = fields.content {
            guard content.count <= Limits.maxInlineContentLength else {
                throw error(
                    .content, "inline content size \(content.count) exceeds maximum \(Limits.maxInlineContentLength)")
            }
            guard UInt64(content.count) == size else {
                throw error(.content, "invalid content size: CONTENT has \(content.count) bytes, SIZE says \(size)")
            }
            return .inline(content)
        }
        if size == 0 && fields.payload == nil && fields.digest == nil { return .inline([]) }
        guard size <= Limits.maxExternalFileSize else {
            throw error(
                .size,
                "file too large: \(size) bytes exceeds the composefs maximum of 2^53 (\(Limits.maxExternalFileSize))")
        }
        var object: Payload? = nil
        if fields.payloadIsDigestPath, let digest = fields.digest {
            object = .object(digest)
        } else if let payload = fields.payload {
            object = try checkedPayload(payload)
        }
        return .external(ExternalObject(payload: object, digest: fields.digest))
    }

    private func symlinkTarget(_ fields: Fields) throws(DumpError) -> [UInt8] {
        guard let target = fields.payload, !target.isEmpty else {
            throw error(.payload, "invalid symlink: PAYLOAD must hold the target")
        }
        guard target.count <= Limits.maxSymlinkTargetLength else {
            throw error(
                .payload,
                "invalid symlink: target is \(target.count) bytes, longer than \(Limits.maxSymlinkTargetLength)")
        }
        if options.mode == .strict {
            if fields.size != UInt64(target.count) {
                throw error(.size, "symlink SIZE \(fields.size) differs from its target's length \(target.count)")
            }
            if fields.content != nil { throw error(.content, "a symlink cannot have CONTENT") }
        }
        return target
    }

    /// Adds the entry (the root creates the builder) with its xattrs (a list index).
    private func insert(_ inode: consuming Inode, _ fields: Located, xattrs: Int32) throws(DumpError) {
        let (parent, name) = try locateParent(fields.path, rawPath: fields.rawPath)
        if builder == nil {
            do { builder = try ImageBuilder(root: inode) } catch { throw self.error(.mode, error.description) }
            lineOfEntry.append(UInt32(lineNumber))
            directories[ByteKey([])] = .root
            if xattrs >= 0 {
                let id = internXattrs(xattrs)
                builder!.updateInode(InodeID(0)) { $0.xattrs = id }
            }
            return
        }
        if xattrs >= 0 { inode.xattrs = internXattrs(xattrs) }
        let entry: EntryID
        do {
            entry = try builder!.add(name: name, in: parent, inode: inode)
        } catch {
            throw self.error(.path, "\(displayBytes(fields.rawPath)): \(error.description)")
        }
        lineOfEntry.append(UInt32(lineNumber))
        if fields.type == .directory, let existing = directories.updateValue(entry, forKey: ByteKey(fields.path)) {
            throw self.error(
                .path, "duplicate path \(displayBytes(fields.rawPath)) (first on line \(lineOfEntry[existing.index]))")
        }
    }

    /// The set id of xattr list `index`, interned on first use.
    private func internXattrs(_ index: Int32) -> XattrSetID {
        let i = Int(index)
        if i >= xattrIDs.count { xattrIDs.append(contentsOf: repeatElement(nil, count: i + 1 - xattrIDs.count)) }
        if let id = xattrIDs[i] { return id }
        let id = builder!.internXattrs(xattrLists[i])
        xattrIDs[i] = id
        return id
    }
}

private let fixedFields: [DumpField] = [
    .path, .size, .mode, .nlink, .uid, .gid, .rdev, .mtime, .payload, .content, .digest,
]

extension DumpParser {
    /// Whether PAYLOAD is the object path that DIGEST's hex spells (`xx/` + the other 62
    /// digits), compared as text. Only for a DIGEST that parsed: an uppercase one compares
    /// unequal, and the payload then goes the long way to the same object.
    static func isObjectPath(_ payload: Span<UInt8>, ofHex digest: Span<UInt8>) -> Bool {
        guard payload.count == 65, digest.count == 64, payload[2] == UInt8(ascii: "/"),
            payload[0] == digest[0], payload[1] == digest[1]
        else { return false }
        return sameBytes(payload.extracting(3...), digest.extracting(2...))
    }

    /// Makes room in the tree for the entries the input's size suggests, from the bytes per
    /// line so far (an eighth more, in case later lines are shorter).
    func reserveForEstimatedEntries() {
        guard sizeHint > 0, committedBytes > 0, builder != nil else { return }
        // A line takes at least 27 bytes (`/ 0 40755 0 0 0 0 0.0 - - -` and its newline).
        let estimate = min(Double(sizeHint) / Double(committedBytes) * Double(lineNumber), Double(sizeHint / 27))
        let entries = Int(estimate) + Int(estimate) / 8
        guard entries > lineNumber else { return }
        builder!.reserveCapacity(entries: entries)
        lineOfEntry.reserveCapacity(entries)
        // Directories in the share met so far (growing the table rehashes every path in it),
        // at most a quarter of the entries.
        let directoryShare = Double(directories.count) / Double(lineNumber)
        directories.reserveCapacity(min(Int(directoryShare * Double(entries)), entries / 4))
    }
}

/// Byte strings compared eight bytes at a time.
func sameBytes(_ a: Span<UInt8>, _ b: Span<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    let x = a.bytes, y = b.bytes
    let n = a.count
    var i = 0
    while i + 8 <= n {
        if x.unsafeLoadUnaligned(fromByteOffset: i, as: UInt64.self)
            != y.unsafeLoadUnaligned(fromByteOffset: i, as: UInt64.self)
        {
            return false
        }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}

/// A byte string as a dictionary key, hashed in bulk (an array of bytes hashes each byte on
/// its own).
struct ByteKey: Hashable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func hash(into hasher: inout Hasher) {
        hasher.combine(byteSpan: bytes.span)
    }
}
