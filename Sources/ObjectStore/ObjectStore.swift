import Foundation
import ImageModel
import LinuxSys
import SystemPackage
import Verity

/// How ingest puts file contents into the objects store.
public enum StoreMode: String, Sendable, CaseIterable, Codable {
    /// Copy each file into the store (default).
    case copy
    /// Hard-link each file into the store: no data copied; store and tree must share a filesystem.
    case hardlink
    /// Compute digests only; write nothing.
    case none
}

/// An error of the objects store or of ingest, naming the path.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// A content-addressed objects store laid out as composefs does: `OBJECTS/xx/<62 hex>`,
/// named by the fs-verity SHA-256 digest of the content.
///
/// Publishing is atomic: content goes to a temporary file in `.ovlcfs-tmp/`, is
/// flushed to disk and hard-linked to its final name; an object already there counts as
/// present. A killed ingest leaves temporary files, never a partial object under its name.
/// `.ovlcfs-store.json` at the root records the layout version and the hash algorithm.
public final class ObjectStore: @unchecked Sendable {
    public let path: String
    let root: DirectoryHandle
    /// The root directory's (device, inode), taken once when the store is opened.
    private let rootIdentity: (UInt64, UInt64)?
    private var fanout: [UInt8: DirectoryHandle] = [:]
    private let lock = NSLock()

    public static let metadataName = ".ovlcfs-store.json"
    /// Where content is staged before it is linked under its name.
    public static let temporaryDirectoryName = ".ovlcfs-tmp"
    // The legacy overlay layout hides these two names (OverlayTranslation.storePrivateNames).
    let staging: DirectoryHandle
    /// Held (shared) by every writer for its lifetime; `gc` takes it exclusively.
    private var writerLock: FileLock?
    /// The lock file, inside the staging directory (which the legacy layout hides).
    var lockPath: String { Self.lockPath(of: path) }

    /// The lock file of the store at `path`: builds and mounts hold it shared, gc exclusively.
    public static func lockPath(of path: String) -> String { path + "/" + temporaryDirectoryName + "/.lock" }

    /// Takes the store's lock shared — at once when no gc holds it; otherwise `waiting` is
    /// called and the lock waited for. Any error but "held" is thrown as it is.
    public static func sharedLock(of path: String, waiting: () -> Void) throws -> FileLock {
        do {
            return try FileLock(path: lockPath(of: path), mode: .shared, wait: false)
        } catch {
            guard error.errno == .wouldBlock || error.errno == .resourceTemporarilyUnavailable else { throw error }
        }
        waiting()
        return try FileLock(path: lockPath(of: path), mode: .shared)
    }

    struct Metadata: Codable, Equatable {
        var layout: Int
        var algorithm: String
        var blockSize: Int
    }

    static let currentMetadata = Metadata(layout: 1, algorithm: "sha256", blockSize: 4096)

    /// Opens (creating it if `create`) the store at `path`. A store opened to write holds its
    /// lock shared until it is released; `waiting` is called if a `gc` holds it (then this waits).
    public init(path: String, create: Bool, waiting: () -> Void = {}) throws {
        self.path = path
        root = create ? try DirectoryHandle.create(path: path) : try DirectoryHandle(path: path)
        // The staging directory: created for writing; opened, where it exists, otherwise.
        let stagingName = Array(Self.temporaryDirectoryName.utf8)
        staging =
            create
            ? try root.createDirectory(stagingName, permissions: 0o700) : (try? root.openDirectory(stagingName)) ?? root
        rootIdentity = (try? root.status([])).map { ($0.device, $0.inode) }
        if create {
            writerLock = try Self.sharedLock(of: path, waiting: waiting)
            removeAbandonedStagingFiles()
        }
        let metadataPath = path + "/" + Self.metadataName
        if let data = FileManager.default.contents(atPath: metadataPath) {
            guard let metadata = try? JSONDecoder().decode(Metadata.self, from: data), metadata == Self.currentMetadata
            else {
                throw StoreError(
                    path: metadataPath,
                    reason: "unsupported objects store (expected layout 1, sha256, 4096-byte blocks)")
            }
        } else if create {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let writer = try AtomicFileWriter(destination: metadataPath)
            try writer.write(Array(try encoder.encode(Self.currentMetadata)) + [0x0A])
            try writer.commit()
        }
    }

    /// Whether `status` is the store's own root directory (a store inside a tree being
    /// ingested must not ingest itself).
    func isRoot(_ status: FileStatus) -> Bool {
        rootIdentity.map { $0 == (status.device, status.inode) } ?? false
    }

    /// The directory `xx` for a digest, created on first use.
    func directory(for digest: Digest) throws -> DirectoryHandle {
        let name = Array(digest.objectPath[0..<2])
        let key = digest.bytes[0]
        lock.lock()
        defer { lock.unlock() }
        if let handle = fanout[key] { return handle }
        let handle = try root.createDirectory(name)
        fanout[key] = handle
        return handle
    }

    /// The object's name inside its `xx` directory.
    static func leafName(_ digest: Digest) -> [UInt8] { Array(digest.objectPath[3...]) }

    /// Publishes a finished staging file under `digest`; returns false if the object was
    /// already present. The staging file is gone either way.
    func publish(_ staged: StagingFile, as digest: Digest) throws -> Bool {
        try staged.link(into: try directory(for: digest), as: Self.leafName(digest))
    }

    /// Hard-links `name` in `source` into the store under `digest`; false if already present.
    func link(from source: DirectoryHandle, name: [UInt8], as digest: Digest) throws -> Bool {
        do {
            return try directory(for: digest).link(from: source, name: name, to: Self.leafName(digest))
        } catch let error as IOError where error.errno == .improperLink {
            throw StoreError(
                path: source.path + "/" + String(decoding: name, as: UTF8.self),
                reason:
                    "--store-mode hardlink needs the objects store (\(path)) on the same filesystem as the tree; use --store-mode copy"
            )
        }
    }

    /// A new staging file for an object's content.
    func createStagingFile() throws -> StagingFile { try staging.createStagingFile(prefix: ".tmp") }

    /// Removes staging files that interrupted ingests left behind (named `.tmp-PID-…` where
    /// the filesystem has no unnamed files) whose process is gone.
    func removeAbandonedStagingFiles() {
        guard let names = try? staging.entries() else { return }
        for name in names {
            let parts = String(decoding: name, as: UTF8.self).split(separator: "-")
            guard parts.count == 3, parts[0] == ".tmp", let pid = Int32(parts[1]), pid != getpid(),
                !FileQueries.exists("/proc/\(pid)")
            else { continue }
            staging.removeFile(name)
        }
    }

    /// Whether the object for `digest` exists.
    public func contains(_ digest: Digest) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + String(decoding: digest.objectPath, as: UTF8.self))
    }
}
