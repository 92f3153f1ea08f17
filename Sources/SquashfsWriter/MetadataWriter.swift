import CSquashfsShim
import ImageModel

/// One squashfs metadata table being written (reference 06 §1): its bytes in 8 KiB blocks,
/// each stored behind a u16 header — compressed when that is smaller, else raw with bit 15
/// set — and sealed as soon as it is full, as libsquashfs's meta writer stores them. A
/// reference into the table is `block start (bytes from the table's start) << 16 | offset`.
///
/// Written by ovlcfs rather than through `sqfs_meta_writer_*`: the inode and directory tables
/// take one call per field here instead of a heap inode and several library calls per entry.
/// Sealed blocks go to the image file a MiB at a time (`streaming`) or stay in memory until
/// ``writeOut(to:)`` puts them at the file's end (the directory table, which follows the
/// inode table it is written beside).
final class MetadataWriter {
    static let blockSize = 8192

    private let compressor: UnsafeMutablePointer<sqfs_compressor_t>
    /// The block being filled.
    private let block: UnsafeMutableRawBufferPointer
    private var fill = 0
    /// Where a sealed block is compressed.
    private let scratch: UnsafeMutableRawBufferPointer
    /// Sealed blocks (headers included) not yet in the file.
    private var sealed: [UInt8] = []
    /// Bytes of sealed blocks already in the file.
    private var written: UInt64 = 0
    /// The file and the table's offset in it, when blocks stream to it.
    private let stream: (sink: any MetadataSink, start: UInt64)?
    /// The image, for errors.
    private let path: String
    /// What the table is, for errors ("the inode table").
    private let name: String

    /// A table whose blocks stream to the end of `file`, starting where the file ends now.
    convenience init(
        streamingTo file: SqfsFile, compressor: UnsafeMutablePointer<sqfs_compressor_t>, name: String, path: String
    ) {
        self.init(stream: (file, file.size), compressor: compressor, name: name, path: path)
    }

    /// A table whose blocks stream to `sink` from `start` on.
    convenience init(
        streamingTo sink: any MetadataSink, at start: UInt64, compressor: UnsafeMutablePointer<sqfs_compressor_t>,
        name: String, path: String
    ) {
        self.init(stream: (sink, start), compressor: compressor, name: name, path: path)
    }

    /// A table kept in memory until ``writeOut(to:)``.
    convenience init(compressor: UnsafeMutablePointer<sqfs_compressor_t>, name: String, path: String) {
        self.init(stream: nil, compressor: compressor, name: name, path: path)
    }

    private init(
        stream: (sink: any MetadataSink, start: UInt64)?, compressor: UnsafeMutablePointer<sqfs_compressor_t>,
        name: String,
        path: String
    ) {
        self.stream = stream
        self.compressor = compressor
        self.name = name
        self.path = path
        block = .allocate(byteCount: Self.blockSize, alignment: 16)
        scratch = .allocate(byteCount: Self.blockSize, alignment: 16)
    }

    deinit {
        block.deallocate()
        scratch.deallocate()
    }

    /// Where the next byte goes: the start of its block, from the table's start, and the
    /// offset in that block.
    var position: (block: UInt64, offset: Int) { (written + UInt64(sealed.count), fill) }

    /// Bytes of sealed blocks so far (the table's size once finished).
    var size: UInt64 { written + UInt64(sealed.count) }

    /// The position as a squashfs reference.
    var reference: UInt64 { position.block << 16 | UInt64(fill) }

    /// Appends `value` little-endian.
    @inline(__always)
    func append<T: FixedWidthInteger & UnsignedInteger>(_ value: T) throws(SquashfsError) {
        let size = MemoryLayout<T>.size
        if fill + size <= Self.blockSize {
            block.storeBytes(of: value.littleEndian, toByteOffset: fill, as: T.self)
            fill += size
            if fill == Self.blockSize { try seal() }
        } else {
            for shift in stride(from: 0, to: 8 * size, by: 8) { try append(UInt8(truncatingIfNeeded: value >> shift)) }
        }
    }

    /// Appends `bytes`.
    func append(_ bytes: ArraySlice<UInt8>) throws(SquashfsError) {
        var from = bytes.startIndex
        while from < bytes.endIndex {
            let count = min(bytes.endIndex - from, Self.blockSize - fill)
            bytes[from..<from + count].withUnsafeBytes { source in
                (block.baseAddress! + fill).copyMemory(from: source.baseAddress!, byteCount: count)
            }
            fill += count
            from += count
            if fill == Self.blockSize { try seal() }
        }
    }

    /// Appends `bytes`.
    func append(_ bytes: [UInt8]) throws(SquashfsError) { try append(bytes[...]) }

    /// Appends `bytes`.
    func append(_ bytes: UnsafeRawBufferPointer) throws(SquashfsError) {
        var from = 0
        while from < bytes.count {
            let count = min(bytes.count - from, Self.blockSize - fill)
            (block.baseAddress! + fill).copyMemory(from: bytes.baseAddress! + from, byteCount: count)
            fill += count
            from += count
            if fill == Self.blockSize { try seal() }
        }
    }

    /// Appends `count` zero bytes.
    func appendZeros(_ count: Int) throws(SquashfsError) {
        var remaining = count
        while remaining > 0 {
            let chunk = min(remaining, Self.blockSize - fill)
            (block.baseAddress! + fill).initializeMemory(as: UInt8.self, repeating: 0, count: chunk)
            fill += chunk
            remaining -= chunk
            if fill == Self.blockSize { try seal() }
        }
    }

    /// Seals the partly filled last block, if any (a table ends with one).
    func finish() throws(SquashfsError) {
        if fill > 0 { try seal() }
        try drain(atLeast: 1)
    }

    /// Writes a finished in-memory table to `sink` at `offset`.
    func writeOut(to sink: any MetadataSink, at offset: UInt64) throws(SquashfsError) {
        precondition(stream == nil && fill == 0, "writeOut of a streaming or unfinished table")
        try put(sealed, to: sink, at: offset)
        written += UInt64(sealed.count)
        sealed = []
    }

    /// Writes blocks; a failure names the image and the table, whatever file they went to.
    private func put(_ bytes: [UInt8], to sink: any MetadataSink, at offset: UInt64) throws(SquashfsError) {
        do {
            try sink.write(at: offset, bytes)
        } catch {
            throw SquashfsError(path: path, operation: "write \(name)", code: error.code, cause: error.cause)
        }
    }

    /// Compresses the full (or final) block behind its header.
    private func seal() throws(SquashfsError) {
        let size = fill
        let compressed = compressor.pointee.do_block(
            compressor, block.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(size),
            scratch.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt32(scratch.count))
        guard compressed >= 0 else {
            throw SquashfsError(path: path, operation: "compress a block of \(name)", code: compressed)
        }
        if sealed.capacity == 0 { sealed.reserveCapacity(stream == nil ? 1 << 16 : (1 << 20) + Self.blockSize + 2) }
        if compressed > 0 {
            sealed.appendLE(UInt16(compressed))
            sealed.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<Int(compressed)]))
        } else {
            sealed.appendLE(UInt16(size) | 0x8000)
            sealed.append(contentsOf: UnsafeRawBufferPointer(rebasing: block[..<size]))
        }
        fill = 0
        try drain(atLeast: 1 << 20)
    }

    /// Streams the sealed blocks to the file once there are `bytes` of them.
    private func drain(atLeast bytes: Int) throws(SquashfsError) {
        guard let stream, sealed.count >= bytes else { return }
        try put(sealed, to: stream.sink, at: stream.start + written)
        written += UInt64(sealed.count)
        sealed.removeAll(keepingCapacity: true)
    }
}

/// Where a table's sealed blocks go: the image, or a scratch file beside it.
protocol MetadataSink: AnyObject {
    func write(at offset: UInt64, _ bytes: [UInt8]) throws(SquashfsError)
}

extension SqfsFile: MetadataSink {}
