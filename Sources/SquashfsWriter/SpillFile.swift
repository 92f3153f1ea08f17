import LinuxSys

/// A scratch file beside the image for a table written on another thread while the tables
/// before it are still being written: copied into the image once its place there is known,
/// then gone (unnamed where the filesystem can make it so; removed otherwise). The page
/// cache holds it, not the process, so the build's memory does not grow by its size.
final class SpillFile: MetadataSink {
    private let file: StagingFile
    /// The image, for errors.
    private let path: String

    /// A scratch file in the directory of `destination`.
    init(nextTo destination: String, path: String) throws(SquashfsError) {
        let slash = destination.lastIndex(of: "/")
        let directory = slash.map { String(destination[..<$0]) } ?? "."
        do {
            file = try DirectoryHandle(path: directory.isEmpty ? "/" : directory)
                .createStagingFile(prefix: ".ovlcfs-spill", permissions: 0o600)
        } catch {
            throw SquashfsError(path: path, operation: "create a scratch file", code: -2, cause: error.errno)
        }
        self.path = path
    }

    deinit { file.discard() }

    func write(at offset: UInt64, _ bytes: [UInt8]) throws(SquashfsError) {
        do {
            try FileIO.write(file.descriptor, at: offset, bytes, count: bytes.count, path: file.path)
        } catch {
            throw SquashfsError(path: path, operation: "write a scratch file", code: -2, cause: error.errno)
        }
    }

    /// Copies the first `count` bytes into `image` at `offset`, a MiB at a time.
    func copy(_ count: UInt64, into image: SqfsFile, at offset: UInt64) throws(SquashfsError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var done: UInt64 = 0
        while done < count {
            let want = Int(min(UInt64(buffer.count), count - done))
            let got: Int
            do {
                got = try FileIO.read(file.descriptor, at: done, into: &buffer, count: want, path: file.path)
            } catch {
                throw SquashfsError(path: path, operation: "read a scratch file", code: -2, cause: error.errno)
            }
            guard got > 0 else { throw SquashfsError(path: path, operation: "read a scratch file (short)", code: -2) }
            do {
                try image.write(at: offset + done, got < buffer.count ? Array(buffer[..<got]) : buffer)
            } catch {
                throw SquashfsError(
                    path: path, operation: "write the xattr tables", code: error.code, cause: error.cause)
            }
            done += UInt64(got)
        }
    }
}
