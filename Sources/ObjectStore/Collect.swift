import ImageModel
import LinuxSys
import SystemPackage

/// What a garbage collection of the store did (or, dry, would do).
public struct CollectReport: Sendable, Codable {
    public var objectsKept = 0
    public var bytesKept: UInt64 = 0
    public var objectsRemoved = 0
    public var bytesRemoved: UInt64 = 0
    /// Staging files of interrupted ingests removed.
    public var stagingRemoved = 0
    /// Referenced objects that are not in the store (the images given are incomplete).
    public var referencedMissing = 0
    /// Entries that are no objects (left alone).
    public var foreign: [String] = []
    public var dryRun = false
}

extension ObjectStore {
    /// Removes every object whose digest is not in `referenced`, and what interrupted ingests
    /// left in the staging directory.
    ///
    /// Safe against writers: every ingest or import holds the store's lock shared for as long
    /// as it writes; collection takes it exclusively and refuses while a writer holds it (the
    /// writer's image is not among `referenced`), and a writer that starts meanwhile waits for
    /// the collection to end — so no object published or relied on by a build during a
    /// collection is removed. Safe against a crash: objects are unlinked one at a time and only
    /// unreferenced ones; a later run finishes the job.
    /// `referenced` is asked for the digests to keep once the lock is held, so what it reads
    /// (images, mount records) cannot change under the collection: mounts hold the lock
    /// shared from their plan until their record is written.
    public func collect(dryRun: Bool, keeping referenced: () throws -> Set<Digest>) throws -> CollectReport {
        // A writer holds the lock shared: its image is not among `referenced`, and its objects
        // (new, or found present) would go. Refuse rather than wait for it.
        // The lock lives in the staging directory, made here for a store that never had one.
        let staging = try root.createDirectory(Array(Self.temporaryDirectoryName.utf8), permissions: 0o700)
        let lock: FileLock
        do {
            lock = try FileLock(path: lockPath, mode: .exclusive, wait: false)
        } catch {
            if error.errno == .wouldBlock || error.errno == .resourceTemporarilyUnavailable {
                throw StoreError(
                    path: path,
                    reason:
                        "a build is writing into the store; its image is not among those to keep, so gc refuses — run it again when the build is done"
                )
            }
            throw error
        }
        defer { withExtendedLifetime(lock) {} }
        let referenced = try referenced()
        var report = CollectReport()
        report.dryRun = dryRun
        // With the lock held exclusively no writer runs: every staging file is a leftover.
        for name in try staging.entries() where name.starts(with: Array(".tmp".utf8)) {
            report.stagingRemoved += 1
            if !dryRun { staging.removeFile(name) }
        }
        var present = Set<Digest>()
        for fan in try root.entries() where !fan.starts(with: [UInt8(ascii: ".")]) {
            let fanPath = path + "/" + String(decoding: fan, as: UTF8.self)
            guard fan.count == 2, fan.allSatisfy(hexDigit), (try? root.status(fan))?.isDirectory == true else {
                report.foreign.append(fanPath)
                continue
            }
            let directory = try root.openDirectory(fan)
            for leaf in try directory.entries() {
                guard let digest = Digest(objectPath: fan + [0x2F] + leaf), let status = try? directory.status(leaf),
                    status.isRegular
                else {
                    report.foreign.append(fanPath + "/" + String(decoding: leaf, as: UTF8.self))
                    continue
                }
                if referenced.contains(digest) {
                    present.insert(digest)
                    report.objectsKept += 1
                    report.bytesKept += status.size
                } else {
                    if !dryRun { try directory.remove(leaf) }
                    report.objectsRemoved += 1
                    report.bytesRemoved += status.size
                }
            }
        }
        report.referencedMissing = referenced.count - present.count
        return report
    }
}
