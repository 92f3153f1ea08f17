import CSquashfsShim
import LinuxSys

import struct SystemPackage.Errno

/// A libsquashfs call that failed: the operation, the library's error code and its name.
public struct SquashfsError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var code: Int32
    /// The system's reason behind an I/O error (libsquashfs keeps errno), e.g. "No space left on device".
    public var cause: Errno?

    public init(path: String, operation: String, code: Int32, cause: Errno? = nil) {
        self.path = path
        self.operation = operation
        self.code = code
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(path): \(operation) failed: \(cause)" }
        return "\(path): \(operation) failed: \(Self.name(code))"
    }

    static func name(_ code: Int32) -> String {
        switch code {
        case -1: "out of memory"
        case -2: "I/O error"
        case -3: "compressor error"
        case -4: "internal error"
        case -5: "corrupted image"
        case -6: "unsupported"
        case -7: "numeric overflow"
        case -8: "out of bounds"
        case -11: "block size mismatch in superblock"
        case -12: "not a directory"
        case -13: "no such entry"
        case -14: "link loop"
        case -15: "not a regular file"
        case -16: "invalid argument"
        case -17: "call out of sequence"
        default: "error"
        }
    }
}

/// Turns a libsquashfs return code into a thrown ``SquashfsError``.
@inline(__always)
func check(_ rc: Int32, _ operation: @autoclosure () -> String, path: String) throws(SquashfsError) {
    if rc < 0 {
        let errno = Errno.current
        throw SquashfsError(
            path: path, operation: operation(), code: rc, cause: rc == -2 && errno.rawValue != 0 ? errno : nil)
    }
}

/// Owns one libsquashfs object (`sqfs_object_t`) and destroys it exactly once.
final class SqfsObject {
    private let raw: UnsafeMutableRawPointer
    init(_ pointer: OpaquePointer) { raw = UnsafeMutableRawPointer(pointer) }
    init<T>(_ pointer: UnsafeMutablePointer<T>) { raw = UnsafeMutableRawPointer(pointer) }
    /// The object as the opaque handle most libsquashfs calls take.
    var pointer: OpaquePointer { OpaquePointer(raw) }
    deinit { ovl_sqfs_destroy(raw) }
}

/// Owns a `sqfs_file_t`.
final class SqfsFile {
    let pointer: UnsafeMutablePointer<sqfs_file_t>
    let path: String

    /// Opens `path`; errors name `displayPath` (the output, not its temporary's /proc link).
    init(path: String, flags: SQFS_FILE_OPEN_FLAGS, displayPath: String? = nil) throws(SquashfsError) {
        guard let file = sqfs_open_file(path, flags.rawValue) else {
            throw SquashfsError(path: displayPath ?? path, operation: "open", code: -2)
        }
        pointer = file
        self.path = displayPath ?? path
    }

    /// A read-only view of `size` bytes of the open file `fd` from `offset` on.
    init(fd: Int32, offset: UInt64, size: UInt64, path: String) throws(SquashfsError) {
        guard let file = ovl_sqfs_open_fd_range(fd, offset, size) else {
            throw SquashfsError(path: path, operation: "open", code: -2)
        }
        pointer = file
        self.path = path
    }

    deinit { ovl_sqfs_destroy(UnsafeMutableRawPointer(pointer)) }

    var size: UInt64 { ovl_sqfs_file_size(pointer) }

    func write(at offset: UInt64, _ bytes: [UInt8]) throws(SquashfsError) {
        let rc = bytes.withUnsafeBytes { ovl_sqfs_file_write_at(pointer, offset, $0.baseAddress, $0.count) }
        try check(rc, "write", path: path)
    }

    func read(at offset: UInt64, count: Int) throws(SquashfsError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let rc = bytes.withUnsafeMutableBytes { ovl_sqfs_file_read_at(pointer, offset, $0.baseAddress, count) }
        try check(rc, "read", path: path)
        return bytes
    }
}

/// Owns a `sqfs_compressor_t`: a real one, or the "store raw" one for uncompressed tables.
final class SqfsCompressor {
    let pointer: UnsafeMutablePointer<sqfs_compressor_t>

    /// A compressor for `id` at `level` (nil: the library default), or one that stores
    /// blocks uncompressed when `raw` is set.
    init(id: SQFS_COMPRESSOR, blockSize: Int, level: Int?, raw: Bool, forReading: Bool = false, path: String)
        throws(SquashfsError)
    {
        if raw {
            guard let cmp = ovl_sqfs_null_compressor_create(id, blockSize) else {
                throw SquashfsError(path: path, operation: "create the raw compressor", code: -1)
            }
            pointer = cmp
            return
        }
        var config = sqfs_compressor_config_t()
        let flags = forReading ? UInt16(SQFS_COMP_FLAG_UNCOMPRESS.rawValue) : 0
        try check(sqfs_compressor_config_init(&config, id, blockSize, flags), "configure the compressor", path: path)
        if let level { config.level = UInt32(level) }
        var cmp: UnsafeMutablePointer<sqfs_compressor_t>?
        try check(sqfs_compressor_create(&config, &cmp), "create the \(Self.name(id)) compressor", path: path)
        pointer = cmp!
    }

    deinit { ovl_sqfs_destroy(UnsafeMutableRawPointer(pointer)) }

    static func name(_ id: SQFS_COMPRESSOR) -> String {
        sqfs_compressor_name_from_id(id).map { String(cString: $0) } ?? "#\(id.rawValue)"
    }
}

/// A generic inode allocated by us or by libsquashfs; freed with `sqfs_free`.
final class SqfsInode {
    let pointer: UnsafeMutablePointer<sqfs_inode_generic_t>
    init(_ pointer: UnsafeMutablePointer<sqfs_inode_generic_t>) { self.pointer = pointer }

    /// A zeroed inode with room for `payloadBytes` of trailing data.
    convenience init(payloadBytes: Int, path: String) throws(SquashfsError) {
        guard let inode = ovl_sqfs_inode_alloc(payloadBytes) else {
            throw SquashfsError(path: path, operation: "allocate an inode", code: -1)
        }
        self.init(inode)
    }

    /// Copies `bytes` into the trailing payload (allocated with room for them) and records its size.
    func setPayload(_ bytes: [UInt8]) {
        precondition(
            bytes.count <= Int(pointer.pointee.payload_bytes_available), "inode payload larger than its allocation")
        pointer.pointee.payload_bytes_used = UInt32(bytes.count)
        let extra = ovl_sqfs_inode_extra(pointer)!
        for (i, byte) in bytes.enumerated() { extra[i] = byte }
    }

    deinit { ovl_sqfs_free(pointer) }
}
