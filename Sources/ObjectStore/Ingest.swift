import Dispatch
import Foundation
import ImageModel
import LinuxSys
import SystemPackage
import Verity

/// How to ingest a directory tree.
public struct IngestOptions: Sendable {
    public var storeMode: StoreMode
    /// Non-empty files of at most this many bytes become inline content (composefs's default).
    public var inlineThreshold: Int
    /// Descend into directories on other filesystems (else they are recorded, empty).
    public var crossDevices: Bool
    /// Warn about and leave out entries that cannot be read, instead of failing.
    public var skipUnreadable: Bool
    /// Hashing/copying threads.
    public var workers: Int
    /// Called now and then with progress (from any thread).
    public var progress: (@Sendable (IngestProgress) -> Void)?
    /// Test seam: called on a worker just before a file is hashed, with its path.
    public var beforeHashing: (@Sendable (String) -> Void)?

    public init(
        storeMode: StoreMode = .copy, inlineThreshold: Int = Limits.recommendedInlineContentLength,
        crossDevices: Bool = false, skipUnreadable: Bool = false,
        workers: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.storeMode = storeMode
        self.inlineThreshold = inlineThreshold
        self.crossDevices = crossDevices
        self.skipUnreadable = skipUnreadable
        self.workers = max(1, workers)
    }
}

public struct IngestProgress: Sendable {
    public var filesFound: Int
    public var filesHashed: Int
    public var bytesFound: UInt64
    public var bytesHashed: UInt64
    public var seconds: Double
    public var walkDone: Bool
}

public struct IngestResult: Sendable {
    public var image: Image
    public var filesHashed: Int
    public var bytesHashed: UInt64
    public var objectsAdded: Int
    public var objectsPresent: Int
    /// Entries left out with `skipUnreadable`, with the reason.
    public var skipped: [String]
}

/// Reads a directory tree into a model, hashing every file (fs-verity) into an objects store.
///
/// The walk is anchored on directory file descriptors (`openat`/`fstatat`, never following a
/// symlink, never leaving the tree) and single-threaded; files are opened during the walk and
/// handed to `workers` threads that hash (and copy or link) them, with a bounded number in
/// flight. A file whose size, mtime or ctime changes while it is hashed is hashed again once,
/// then refused: a digest is never recorded for content that was not what was stat'ed.
public enum Ingest {
    public static func ingest(directory: String, store: ObjectStore?, options: IngestOptions = IngestOptions()) throws
        -> IngestResult
    {
        if options.storeMode != .none && store == nil {
            throw StoreError(
                path: directory, reason: "--store-mode \(options.storeMode.rawValue) needs an objects store (--objects)"
            )
        }
        let walker = try Walker(directory: directory, store: store, options: options)
        return try walker.run()
    }
}

/// One hashing job: an open file and where its result goes.
private struct Job: Sendable {
    var index: Int
    var inode: InodeID
    var file: FileDescriptor
    var before: FileStatus
    var directory: DirectoryHandle
    var name: [UInt8]
    var path: String
}

private final class Shared: @unchecked Sendable {
    let lock = NSLock()
    var digests: [Digest?] = []
    var error: (any Error)?
    var filesHashed = 0
    var bytesHashed: UInt64 = 0
    var added = 0
    var present = 0
}

private final class Walker {
    let rootPath: String
    let store: ObjectStore?
    let options: IngestOptions
    let root: DirectoryHandle
    let rootDevice: UInt64
    var builder: ImageBuilder
    var hardLinks: [[UInt64]: (inode: InodeID, path: [UInt8], entry: EntryID)] = [:]
    var skipped: [String] = []
    var jobs: [(InodeID, Int)] = []
    let shared = Shared()
    let queue = DispatchQueue(label: "ovlcfs.ingest", attributes: .concurrent)
    let group = DispatchGroup()
    let slots: DispatchSemaphore
    let started = ContinuousClock.now
    var filesFound = 0
    var bytesFound: UInt64 = 0
    var lastProgress = ContinuousClock.now

    init(directory: String, store: ObjectStore?, options: IngestOptions) throws {
        rootPath = directory
        self.store = store
        self.options = options
        root = try DirectoryHandle(path: directory)
        let status = try root.status([])
        rootDevice = status.device
        var inode = Self.inode(from: status, data: .none)
        inode.size = status.size
        builder = try ImageBuilder(root: inode)
        slots = DispatchSemaphore(value: options.workers)
        batchFiles = min(64, max(1, ProcessLimits.raiseOpenFiles() / 4 / (options.workers + 1)))
    }

    static func inode(from status: FileStatus, data: ImageModel.FileData) -> ImageModel.Inode {
        ImageModel.Inode(
            type: FileType(mode: status.mode) ?? .regular, permissions: UInt16(status.mode & 0o7777), uid: status.uid,
            gid: status.gid, nlink: UInt32(clamping: status.nlink), rdev: status.rdev, size: status.size,
            mtime: Timestamp(seconds: status.mtimeSeconds, nanoseconds: status.mtimeNanoseconds), data: data)
    }

    func run() throws -> IngestResult {
        builder.setXattrs(try xattrs(of: root, []), of: InodeID(0))
        // A directory is opened when the walk reaches it, not when it is found: one descriptor
        // per directory with unvisited subdirectories, not one per pending directory.
        var stack: [(open: () throws -> DirectoryHandle, entry: EntryID, path: [UInt8])] = [({ self.root }, .root, [])]
        do {
            while let (open, entry, path) = stack.popLast() {
                try checkFailure()
                let dir = try open()
                for name in try dir.entries() {
                    if let child = try visit(name, in: dir, parent: entry, parentPath: path) {
                        // Reopened from the root when reached (no descriptor held meanwhile);
                        // paths too long for one lookup keep their parent open instead.
                        let relative = Array(child.path.dropFirst())
                        stack.append(
                            (
                                relative.count < 4000
                                    ? { [root] in try root.openDirectory(beneath: relative) }
                                    : { try dir.openDirectory(name) },
                                child.entry, child.path
                            ))
                    }
                }
            }
        } catch {
            for job in batch { try? job.file.close() }
            batch = []
            group.wait()
            throw error
        }
        flushBatch()
        group.wait()
        report(walkDone: true, force: true)
        try checkFailure()
        for (inode, index) in jobs {
            let digest = shared.digests[index]!
            builder.updateInode(inode) { $0.data = .external(ExternalObject(payload: .object(digest), digest: digest)) }
        }
        let image = try builder.build()
        do { try image.validate() } catch { throw StoreError(path: rootPath, reason: "\(error)") }
        return IngestResult(
            image: image, filesHashed: shared.filesHashed, bytesHashed: shared.bytesHashed,
            objectsAdded: shared.added, objectsPresent: shared.present, skipped: skipped)
    }

    func checkFailure() throws {
        shared.lock.lock()
        let error = shared.error
        shared.lock.unlock()
        if let error { throw error }
    }

    func xattrs(of dir: DirectoryHandle, _ name: [UInt8]) throws -> [Xattr] {
        try dir.xattrs(name).map { Xattr(key: $0.key, value: $0.value) }
    }

    /// Records one entry; returns a directory to descend into.
    func visit(_ name: [UInt8], in dir: DirectoryHandle, parent: EntryID, parentPath: [UInt8]) throws -> (
        entry: EntryID, path: [UInt8]
    )? {
        let path = parentPath + [0x2F] + name
        let shown = rootPath + String(decoding: path, as: UTF8.self)
        do {
            let status = try dir.status(name)
            guard let type = FileType(mode: status.mode) else {
                throw StoreError(path: shown, reason: "unknown file type \(String(status.mode, radix: 8))")
            }
            // Hard links: one inode per (device, inode number); the smallest path in byte order is primary.
            if type != .directory && status.nlink > 1, let seen = hardLinks[[status.device, status.inode]] {
                let entry = try builder.addHardLink(name: name, in: parent, to: seen.inode)
                if path.lexicographicallyPrecedes(seen.path) {
                    builder.makePrimary(entry)
                    hardLinks[[status.device, status.inode]] = (seen.inode, path, entry)
                }
                return nil
            }
            var inode = Self.inode(from: status, data: .none)
            var descend = false
            var job: (FileDescriptor, FileStatus)? = nil
            switch type {
            case .directory:
                if let store, store.isRoot(status) {
                    skipped.append("\(shown): the objects store itself, left out")
                    return nil
                }
                descend = status.device == rootDevice || options.crossDevices
                // Opened (and held) only when the walk reaches it. With --skip-unreadable an open
                // now decides whether it is readable, so an unreadable one is left out whole;
                // without, the open when it is reached reports the same error.
                if descend && options.skipUnreadable { _ = try dir.openDirectory(name) }
            case .symlink:
                let target = try dir.readLink(name)
                inode.data = .symlink(target)
                inode.size = UInt64(target.count)
            case .regular:
                if status.size == 0 {
                    inode.data = .inline([])
                } else if status.size <= UInt64(options.inlineThreshold) {
                    let file = try dir.openFile(name)
                    defer { try? file.close() }
                    var buffer = [UInt8](repeating: 0, count: Int(status.size) + 1)
                    let count = try FileIO.read(file, into: &buffer, path: shown)
                    guard count == Int(status.size) else {
                        throw StoreError(
                            path: shown,
                            reason: "file changed during ingest (read \(count) bytes, stat said \(status.size))")
                    }
                    inode.data = .inline(Array(buffer[0..<count]))
                } else {
                    inode.data = .external(ExternalObject(payload: nil, digest: nil))
                    job = (try dir.openFile(name), status)
                }
            default:
                inode.size = 0
            }
            inode.xattrs = builder.internXattrs(try xattrs(of: dir, name))
            let entry = try builder.add(name: name, in: parent, inode: inode)
            let id = builder.inodeID(of: entry)
            if type != .directory && status.nlink > 1 { hardLinks[[status.device, status.inode]] = (id, path, entry) }
            if let (file, before) = job {
                submit(
                    Job(
                        index: jobs.count, inode: id, file: file, before: before, directory: dir, name: name,
                        path: shown))
            }
            return descend ? (entry, path) : nil
        } catch let error as IOError
            where options.skipUnreadable && (error.errno == .permissionDenied || error.errno == .ioError)
        {
            skipped.append("\(error)")
            return nil
        }
    }

    /// Jobs waiting to be handed to a worker: small files travel in batches, so a tree of many
    /// small files does not pay a thread hand-off per file.
    var batch: [Job] = []
    var batchBytes: UInt64 = 0
    /// Files per batch: up to 64, fewer when the open-file limit is low, so the files held
    /// open in flight (a batch per worker, plus the one being filled) stay within a quarter of
    /// the limit — the rest is for the walk's directories (one per level being walked).
    let batchFiles: Int
    static let batchBytesLimit: UInt64 = 4 << 20

    func submit(_ job: Job) {
        jobs.append((job.inode, job.index))
        shared.lock.lock()
        shared.digests.append(nil)
        shared.lock.unlock()
        filesFound += 1
        bytesFound += job.before.size
        report(walkDone: false, force: false)
        batch.append(job)
        batchBytes += job.before.size
        if batch.count >= batchFiles || batchBytes >= Self.batchBytesLimit { flushBatch() }
    }

    /// Hands the pending batch to a worker (waiting while `workers` batches are in flight).
    func flushBatch() {
        guard !batch.isEmpty else { return }
        let work = batch
        batch = []
        batchBytes = 0
        slots.wait()
        group.enter()
        let store = store, options = options, shared = shared, slots = slots, group = group
        queue.async {
            defer {
                slots.signal()
                group.leave()
            }
            for job in work {
                defer { try? job.file.close() }
                shared.lock.lock()
                let failed = shared.error != nil
                shared.lock.unlock()
                if failed { continue }
                do {
                    let (digest, added) = try Self.process(job, store: store, options: options)
                    shared.lock.lock()
                    shared.digests[job.index] = digest
                    shared.filesHashed += 1
                    shared.bytesHashed += job.before.size
                    if added { shared.added += 1 } else if options.storeMode != .none { shared.present += 1 }
                    shared.lock.unlock()
                } catch {
                    shared.lock.lock()
                    if shared.error == nil { shared.error = error }
                    shared.lock.unlock()
                }
            }
        }
    }

    func report(walkDone: Bool, force: Bool) {
        guard let progress = options.progress else { return }
        let now = ContinuousClock.now
        guard force || now - lastProgress > .milliseconds(250) else { return }
        lastProgress = now
        shared.lock.lock()
        let hashed = shared.filesHashed, bytes = shared.bytesHashed
        shared.lock.unlock()
        let elapsed = now - started
        progress(
            IngestProgress(
                filesFound: filesFound, filesHashed: hashed, bytesFound: bytesFound, bytesHashed: bytes,
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                walkDone: walkDone))
    }

    /// Hashes one file (copying or linking it into the store); returns the digest and whether
    /// a new object was added. Retries once if the file changes meanwhile.
    static func process(_ job: Job, store: ObjectStore?, options: IngestOptions) throws -> (Digest, Bool) {
        options.beforeHashing?(job.path)
        for attempt in 0..<2 {
            if attempt > 0 { _ = try? job.file.seek(offset: 0, from: .start) }
            let result = try hashOnce(job, store: store, mode: options.storeMode)
            let after = try FileStatus(fd: job.file)
            if after.size == job.before.size && after.mtimeSeconds == job.before.mtimeSeconds
                && after.mtimeNanoseconds == job.before.mtimeNanoseconds
                && after.ctimeSeconds == job.before.ctimeSeconds
                && after.ctimeNanoseconds == job.before.ctimeNanoseconds && result.count == job.before.size
            {
                guard let store, options.storeMode != .none else { return (result.digest, false) }
                let added: Bool
                switch options.storeMode {
                case .copy: added = try store.publish(result.staged!, as: result.digest)
                case .hardlink: added = try store.link(from: job.directory, name: job.name, as: result.digest)
                case .none: added = false
                }
                return (result.digest, added)
            }
            result.staged?.discard()
        }
        throw StoreError(
            path: job.path, reason: "file changed during ingest (size, mtime or ctime differ before and after hashing)")
    }

    /// One pass over the file: its digest, the bytes read, and (copy mode) the temporary copy.
    /// Holes (`SEEK_HOLE`) are neither read nor written: their zero blocks reuse one hash and
    /// the copy keeps them as holes.
    static func hashOnce(_ job: Job, store: ObjectStore?, mode: StoreMode) throws -> (
        digest: Digest, count: UInt64, staged: StagingFile?
    ) {
        let staged = mode == .copy ? try store?.createStagingFile() : nil
        let copy = staged?.descriptor
        let copyPath = staged?.path ?? ""
        do {
            let size = job.before.size
            // Reflink where the filesystem can (btrfs, XFS): the copy shares the source's blocks
            // and only the hash reads the data; elsewhere the data is copied while it is hashed.
            let cloned = copy.map { FileIO.clone(job.file, into: $0) } ?? false
            let (digest, count) = try FsVerity.digest(of: job.file, size: size, path: job.path) {
                offset, bytes, count in
                if let copy, !cloned { try FileIO.write(copy, at: offset, bytes, count: count, path: copyPath) }
            }
            if let copy {
                try FileIO.truncate(copy, to: size, path: copyPath)
                FileIO.setPermissions(copy, 0o644)
                try FileIO.sync(copy, path: copyPath)
            }
            return (digest, count, staged)
        } catch {
            staged?.discard()
            throw error
        }
    }
}
