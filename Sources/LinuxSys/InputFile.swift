import Glibc
import SystemPackage

/// An input opened exactly once, so that what is sniffed is what is read: a regular file
/// (random access, prefix read with `pread` so nothing is consumed) or a stream — a pipe, a
/// FIFO, a terminal, a device, standard input (`-`) — read front to back.
///
/// Opened with `O_NONBLOCK`, so a FIFO without a writer cannot hang the open; the flag is
/// cleared again for reading (a FIFO that never gets a writer then reads as empty).
public final class InputFile {
    /// The name used in messages: the path, or `<stdin>`.
    public let name: String
    public let descriptor: FileDescriptor
    public let status: FileStatus

    public init(path: String) throws(IOError) {
        name = path == "-" ? "<stdin>" : path
        let fd =
            path == "-"
            ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0) : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw IOError("open", path: name, errno: .current) }
        descriptor = FileDescriptor(rawValue: fd)
        do {
            status = try FileStatus(fd: descriptor)
        } catch {
            try? descriptor.close()
            throw error
        }
        if status.isDirectory {
            try? descriptor.close()
            throw IOError("read", path: name, detail: "is a directory")
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    }

    deinit { try? descriptor.close() }

    public var isRegular: Bool { status.isRegular }
    public var size: UInt64 { status.size }

    /// Up to `count` bytes from the start of a regular file (nothing consumed); empty for a
    /// stream, which can only be read once.
    public func prefix(_ count: Int) throws(IOError) -> [UInt8] {
        guard isRegular else { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        var total = 0
        while total < count {
            let n = try FileIO.read(descriptor, at: UInt64(total), into: &buffer, count: count, path: name, from: total)
            if n == 0 { break }
            total += n
        }
        return Array(buffer[0..<total])
    }

    /// A descriptor of its own for the same open file (closed by whoever takes it).
    public func duplicateDescriptor() throws(IOError) -> FileDescriptor {
        let fd = fcntl(descriptor.rawValue, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw IOError("open", path: name, errno: .current) }
        return FileDescriptor(rawValue: fd)
    }

    /// A reader of the whole input (gzip undone), from its current position.
    public func reader() throws(IOError) -> InputReader {
        let fd = fcntl(descriptor.rawValue, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw IOError("open", path: name, errno: .current) }
        return try InputReader(fd: fd, name: name)
    }

    /// The whole of a regular file of at most `limit` bytes, read with `pread`.
    public func readAll(limit: UInt64) throws(IOError) -> [UInt8] {
        guard isRegular else { throw IOError("read", path: name, detail: "not a regular file") }
        guard size <= limit else {
            throw IOError("read", path: name, detail: "\(size) bytes, more than the \(limit) this input may have")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var total = 0
        while total < bytes.count {
            let n = try FileIO.read(
                descriptor, at: UInt64(total), into: &bytes, count: bytes.count - total, path: name, from: total)
            if n == 0 { break }
            total += n
        }
        guard total == bytes.count else {
            throw IOError("read", path: name, detail: "the file shrank while it was read")
        }
        return bytes
    }
}
