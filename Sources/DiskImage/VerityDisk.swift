import Cryptsetup
import Foundation
import ImageModel
import LinuxSys
import SystemPackage
import Verity

/// A disk image holding a data partition and its dm-verity hash partition, typed per the
/// Discoverable Partitions Specification, with partition UUIDs taken from the root hash halves.
public struct VerityDisk: Sendable, Codable {
    public var path: String
    public var data: Partition
    public var hash: Partition
    /// Root hash implied by the partition UUIDs (data UUID ‖ verity UUID).
    public var rootHash: [UInt8] { data.uuid.bytes + hash.uuid.bytes }
    public var rootHashHex: String { Hex.encode(rootHash) }

    /// Builds `destination` from a data image (a multiple of 4096 bytes). The hash tree is
    /// written by libcryptsetup (format 1, SHA-256, 4096/4096) with `salt` (32 random bytes by default).
    public static func build(dataImage: String, destination: String, salt: [UInt8]? = nil, usr: Bool = true) throws
        -> VerityDisk
    {
        let salt = salt ?? (0..<32).map { _ in UInt8.random(in: 0...255) }
        let size = try FileStatus(following: dataImage).size
        guard size % 4096 == 0, size > 0 else {
            throw DiskImageError("\(dataImage): \(size) bytes is not a whole number of 4096-byte blocks")
        }
        let hashTemp = try TemporarySibling(destination: destination + ".verity")
        defer { hashTemp.discard() }
        let root = try VeritySetup.format(data: dataImage, hash: hashTemp.path, salt: salt)
        guard root.count == 32, !root[0..<16].allSatisfy({ $0 == 0 }), !root[16...].allSatisfy({ $0 == 0 }) else {
            throw DiskImageError("unusable root hash (a zero half cannot be a partition UUID)")
        }
        let dataUUID = GUID(bytes: Array(root[0..<16])), hashUUID = GUID(bytes: Array(root[16..<32]))
        // A disk GUID derived from the root hash keeps builds reproducible for a given salt.
        var diskBytes = Array(root.reversed()[0..<16])
        diskBytes[6] = diskBytes[6] & 0x0F | 0x40
        diskBytes[8] = diskBytes[8] & 0x3F | 0x80
        let parts = try GPT.write(
            to: destination, diskGUID: GUID(bytes: diskBytes),
            partitions: [
                (usr ? PartitionType.usr : PartitionType.root, dataUUID, usr ? "ovlcfs_usr" : "ovlcfs_root", dataImage),
                (
                    usr ? PartitionType.usrVerity : PartitionType.rootVerity, hashUUID,
                    usr ? "ovlcfs_usr_verity" : "ovlcfs_root_verity", hashTemp.path
                ),
            ])
        return VerityDisk(path: destination, data: parts[0], hash: parts[1])
    }

    /// Opens a disk image: finds the data partition and its verity partition.
    public static func open(_ path: String) throws -> VerityDisk {
        try pair(in: try GPT.read(path: path), path: path)
    }

    /// Finds the partition pair in the GPT of `size` bytes of the open file `fd`.
    public static func open(fd: FileDescriptor, size: UInt64, path: String) throws -> VerityDisk {
        try pair(in: try GPT.read(fd: fd, size: size, name: path), path: path)
    }

    static func pair(in partitions: [Partition], path: String) throws -> VerityDisk {
        let pairs: [(GUID, GUID)] = [
            (PartitionType.usr, PartitionType.usrVerity), (PartitionType.root, PartitionType.rootVerity),
        ]
        for (dataType, hashType) in pairs {
            if let data = partitions.first(where: { $0.type == dataType }),
                let hash = partitions.first(where: { $0.type == hashType })
            {
                return VerityDisk(path: path, data: data, hash: hash)
            }
        }
        throw DiskImageError("\(path): no data + verity partition pair (DPS usr or root types) in its GPT")
    }

    /// The verity superblock's salt and data block count (reference 05 §4).
    public func superblock() throws -> (salt: [UInt8], dataBlocks: UInt64) {
        let fd = try ReadOnlyFile(path: path)
        var sb = [UInt8](repeating: 0, count: 512)
        guard try FileIO.read(fd.descriptor, at: hash.offset, into: &sb, count: 512, path: path) == 512,
            Array(sb[0..<8]) == Array("verity\0\0".utf8), u32(sb, 8) == 1, u32(sb, 12) == 1,
            sb[32..<38].elementsEqual("sha256".utf8), u32(sb, 64) == 4096, u32(sb, 68) == 4096
        else {
            throw DiskImageError(
                "\(path): the verity partition has no usable veritysetup superblock (format 1, sha256, 4096/4096)")
        }
        let saltSize = Int(UInt16(sb[80]) | UInt16(sb[81]) << 8)
        guard saltSize <= 256 else { throw DiskImageError("\(path): verity salt of \(saltSize) bytes") }
        return (Array(sb[88..<88 + saltSize]), u64(sb, 72))
    }

    /// Checks the whole data partition against `rootHash` in userspace (no device-mapper).
    public func verify(rootHash expected: [UInt8]? = nil) throws {
        let (salt, blocks) = try superblock()
        guard blocks <= data.size / 4096 else {
            throw DiskImageError("\(path): verity covers more blocks than the data partition holds")
        }
        let computed = try DmVerity.rootHash(ofFile: path, offset: data.offset, blocks: blocks, salt: salt)
        let wanted = expected ?? rootHash
        guard computed == wanted else {
            throw DiskImageError(
                "\(path): the data partition does not match the root hash \(Hex.encode(wanted)) (computed \(Hex.encode(computed))); refusing to use it"
            )
        }
    }
}
