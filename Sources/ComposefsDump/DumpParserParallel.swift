import Dispatch
import ImageModel
import Synchronization

/// Reading a dump on several threads (`DumpOptions.jobs` > 1).
///
/// The input is cut at line boundaries into parts. Stage one (``DumpParser/prepare(_:)``)
/// reads each part's lines on its own thread: fields, numbers, escapes, paths, inodes,
/// xattrs — everything a line says by itself. Stage two (``DumpParser/commit(_:)``) adds the
/// lines to the tree in input order on one thread, while the next batch of parts is in stage
/// one. The tree, and so the image, are the same for any number of threads; so is every
/// error, line number included: a part stops at its first refused line, and stage two makes
/// the checks that come before that point in a sequential read before it throws.
extension DumpParser {
    /// Stage one's reading of one part: its lines, the xattr lists they name, and the refusal
    /// that ended the part early.
    struct PreparedPart: @unchecked Sendable {
        var lines: [Prepared] = []
        var xattrLists: [[Xattr]] = []
        var refusal: Refusal?
    }

    /// Takes a chunk a batch at a time (a whole input handed over at once is still read in
    /// bounded batches, stage two of one beside stage one of the next).
    func feedParallel(_ chunk: ArraySlice<UInt8>) throws(DumpError) {
        let batchBytes = 2 * options.jobs * options.partSize
        var rest = chunk
        while !rest.isEmpty {
            let piece = rest.prefix(batchBytes)
            rest = rest.dropFirst(piece.count)
            pending.append(contentsOf: piece)
            if let newline = piece.lastIndex(of: 0x0A) {
                pendingLineStart = pending.count - (piece.endIndex - newline - 1)
            }
            // A line longer than the limit is refused as its bytes arrive, as in a sequential
            // read: the lines before it are read first, then (no newline left) the batch throws.
            let lineTooLong = pending.count - pendingLineStart > Self.maxLineLength
            if pending.count >= batchBytes || lineTooLong {
                try runBatch()
                if lineTooLong { try runBatch() }
            }
        }
    }

    /// Reads every complete line still pending, then leaves the last line without a
    /// newline (if any) to the sequential ending.
    func finishParallel() throws(DumpError) {
        try runBatch()
        var last = takePreparedParts()
        try commitParts(&last)
        if !pending.isEmpty {
            endedWithNewline = false
            carry = pending
            pending = []
        }
    }

    /// Cuts the complete lines of `pending` into parts and runs their stage one in parallel
    /// with stage two of the parts before them.
    private func runBatch() throws(DumpError) {
        // `pending` holds complete lines up to `pendingLineStart` (none when it is 0).
        guard pendingLineStart > 0 else {
            if pending.count > Self.maxLineLength {
                var last = takePreparedParts()
                try commitParts(&last)
                throw DumpError(
                    input: input, line: lineNumber + 1, field: .line,
                    reason: Self.longLineReason)
            }
            return
        }
        let lastNewline = pendingLineStart - 1
        let parts = cut(pending[...lastNewline], into: 2 * options.jobs)
        let work = ParallelWork(parser: self, input: input, options: options, previous: takePreparedParts())
        let results = work.run(parts: parts)
        if let error = results.commitError { throw error }
        preparedParts = results.parts
        pending.removeSubrange(...lastNewline)
        pendingLineStart = 0
    }

    /// Parts of about equal size, each ending in a newline.
    private func cut(_ text: ArraySlice<UInt8>, into count: Int) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var start = text.startIndex
        let size = max(1, text.count / count)
        while start < text.endIndex {
            var end = min(start + size, text.endIndex) - 1
            while text[end] != 0x0A { end += 1 }
            parts.append(text[start...end])
            start = end + 1
        }
        return parts
    }

    /// Stage one of one part, with a parser of its own (line numbers counted from the part).
    static func prepare(part: ArraySlice<UInt8>, input: String, options: DumpOptions) -> PreparedPart {
        let preparer = DumpParser(input: input, options: options)
        var result = PreparedPart()
        result.lines.reserveCapacity(part.count / 200)
        let span = part.span
        var lineStart = 0
        while lineStart < span.count {
            // One pass finds the line's end and whether it holds a control byte: the first
            // byte below 0x20 (or DEL) is its newline exactly when it has none.
            var end = Self.firstControlByte(span, from: lineStart)
            let clean = end < span.count && span[end] == 0x0A
            while end < span.count, span[end] != 0x0A { end += 1 }
            guard end < span.count else { break }  // parts end with a newline
            preparer.lineNumber += 1
            do {
                result.lines.append(try preparer.prepare(span.extracting(lineStart..<end), clean: clean))
            } catch {
                result.refusal = error
                break
            }
            lineStart = end + 1
        }
        result.xattrLists = preparer.xattrLists
        return result
    }

    /// The parts waiting for stage two, handed over (held nowhere else, so their lines can be
    /// changed in place).
    func takePreparedParts() -> [PreparedPart] {
        var parts: [PreparedPart] = []
        swap(&parts, &preparedParts)
        return parts
    }

    /// Stage two of parts, in order. Each line's inode moves into the tree: the parts are the
    /// caller's only reference, so nothing is copied.
    func commitParts(_ parts: inout [PreparedPart]) throws(DumpError) {
        for p in parts.indices {
            xattrLists = []
            swap(&xattrLists, &parts[p].xattrLists)
            xattrIDs = []
            var lines: [Prepared] = []
            swap(&lines, &parts[p].lines)
            for i in lines.indices {
                lineNumber += 1
                try commit(&lines[i])
            }
            // What is left of the lines (their paths) is freed beside the next batch.
            releaseInBackground(consume lines)
            if let refusal = parts[p].refusal {
                lineNumber += 1
                try reject(refusal)
            }
        }
        xattrLists = []
        xattrIDs = []
    }
}

/// One batch: stage one of each part on the worker threads, and stage two of the previous
/// batch beside them. Each task writes only its own slot.
private final class ParallelWork: @unchecked Sendable {
    let parser: DumpParser
    let input: String
    let options: DumpOptions
    /// The previous batch, for stage two (this object's only reference to it).
    private var previous: [DumpParser.PreparedPart]
    var parts: [DumpParser.PreparedPart] = []
    var commitError: DumpError?

    init(parser: DumpParser, input: String, options: DumpOptions, previous: [DumpParser.PreparedPart]) {
        self.parser = parser
        self.input = input
        self.options = options
        self.previous = previous
    }

    /// The next part not yet taken by a thread.
    private let nextPart = Atomic<Int>(0)

    /// Runs on `options.jobs` threads at most: the first does stage two of `previous`, then
    /// joins the others in taking parts for stage one.
    func run(parts text: [ArraySlice<UInt8>]) -> ParallelWork {
        let slots = text.map { _ in Slot() }
        DispatchQueue.concurrentPerform(iterations: min(options.jobs, text.count + 1)) { task in
            if task == 0 {
                do throws(DumpError) { try parser.commitParts(&previous) } catch { commitError = error }
            }
            while true {
                let part = nextPart.wrappingAdd(1, ordering: .relaxed).oldValue
                guard part < text.count else { break }
                slots[part].part = DumpParser.prepare(part: text[part], input: input, options: options)
            }
        }
        parts = slots.map { $0.part! }
        return self
    }

    private final class Slot: @unchecked Sendable {
        var part: DumpParser.PreparedPart?
    }
}
