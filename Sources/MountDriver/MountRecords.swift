import Cryptsetup
import DiskImage
import Foundation
import ImageModel
import LinuxSys
import ObjectStore
import OverlayTranslation
import SystemPackage
import Verity

/// The state records of ovlcfs mounts (one JSON file per mount point), their status, and
/// the pruning of records whose mount is gone.
extension MountDriver {
    func writeRecord(_ record: MountRecord) throws {
        try FileQueries.createDirectories(recordsDirectory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let writer = try AtomicFileWriter(destination: recordPath(for: record.target))
        try writer.write(Array(try encoder.encode(record)))
        try writer.commit()
    }

    /// Every state record (sorted by mount point).
    public func records() -> [MountRecord] { recordFiles().records.map(\.record) }

    /// The record files: those that decode, with their paths, and those that do not (garbage,
    /// reported by `status` and removed by `umount --all`, never skipped silently).
    func recordFiles() -> (records: [(path: String, record: MountRecord)], garbage: [String]) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var records: [(path: String, record: MountRecord)] = []
        var garbage: [String] = []
        let names: [[UInt8]]
        do {
            names = try FileQueries.directoryEntries(recordsDirectory)
        } catch  where error.errno == .noSuchFileOrDirectory {
            names = []  // no mount was ever recorded here
        } catch {
            // Unreadable: reported like an unreadable record, so gc refuses and status says so.
            return ([], [recordsDirectory])
        }
        for name in names.map({ String(decoding: $0, as: UTF8.self) }) where name.hasSuffix(".json") {
            let path = recordsDirectory + "/" + name
            if let data = FileManager.default.contents(atPath: path),
                let record = try? decoder.decode(MountRecord.self, from: data)
            {
                records.append((path, record))
            } else {
                garbage.append(path)
            }
        }
        return (records.sorted { $0.record.target < $1.record.target }, garbage.sorted())
    }

    /// A record and whether its mount still exists.
    public struct Status: Sendable, Codable {
        public var record: MountRecord
        public var mounted: Bool
        /// Something else is mounted at the record's mount point (the record is stale).
        public var foreign: Bool = false
        public var stale: Bool { !mounted }
    }

    public func status() throws -> [Status] {
        try records().map { record in
            let stack = try kernel.mountStack(at: record.target)
            let mine = stack.contains { record.describes($0) }
            return Status(record: record, mounted: mine, foreign: !(stack.last.map { record.describes($0) } ?? true))
        }
    }

    /// The shared lock of an ovlcfs objects store (nil for a directory that is none, or one
    /// that cannot be locked, such as a read-only store: no gc can run on it either).
    func lockStore(_ objects: String) throws -> FileLock? {
        guard FileQueries.exists(objects + "/" + ObjectStore.temporaryDirectoryName) else { return nil }
        return try? ObjectStore.sharedLock(of: objects) { warn("waiting for ovlcfs gc on \(objects) to finish…") }
    }

    /// Opens `image` once and checks its fs-verity digest: the kernel's measurement where the
    /// file has fs-verity; otherwise computed here, and then only for a file that only root can
    /// change (a descriptor pins the file, not what is written into it later).
    func openPinned(_ image: String, digest expected: [UInt8]) throws -> InputFile {
        let file: InputFile
        do { file = try InputFile(path: image) } catch { throw MountDriverError(step: .verity, message: "\(error)") }
        guard file.isRegular else { throw MountDriverError(step: .verity, message: "\(image) is not a regular file") }
        let actual: [UInt8]
        if let measured = FileIO.measureVerity(file.descriptor) {
            actual = measured
        } else {
            guard file.status.uid == 0, file.status.mode & 0o022 == 0 else {
                throw MountDriverError(
                    step: .verity,
                    message:
                        "\(image) has no fs-verity and can be changed by others than root (owner \(file.status.uid), mode \(String(file.status.mode & 0o7777, radix: 8))): its digest cannot pin what is mounted",
                    hint: "chown root and chmod go-w the image, or enable fs-verity on it (fsverity enable)")
            }
            do { actual = try FsVerity.digest(of: file.descriptor).bytes } catch {
                throw MountDriverError(step: .verity, message: "\(image): \(error)")
            }
            warn(
                "note: \(image) has no fs-verity; its digest was computed here, and the file is mounted through the descriptor that was hashed"
            )
        }
        guard actual == expected else {
            throw MountDriverError(
                step: .verity,
                message: "\(image) has fs-verity digest \(Hex.encode(actual)), not the \(Hex.encode(expected)) given",
                hint: "the image changed, or the digest is another image's")
        }
        return file
    }

    /// Drops the records of mount points with nothing mounted any more — what a plain umount(8)
    /// (which runs no ovlcfs code; the loop devices and dm-verity mapping go with the mount by
    /// themselves) or a crash before the attach leaves — except where a mount of that target is
    /// in progress (its lock is held). Records of mount points where something else is
    /// mounted stay: `status` flags them and `umount` explains.
    ///
    /// Fails closed: nothing is pruned when the mount table cannot be read, and a record whose
    /// loop devices are still attached stays (the mount lives on elsewhere: another mount
    /// namespace, a lazy unmount, a move) — `gc` trusts what is recorded.
    public func pruneUnmountedRecords() throws {
        for (path, record) in recordFiles().records where try isGone(record) {
            guard let held = try? lock(record.target, wait: false) else { continue }
            if try isGone(record) { try? FileQueries.remove(path) }
            withExtendedLifetime(held) {}
        }
    }

    /// Whether nothing of a recorded mount is left: nothing mounted at its mount point here,
    /// and none of its loop devices attached.
    func isGone(_ record: MountRecord) throws -> Bool {
        try kernel.mountStack(at: record.target).isEmpty
            && !(record.loops ?? []).contains { kernel.isLoopAttached($0.device, sequence: $0.sequence) }
    }

    /// Record files that cannot be read (corrupt or foreign JSON).
    public func garbageRecords() -> [String] { recordFiles().garbage }
}
