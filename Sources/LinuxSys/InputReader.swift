import CZlib
import Glibc
import SystemPackage

/// Reads a file — plain or gzip-compressed, told apart by its magic bytes — or standard
/// input (`-`), in large chunks into one reused buffer.
///
/// zlib's gz* layer reads uncompressed input transparently, so every input takes the same
/// path and a `.gz` suffix is not needed.
public final class InputReader {
    /// The name used in messages: the path, or `<stdin>`.
    public let name: String
    private var handle: gzFile?
    private var buffer: [UInt8]

    /// Opens `path` (`-` for standard input).
    public init(path: String, chunkSize: Int = 1 << 20) throws(IOError) {
        name = path == "-" ? "<stdin>" : path
        let fd: Int32
        if path == "-" {
            fd = dup(STDIN_FILENO)
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
        }
        guard fd >= 0 else { throw IOError("open", path: name, errno: Errno(rawValue: Glibc.errno)) }
        var st = stat()
        if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
            Glibc.close(fd)
            throw IOError("read", path: name, detail: "is a directory")
        }
        guard let handle = gzdopen(fd, "rb") else {
            Glibc.close(fd)
            throw IOError("open", path: name, detail: "zlib could not allocate a reader")
        }
        gzbuffer(handle, UInt32(max(chunkSize, 64 << 10)))
        self.handle = handle
        buffer = [UInt8](repeating: 0, count: chunkSize)
    }

    deinit { if let handle { gzclose_r(handle) } }

    /// Calls `body` with each chunk of the decompressed input until the end.
    public func forEachChunk(_ body: (ArraySlice<UInt8>) throws -> Void) throws {
        while true {
            let count = try readChunk()
            if count == 0 { return }
            try body(buffer[0..<count])
        }
    }

    /// Reads the whole (decompressed) input.
    public func readAll() throws -> [UInt8] {
        var all: [UInt8] = []
        try forEachChunk { all.append(contentsOf: $0) }
        return all
    }

    private func readChunk() throws(IOError) -> Int {
        guard let handle else { return 0 }
        let capacity = buffer.count
        let count = buffer.withUnsafeMutableBytes { raw in
            gzread(handle, raw.baseAddress, UInt32(capacity))
        }
        if count < 0 {
            var code: Int32 = 0
            let message = gzerror(handle, &code).map { String(cString: $0) } ?? "unknown zlib error"
            if code == Z_ERRNO {
                throw IOError("read", path: name, errno: Errno(rawValue: Glibc.errno))
            }
            throw IOError("decompress", path: name, detail: message)
        }
        return Int(count)
    }
}
