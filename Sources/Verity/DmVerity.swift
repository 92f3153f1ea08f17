import CCryptsetup
import Foundation
import LinuxSys
import SystemPackage

/// dm-verity (reference 05): the hash tree over a data image, in veritysetup's format 1
/// (SHA-256, 4096-byte data and hash blocks, a 512-byte superblock at the start of the hash
/// area), created with libcryptsetup — which formats plain files without device-mapper — and
/// checked in userspace by an independent implementation of the tree.
public enum DmVerity {
    public static let blockSize = 4096

    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Writes the hash tree of `data` (size a multiple of 4096) to `hash` (created) and returns
    /// the root hash.
    public static func format(data: String, hash: String, salt: [UInt8], uuid: String? = nil) throws -> [UInt8] {
        guard salt.count <= 256 else {
            throw Error(description: "dm-verity salt of \(salt.count) bytes is longer than 256")
        }
        FileManager.default.createFile(atPath: hash, contents: nil)
        var device: OpaquePointer?
        var rc = crypt_init(&device, hash)
        guard rc == 0, let device else {
            throw Error(description: "libcryptsetup cannot open \(hash): \(String(cString: strerror(-rc)))")
        }
        defer { crypt_free(device) }
        let root: [UInt8] = try data.withCString { dataPath in
            try salt.withUnsafeBufferPointer { saltBytes in
                try saltBytes.withMemoryRebound(to: CChar.self) { saltChars in
                    var params = crypt_params_verity()
                    let name = strdup("sha256")
                    defer { free(name) }
                    params.hash_name = UnsafePointer(name)
                    params.data_device = dataPath
                    params.salt = saltChars.baseAddress
                    params.salt_size = UInt32(salt.count)
                    params.hash_type = 1
                    params.data_block_size = UInt32(blockSize)
                    params.hash_block_size = UInt32(blockSize)
                    params.flags = 1 << 2  // CRYPT_VERITY_CREATE_HASH
                    rc = crypt_format(device, CRYPT_VERITY, nil, nil, uuid, nil, 0, &params)
                    guard rc == 0 else {
                        throw Error(
                            description:
                                "libcryptsetup cannot write the dm-verity hash tree of \(data): \(String(cString: strerror(-rc)))"
                        )
                    }
                    var key = [CChar](repeating: 0, count: 64)
                    var length = 64
                    rc = crypt_volume_key_get(device, CRYPT_ANY_SLOT, &key, &length, nil, 0)
                    guard rc >= 0 else {
                        throw Error(
                            description: "libcryptsetup did not return the root hash: \(String(cString: strerror(-rc)))"
                        )
                    }
                    return key[0..<length].map { UInt8(bitPattern: $0) }
                }
            }
        }
        return root
    }

    /// The root hash of `blocks` 4096-byte data blocks read from `path` at `offset`, computed
    /// in userspace (format 1: every block hashed as SHA-256(salt ‖ block)).
    public static func rootHash(ofFile path: String, offset: UInt64, blocks: UInt64, salt: [UInt8]) throws -> [UInt8] {
        let fd = try ReadOnlyFile(path: path)
        let sha = Sha256(prefix: salt)
        var level: [UInt8] = []
        level.reserveCapacity(Int(min(blocks, 1 << 20)) * 32)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var done: UInt64 = 0
        var hash = [UInt8](repeating: 0, count: 32)
        while done < blocks {
            let want = Int(min(UInt64(buffer.count / blockSize), blocks - done)) * blockSize
            let count = try FileIO.read(
                fd.descriptor, at: offset + done * UInt64(blockSize), into: &buffer, count: want, path: path)
            guard count == want else {
                throw Error(description: "\(path): short read of dm-verity data at block \(done)")
            }
            buffer.withUnsafeBytes { raw in
                for b in 0..<(count / blockSize) {
                    hash.withUnsafeMutableBytes {
                        sha.hash(
                            UnsafeRawBufferPointer(rebasing: raw[(b * blockSize)..<((b + 1) * blockSize)]), into: $0,
                            at: 0)
                    }
                    level.append(contentsOf: hash)
                }
            }
            done += UInt64(count / blockSize)
        }
        // Upper levels: 128 hashes per block, zero-padded, until one block remains.
        if blocks == 1 { return Array(level[0..<32]) }
        while true {
            var next: [UInt8] = []
            var start = 0
            while start < level.count {
                var block = Array(level[start..<min(level.count, start + blockSize)])
                block.append(contentsOf: repeatElement(0, count: blockSize - block.count))
                block.withUnsafeBytes { raw in hash.withUnsafeMutableBytes { sha.hash(raw, into: $0, at: 0) } }
                next.append(contentsOf: hash)
                start += blockSize
            }
            if level.count <= blockSize { return next }
            level = next
        }
    }
}
