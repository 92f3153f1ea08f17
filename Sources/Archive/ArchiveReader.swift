import CArchive
import Glibc

/// Where an archive's bytes come from: `read` fills `buffer` and returns how many bytes it
/// put there, 0 at the end.
public protocol ByteSource: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// An error libarchive reported, or one a ``ByteSource`` threw while libarchive read from it.
public struct ArchiveError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var message: String
    /// The error a ``ByteSource`` threw, when that is what stopped the archive.
    public var cause: (any Error)?
    public init(operation: String, message: String, cause: (any Error)? = nil) {
        self.operation = operation
        self.message = message
        self.cause = cause
    }
    public var description: String { cause.map { "\($0)" } ?? "\(operation): \(message)" }
}

/// A compression ovlcfs undoes: what OCI layers use (gzip, zstd) and what tarballs commonly
/// use (xz, bzip2), each through libarchive's built-in decoder.
public enum Compression: String, Sendable, Equatable {
    case none, gzip, zstd, xz, bzip2

    /// The compression whose magic number `prefix` starts with (none for anything else).
    public static func detect(_ prefix: some Collection<UInt8>) -> Compression {
        let bytes = Array(prefix.prefix(6))
        if bytes.starts(with: [0x1F, 0x8B]) { return .gzip }
        if bytes.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) { return .zstd }
        if bytes.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
        if bytes.starts(with: Array("BZh".utf8)) { return .bzip2 }
        return .none
    }

    var libarchiveCode: Int32 {
        switch self {
        case .none: ARCHIVE_FILTER_NONE
        case .gzip: ARCHIVE_FILTER_GZIP
        case .zstd: ARCHIVE_FILTER_ZSTD
        case .xz: ARCHIVE_FILTER_XZ
        case .bzip2: ARCHIVE_FILTER_BZIP2
        }
    }
}

/// What kind of file a tar entry is.
public enum ArchiveEntryType: Sendable, Equatable {
    case regular, directory, symlink, hardLink, characterDevice, blockDevice, fifo, socket
}

/// One archive entry's header, copied out of libarchive (valid after the next call).
public struct ArchiveEntry: Sendable {
    /// The path as stored (raw bytes; not normalised).
    public var path: [UInt8]
    public var type: ArchiveEntryType
    /// Permission bits, with set-user-ID, set-group-ID and sticky.
    public var permissions: UInt16
    public var uid: Int64
    public var gid: Int64
    public var mtimeSeconds: Int64
    public var mtimeNanoseconds: Int64
    /// The size of the file's content, holes included (0 for everything but regular files).
    public var size: Int64
    /// A symlink's target, or the path a hard link names.
    public var linkTarget: [UInt8]
    public var rdevMajor: UInt32
    public var rdevMinor: UInt32
    /// Extended attributes (PAX `SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`), in header order.
    public var xattrs: [(key: [UInt8], value: [UInt8])]
}

/// A streaming archive reader over libarchive: entries one at a time and their data in blocks,
/// never the whole archive in memory.
///
/// `.tar` reads tar archives (ustar, GNU, PAX, with GNU and PAX sparse files; an empty stream is
/// an empty archive). `.raw` yields the decompressed byte stream of a compressed file (the data of
/// its one entry). Exactly the compression asked for is undone.
public final class ArchiveReader {
    public enum Format: Sendable { case tar, raw }

    private let handle: OpaquePointer
    private let context: SourceContext
    private var entry: OpaquePointer?
    private var finished = false

    /// Keeps the source and the buffer the read callback lends libarchive.
    final class SourceContext {
        let source: any ByteSource
        let buffer: UnsafeMutableRawBufferPointer
        var error: (any Error)?
        init(source: any ByteSource, bufferSize: Int) {
            self.source = source
            buffer = .allocate(byteCount: bufferSize, alignment: 16)
        }
        deinit { buffer.deallocate() }
    }

    /// - Parameter compression: the one compression to undo (libarchive's own decoder, never an
    ///   external program, never a second filter stacked on the first). ``Compression/detect(_:)``
    ///   tells it from a stream's first bytes.
    public init(format: Format, source: any ByteSource, compression: Compression = .none, bufferSize: Int = 1 << 20)
        throws(ArchiveError)
    {
        guard let handle = archive_read_new() else {
            throw ArchiveError(operation: "archive_read_new", message: "out of memory")
        }
        self.handle = handle
        context = SourceContext(source: source, bufferSize: bufferSize)
        switch format {
        case .tar:
            archive_read_support_format_tar(handle)
            archive_read_support_format_empty(handle)
        case .raw:
            archive_read_support_format_raw(handle)
            archive_read_support_format_empty(handle)
        }
        if compression != .none { archive_read_append_filter(handle, compression.libarchiveCode) }
        let opaque = Unmanaged.passUnretained(context).toOpaque()
        let read:
            @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?)
                -> Int = { _, data, out in
                    let context = Unmanaged<SourceContext>.fromOpaque(data!).takeUnretainedValue()
                    do {
                        let count = try context.source.read(into: context.buffer)
                        out?.pointee = UnsafeRawPointer(context.buffer.baseAddress)
                        return count
                    } catch {
                        context.error = error
                        return -1
                    }
                }
        guard archive_read_open(handle, opaque, nil, read, nil) == ARCHIVE_OK else {
            // deinit frees the handle: every stored property is set by now.
            throw self.error("open the archive")
        }
    }

    deinit { archive_read_free(handle) }

    private func error(_ operation: String) -> ArchiveError {
        let message = archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error"
        return ArchiveError(operation: operation, message: message, cause: context.error)
    }

    /// The next entry's header, or nil at the end of the archive.
    public func next() throws(ArchiveError) -> ArchiveEntry? {
        guard !finished else { return nil }
        var entry: OpaquePointer? = nil
        let rc = archive_read_next_header(handle, &entry)
        if rc == ARCHIVE_EOF {
            finished = true
            return nil
        }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
            finished = true
            throw error("read an entry header")
        }
        self.entry = entry
        return Self.copy(entry)
    }

    /// The current entry's next data block: its offset in the file (a gap before it is a
    /// hole) and the bytes, valid until the next call; nil after the last block.
    public func readBlock() throws(ArchiveError) -> (offset: Int64, bytes: UnsafeRawBufferPointer)? {
        var buffer: UnsafeRawPointer? = nil
        var size = 0
        var offset: Int64 = 0
        let rc = archive_read_data_block(handle, &buffer, &size, &offset)
        if rc == ARCHIVE_EOF { return nil }
        guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else { throw error("read an entry's data") }
        return (offset, UnsafeRawBufferPointer(start: buffer, count: size))
    }

    /// Reads the current entry's data sequentially into `buffer` (holes as zeros); 0 at its end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let count = archive_read_data(handle, buffer.baseAddress, buffer.count)
        guard count >= 0 else { throw error("read an entry's data") }
        return count
    }

    /// The bytes of the compressed input consumed so far (after the last entry: the archive's size).
    public var compressedBytesRead: Int64 { archive_filter_bytes(handle, -1) }

    private static func copy(_ entry: OpaquePointer) -> ArchiveEntry {
        func bytes(_ pointer: UnsafePointer<CChar>?) -> [UInt8] {
            guard let pointer else { return [] }
            return Array(UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)))
        }
        let hardLink = archive_entry_hardlink(entry)
        let type: ArchiveEntryType
        switch archive_entry_filetype(entry) & 0o170000 {
        case _ where hardLink != nil: type = .hardLink
        case 0o040000: type = .directory
        case 0o120000: type = .symlink
        case 0o020000: type = .characterDevice
        case 0o060000: type = .blockDevice
        case 0o010000: type = .fifo
        case 0o140000: type = .socket
        default: type = .regular
        }
        var xattrs: [(key: [UInt8], value: [UInt8])] = []
        if archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>? = nil
            var value: UnsafeRawPointer? = nil
            var size = 0
            while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK {
                let valueBytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                xattrs.append((bytes(name), valueBytes))
            }
        }
        return ArchiveEntry(
            path: bytes(archive_entry_pathname(entry)), type: type,
            permissions: UInt16(archive_entry_perm(entry) & 0o7777),
            uid: archive_entry_uid(entry), gid: archive_entry_gid(entry),
            mtimeSeconds: Int64(archive_entry_mtime(entry)), mtimeNanoseconds: Int64(archive_entry_mtime_nsec(entry)),
            size: type == .regular ? archive_entry_size(entry) : 0,
            linkTarget: hardLink.map { bytes($0) } ?? bytes(archive_entry_symlink(entry)),
            rdevMajor: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry)),
            rdevMinor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry)),
            xattrs: xattrs)
    }
}
