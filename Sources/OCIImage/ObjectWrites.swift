import Dispatch
import Foundation
import ImageModel
import ObjectStore

/// Objects hashed and written by worker threads while the tar goes on being read: the reading
/// thread hands over a file's bytes (up to ``bufferedLimit``, as segments, so holes stay holes)
/// and goes on; a worker computes the fs-verity digest, writes and publishes the object. At
/// most `workers` × 2 files wait or run, so memory stays within a few buffers.
final class ObjectWrites: @unchecked Sendable {
    /// Files up to this size go to a worker; larger ones are streamed by the reading thread.
    static let bufferedLimit: UInt64 = 8 << 20

    private let queue = DispatchQueue(label: "ovlcfs.import.objects", attributes: .concurrent)
    private let group = DispatchGroup()
    private let slots: DispatchSemaphore
    private let lock = NSLock()
    private var results: [(digest: Digest, added: Bool)?] = []
    private var waiting: [(job: Int, inode: LayerTree.Inode)] = []
    private var failure: (any Error)?
    private var counts = (files: 0, bytes: UInt64(0), added: 0, present: 0)

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
    var filesStored: Int { locked { counts.files } }
    var bytesStored: UInt64 { locked { counts.bytes } }
    var objectsAdded: Int { locked { counts.added } }
    var objectsPresent: Int { locked { counts.present } }

    init(workers: Int) { slots = DispatchSemaphore(value: max(1, workers) * 2) }

    /// Queues a file; returns its job number.
    func submit(segments: [(offset: UInt64, bytes: [UInt8])], size: UInt64, store: ObjectStore?, name: String) -> Int {
        lock.lock()
        let job = results.count
        results.append(nil)
        lock.unlock()
        slots.wait()
        group.enter()
        queue.async { [self] in
            defer {
                slots.signal()
                group.leave()
            }
            lock.lock()
            let failed = failure != nil
            lock.unlock()
            if failed { return }
            do {
                let writer = try ObjectWriter(size: size, store: store, name: name)
                for segment in segments {
                    try segment.bytes.withUnsafeBytes { try writer.write($0, at: segment.offset) }
                }
                let (digest, added) = try writer.finish()
                lock.lock()
                results[job] = (digest, added)
                lock.unlock()
                count(size: size, added: added, stored: store != nil)
            } catch {
                lock.lock()
                if failure == nil { failure = ImportError.layer(layer: name, reason: "\(error)") }
                lock.unlock()
            }
        }
        return job
    }

    /// Counts a stored file.
    func count(size: UInt64, added: Bool, stored: Bool) {
        lock.lock()
        counts.files += 1
        counts.bytes = counts.bytes.saturatingAdd(size)
        if added { counts.added += 1 } else if stored { counts.present += 1 }
        lock.unlock()
    }

    /// Gives `inode` its object once `job` is done (see ``finish()``).
    func await(_ job: Int, for inode: LayerTree.Inode) { waiting.append((job, inode)) }

    /// The first worker's error, if any.
    func checkFailure() throws {
        lock.lock()
        let failure = self.failure
        lock.unlock()
        if let failure { throw failure }
    }

    /// Waits for every job and fills in the inodes' objects.
    func finish() throws {
        group.wait()
        try checkFailure()
        for (job, inode) in waiting {
            guard let (digest, _) = results[job] else { continue }
            inode.value.data = .external(ExternalObject(payload: .object(digest), digest: digest))
        }
        waiting = []
    }

    /// Waits for every job, dropping their results (after a failure).
    func abandon() {
        lock.lock()
        if failure == nil { failure = CancellationError() }
        lock.unlock()
        group.wait()
    }
}
