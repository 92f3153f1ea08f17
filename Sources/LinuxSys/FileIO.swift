import CLinux
import Glibc
import SystemPackage

/// File data operations on open descriptors.
public enum FileIO {
    /// Reads up to `buffer.count` bytes (retrying on EINTR); 0 at the end.
    public static func read(_ fd: FileDescriptor, into buffer: inout [UInt8], path: String) throws(IOError) -> Int {
        do {
            return try buffer.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
        } catch {
            throw IOError("read", path: path, errno: error as? Errno)
        }
    }

    /// Writes all of `bytes[range]`.
    public static func write(_ fd: FileDescriptor, _ bytes: [UInt8], count: Int, path: String) throws(IOError) {
        do {
            _ = try bytes.withUnsafeBytes { try fd.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        } catch {
            throw IOError("write", path: path, errno: error as? Errno)
        }
    }

    /// The start of the next data region at or after `offset` (`SEEK_DATA`); nil when only a
    /// hole follows. Filesystems without hole support report all data.
    public static func nextData(_ fd: FileDescriptor, from offset: UInt64, path: String) throws(IOError) -> UInt64? {
        let result = lseek(fd.rawValue, off_t(offset), ovl_seek_data)
        if result < 0 {
            if Glibc.errno == ENXIO { return nil }
            throw IOError("seek", path: path, errno: .current)
        }
        return UInt64(result)
    }

    /// The start of the next hole at or after `offset` (`SEEK_HOLE`; the end counts as one).
    public static func nextHole(_ fd: FileDescriptor, from offset: UInt64, path: String) throws(IOError) -> UInt64 {
        let result = lseek(fd.rawValue, off_t(offset), ovl_seek_hole)
        guard result >= 0 else { throw IOError("seek", path: path, errno: .current) }
        return UInt64(result)
    }

    /// Reads up to `count` bytes at `offset` into `buffer` (retrying on EINTR); 0 at the end.
    public static func read(
        _ fd: FileDescriptor, at offset: UInt64, into buffer: inout [UInt8], count: Int, path: String
    ) throws(IOError) -> Int {
        try read(fd, at: offset, into: &buffer, count: count, path: path, from: 0)
    }

    /// Reads up to `count` bytes at `offset` into `buffer[start...]`; 0 at the end.
    public static func read(
        _ fd: FileDescriptor, at offset: UInt64, into buffer: inout [UInt8], count: Int, path: String, from start: Int
    ) throws(IOError) -> Int {
        let want = min(count, buffer.count - start)
        do {
            return try buffer.withUnsafeMutableBytes {
                try fd.read(
                    fromAbsoluteOffset: Int64(offset),
                    into: UnsafeMutableRawBufferPointer(rebasing: $0[start..<start + want]), retryOnInterrupt: true)
            }
        } catch {
            throw IOError("read", path: path, errno: error as? Errno)
        }
    }

    /// Writes all of `bytes[0..<count]` at `offset`.
    public static func write(_ fd: FileDescriptor, at offset: UInt64, _ bytes: [UInt8], count: Int, path: String)
        throws(IOError)
    {
        do {
            _ = try bytes.withUnsafeBytes {
                try fd.writeAll(toAbsoluteOffset: Int64(offset), UnsafeRawBufferPointer(rebasing: $0[0..<count]))
            }
        } catch {
            throw IOError("write", path: path, errno: error as? Errno)
        }
    }

    /// Writes all of `bytes` at `offset`.
    public static func write(_ fd: FileDescriptor, at offset: UInt64, _ bytes: UnsafeRawBufferPointer, path: String)
        throws(IOError)
    {
        do {
            _ = try fd.writeAll(toAbsoluteOffset: Int64(offset), bytes)
        } catch {
            throw IOError("write", path: path, errno: error as? Errno)
        }
    }

    /// Sets a file's size (extending with a hole).
    public static func truncate(_ fd: FileDescriptor, to size: UInt64, path: String) throws(IOError) {
        guard ftruncate(fd.rawValue, off_t(size)) == 0 else { throw IOError("truncate", path: path, errno: .current) }
    }

    /// Flushes a file to disk.
    public static func sync(_ fd: FileDescriptor, path: String) throws(IOError) {
        guard fsync(fd.rawValue) == 0 else { throw IOError("sync", path: path, errno: .current) }
    }

    /// Makes `target` share `source`'s data (reflink); false where the filesystem cannot.
    public static func clone(_ source: FileDescriptor, into target: FileDescriptor) -> Bool {
        ioctl(target.rawValue, ovl_ficlone_request(), source.rawValue) == 0
    }

    /// The kernel's fs-verity measurement of an open file (its SHA-256 digest), or nil when
    /// the file or its filesystem has no fs-verity.
    public static func measureVerity(_ fd: FileDescriptor) -> [UInt8]? {
        var digest = [UInt8](repeating: 0, count: 32)
        var algorithm: UInt16 = 0
        let rc = digest.withUnsafeMutableBufferPointer {
            ovl_measure_verity(fd.rawValue, $0.baseAddress, 32, &algorithm)
        }
        return rc == 0 && algorithm == 1 ? digest : nil
    }

    /// Enables fs-verity on a file opened read-only (SHA-256, 4096-byte blocks, no salt, as
    /// `fsverity enable` does); the file becomes immutable. An already enabled file is fine.
    public static func enableVerity(_ fd: FileDescriptor, path: String) throws(IOError) {
        guard ovl_enable_verity(fd.rawValue) == 0 else {
            let errno = Errno.current
            if errno == .fileExists { return }
            throw IOError("enable fs-verity on", path: path, errno: errno)
        }
    }

    /// Sets the permission bits of an open file.
    public static func setPermissions(_ fd: FileDescriptor, _ mode: mode_t) {
        _ = fchmod(fd.rawValue, mode)
    }

    /// Whether standard error is a terminal.
    public static var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
}

/// An open read-only file, closed on deinit.
public final class ReadOnlyFile {
    public let descriptor: FileDescriptor
    public init(path: String) throws { descriptor = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec]) }
    deinit { try? descriptor.close() }
}
