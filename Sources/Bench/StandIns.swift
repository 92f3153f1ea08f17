import ImageModel
import LinuxSys
import SystemPackage
import Verity

/// Creates (or reuses) sparse stand-in objects of the right sizes for every payload of a model.
/// Each is created confined to `directory` (no `..`, no symlinks followed, only regular files
/// sized), whatever the model's payloads say.
public func makeStandInObjects(for model: Image, in directory: String) throws -> Int {
    let store = try DirectoryHandle.create(path: directory)
    var made = 0
    var seen = Set<[UInt8]>()
    for inode in model.inodes where inode.type == .regular && inode.size > 0 {
        guard let payload = inode.externalObject?.payload?.bytes, seen.insert(payload).inserted else { continue }
        if let reason = Payload.problem(with: payload) { throw BenchError("stand-in object for payload: \(reason)") }
        if try makeStandIn(beneath: payload, in: store, size: inode.size, directory: directory) { made += 1 }
    }
    return made
}

/// A sparse file of `size` bytes at `path` beneath `store`, unless one of that size is there;
/// true when it was made.
private func makeStandIn(beneath path: [UInt8], in store: DirectoryHandle, size: UInt64, directory: String) throws
    -> Bool
{
    if store.regularFileSize(beneath: path) == size { return false }
    let (fd, _) = try store.createRegularFile(beneath: path)
    defer { try? fd.close() }
    try FileIO.truncate(fd, to: size, path: directory + "/" + String(decoding: path, as: UTF8.self))
    return true
}

/// Stand-ins that are what the model says: every external file of `model` is pointed at a
/// zero-filled (sparse) object of its size named by that content's fs-verity digest, with the
/// digest in the model too, and fs-verity is enabled on each object where the filesystem can.
/// Returns that model and whether every object has fs-verity. The verified arms need it:
/// overlayfs `verity=require` compares each object's fs-verity digest with the image's, and a
/// dump's payloads (often without digests) name files this machine does not have. Every arm
/// then runs on this same model.
public func makeVerifiedStandIns(for model: Image, in directory: String) throws -> (image: Image, verity: Bool) {
    let store = try DirectoryHandle.create(path: directory)
    var digests: [UInt64: Digest] = [:]
    var verity = true
    var model = model
    try model.updateInodes { inode in
        guard inode.type == .regular, inode.size > 0, inode.externalObject != nil else { return }
        let size = inode.size
        if digests[size] == nil {
            let hasher = try FsVerityHasher()
            hasher.updateZeros(size)
            let digest = hasher.finalize()
            digests[size] = digest
            let path = digest.objectPath
            _ = try makeStandIn(beneath: path, in: store, size: size, directory: directory)
            if verity {
                verity = try enableVerity(beneath: path, in: store, directory: directory, expected: digest, size: size)
            }
        }
        let digest = digests[size]!
        inode.data = .external(ExternalObject(payload: .object(digest), digest: digest))
    }
    return (model, verity)
}

/// Enables fs-verity on a stand-in (false: the filesystem has none). One left by an earlier run
/// with another digest (it was not zeros) is replaced first.
private func enableVerity(
    beneath path: [UInt8], in store: DirectoryHandle, directory: String, expected: Digest, size: UInt64
) throws -> Bool {
    let name = directory + "/" + String(decoding: path, as: UTF8.self)
    let measured: [UInt8]? = try {
        let (fd, _) = try store.openRegularFile(beneath: path)
        defer { try? fd.close() }
        return FileIO.measureVerity(fd)
    }()
    if measured == expected.bytes { return true }
    if measured != nil {
        // Removed through the store's handle, as it was made: `xx/<62 hex>`.
        try store.openDirectory(beneath: Array(path.prefix(2))).remove(Array(path.dropFirst(3)))
        _ = try makeStandIn(beneath: path, in: store, size: size, directory: directory)
    }
    let (fd, _) = try store.openRegularFile(beneath: path)
    defer { try? fd.close() }
    do {
        try FileIO.enableVerity(fd, path: name)
        return true
    } catch  where [.notSupported, .inappropriateIOCTLForDevice, .invalidArgument].contains(error.errno) {
        return false  // this filesystem has no fs-verity: the verified arms are skipped
    }
}
