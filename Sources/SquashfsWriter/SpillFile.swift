import LinuxSys
import Synchronization

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

    /// Copies bytes `range` into `image`, byte `b` to `offset + b`, a MiB at a time.
    func copy(_ range: Range<UInt64>, into image: SqfsFile, at offset: UInt64) throws(SquashfsError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var done = range.lowerBound
        while done < range.upperBound {
            let want = Int(min(UInt64(buffer.count), range.upperBound - done))
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

/// Where a worker's table goes: a scratch file until the session knows the table's place in
/// the image, then the image itself. ``handOff(to:at:)`` copies what the worker has written
/// so far while it goes on writing, and redirects it once the copy has caught up; the image
/// is then the worker's alone until the session has waited for it.
final class HandoffSink: MetadataSink, @unchecked Sendable {
    private let spill: SpillFile
    private struct State {
        /// The end of what the worker has written to the scratch file.
        var spilled: UInt64 = 0
        /// Where its writes go from now on.
        var target: Target?
    }
    /// The image, and where the table starts in it. (The image is handed over: the session
    /// does not touch it again until it has waited for the worker.)
    private final class Target: @unchecked Sendable {
        let image: SqfsFile
        let start: UInt64
        init(image: SqfsFile, start: UInt64) {
            self.image = image
            self.start = start
        }
    }
    private let state = Mutex(State())

    init(_ spill: SpillFile) { self.spill = spill }

    /// The worker's writes, in table offsets from 0, each where the last ended (under the
    /// lock: a write is one block, and the session takes the lock only to look and to
    /// redirect).
    func write(at offset: UInt64, _ bytes: [UInt8]) throws(SquashfsError) {
        try state.withLock { (state: inout State) throws(SquashfsError) in
            if let target = state.target {
                try target.image.write(at: target.start + offset, bytes)
                return
            }
            // Appends only: the session may already have copied anything before `spilled`.
            precondition(offset == state.spilled, "a table written out of order into a scratch file")
            try spill.write(at: offset, bytes)
            state.spilled = offset + UInt64(bytes.count)
        }
    }

    /// Copies the table written so far into `image` at `start` (the image's end, so the
    /// copy extends it in order) and sends the worker's later writes there.
    func handOff(to image: SqfsFile, at start: UInt64) throws(SquashfsError) {
        let target = Target(image: image, start: start)
        var copied: UInt64 = 0
        while true {
            let available = state.withLock { state in
                if state.spilled == copied { state.target = target }
                return state.spilled
            }
            if available == copied { return }
            try spill.copy(copied..<available, into: image, at: start)
            copied = available
        }
    }
}
