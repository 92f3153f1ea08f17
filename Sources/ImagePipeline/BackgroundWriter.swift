import Dispatch
import ImageModel
import LinuxSys
import Synchronization
import Verity

/// Writes an output on a thread of its own: the caller hands over each piece as it is made
/// and goes on making the next while this one goes to the file (and through the fs-verity
/// hasher, if asked for). At most `depth` pieces wait, so memory stays bounded. The first
/// failure is kept; later pieces are dropped, the caller learns of it at its next piece or at
/// ``finish()``, and the file is abandoned (the destination is untouched).
final class BackgroundWriter: Sendable {
    private let queue = DispatchQueue(label: "ovlcfs.output")
    private let slots: DispatchSemaphore
    /// The first failure; the only state both threads touch.
    private let failure = Mutex<(any Error)?>(nil)
    /// The file, the hasher and the count: touched only on `queue`, or after it has drained.
    private let output: Output

    private final class Output: @unchecked Sendable {
        var file: AtomicFileWriter?
        let hasher: FsVerityHasher?
        var bytes: UInt64 = 0

        init(file: AtomicFileWriter, hasher: FsVerityHasher?) {
            self.file = file
            self.hasher = hasher
        }
    }

    init(destination: String, digest: Bool, depth: Int = 4) throws {
        output = Output(
            file: try AtomicFileWriter(destination: destination), hasher: digest ? try FsVerityHasher() : nil)
        slots = DispatchSemaphore(value: depth)
    }

    /// Queues `piece`; throws the writer's failure, if one has happened.
    func write(_ piece: [UInt8]) throws {
        if let failure = failure.withLock({ $0 }) { throw failure }
        slots.wait()
        queue.async { [self] in
            defer { slots.signal() }
            guard failure.withLock({ $0 == nil }), let file = output.file else { return }
            do {
                try file.write(piece)
                output.hasher?.update(piece)
                output.bytes += UInt64(piece.count)
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
    }

    /// Waits for every piece, then renames the file into place; returns the bytes written and
    /// the fs-verity digest (if asked for).
    func finish() throws -> (bytes: UInt64, digest: Digest?) {
        queue.sync {}
        if let failure = failure.withLock({ $0 }) { throw failure }
        try output.file?.commit()
        output.file = nil
        return (output.bytes, output.hasher?.finalize())
    }

    /// Waits for the pieces in flight and discards the file.
    func abandon() {
        queue.sync {}
        output.file?.abandon()
        output.file = nil
    }
}
