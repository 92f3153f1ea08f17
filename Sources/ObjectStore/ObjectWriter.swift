import ImageModel
import LinuxSys
import Verity

/// Streams one file's content into the store as it arrives (from a tar stream, say): the
/// fs-verity digest is computed while the bytes are written to a staging file, and
/// ``finish()`` publishes the object under that digest. Data comes in order, possibly with
/// gaps: a gap is a hole, hashed as zeros and left unwritten, so sparse files stay sparse.
///
/// Without a store (digests only) nothing is written. Dropping a writer without
/// ``finish()`` leaves nothing in the store.
public final class ObjectWriter {
    public let size: UInt64
    private let store: ObjectStore?
    private let staged: StagingFile?
    private let hasher: FsVerityHasher
    private var position: UInt64 = 0
    /// The file named in errors (`layer …: path`).
    private let name: String

    /// A writer for a file of `size` bytes (`store` nil: digest only).
    public init(size: UInt64, store: ObjectStore?, name: String) throws {
        self.size = size
        self.store = store
        self.name = name
        staged = try store?.createStagingFile()
        hasher = try FsVerityHasher()
    }

    /// Feeds `bytes`, which belong at `offset` (at or after everything fed so far).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard offset >= position, offset + UInt64(bytes.count) <= size else {
            throw StoreError(
                path: name, reason: "data at \(offset)+\(bytes.count) is out of order or beyond the size (\(size))")
        }
        if offset > position { hasher.updateZeros(offset - position) }
        hasher.update(bytes)
        if let staged { try FileIO.write(staged.descriptor, at: offset, bytes, path: staged.path) }
        position = offset + UInt64(bytes.count)
    }

    /// Ends the file (what is left to `size` is a hole), publishes it, and returns its digest
    /// and whether the object is new.
    public func finish() throws -> (digest: Digest, added: Bool) {
        if position < size { hasher.updateZeros(size - position) }
        let digest = hasher.finalize()
        guard let staged, let store else { return (digest, false) }
        try FileIO.truncate(staged.descriptor, to: size, path: staged.path)
        FileIO.setPermissions(staged.descriptor, 0o644)
        try FileIO.sync(staged.descriptor, path: staged.path)
        return (digest, try store.publish(staged, as: digest))
    }
}
