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
    private let state: Mutex<State>

    private struct State: ~Copyable {
        var file: AtomicFileWriter?
        var hasher: FsVerityHasher?
        var bytes: UInt64 = 0
        var failure: (any Error)?
    }

    init(destination: String, digest: Bool, depth: Int = 4) throws {
        let file = try AtomicFileWriter(destination: destination)
        state = Mutex(State(file: file, hasher: digest ? try FsVerityHasher() : nil))
        slots = DispatchSemaphore(value: depth)
    }

    /// Queues `piece`; throws the writer's failure, if one has happened.
    func write(_ piece: [UInt8]) throws {
        if let failure = state.withLock({ $0.failure }) { throw failure }
        slots.wait()
        queue.async { [self] in
            defer { slots.signal() }
            state.withLock { state in
                guard state.failure == nil, let file = state.file else { return }
                do {
                    try file.write(piece)
                    state.hasher?.update(piece)
                    state.bytes += UInt64(piece.count)
                } catch {
                    state.failure = error
                }
            }
        }
    }

    /// Waits for every piece, then renames the file into place; returns the bytes written and
    /// the fs-verity digest (if asked for).
    func finish() throws -> (bytes: UInt64, digest: Digest?) {
        queue.sync {}
        return try state.withLock { state in
            if let failure = state.failure { throw failure }
            try state.file?.commit()
            state.file = nil
            return (state.bytes, state.hasher?.finalize())
        }
    }

    /// Waits for the pieces in flight and discards the file.
    func abandon() {
        queue.sync {}
        state.withLock { state in
            state.file?.abandon()
            state.file = nil
        }
    }
}
