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
    public convenience init(path: String, chunkSize: Int = 1 << 20) throws(IOError) {
        let input = try InputFile(path: path)
        let fd = fcntl(input.descriptor.rawValue, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw IOError("open", path: input.name, errno: .current) }
        try self.init(fd: fd, name: input.name, chunkSize: chunkSize)
    }

    /// Reads from `fd`, which the reader owns from now on.
    public init(fd: Int32, name: String, chunkSize: Int = 1 << 20) throws(IOError) {
        self.name = name
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
        // zlib reports a gzip stream cut short only through gzerror once gzread returns 0
        // (Z_BUF_ERROR, "unexpected end of file"): check it at the end too.
        var code: Int32 = 0
        let message = gzerror(handle, &code).map { String(cString: $0) } ?? "unknown zlib error"
        if count < 0 || (count == 0 && code != Z_OK) {
            if code == Z_ERRNO {
                throw IOError("read", path: name, errno: .current)
            }
            let reason = code == Z_BUF_ERROR ? "the gzip stream is truncated (\(message))" : message
            throw IOError("decompress", path: name, detail: reason)
        }
        return Int(count)
    }
}
