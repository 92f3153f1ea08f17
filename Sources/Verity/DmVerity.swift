import Foundation
import LinuxSys
import SystemPackage

/// dm-verity (reference 05) in userspace: the root hash of veritysetup's format 1 (SHA-256,
/// 4096-byte data and hash blocks), an implementation of the tree independent of the one
/// libcryptsetup writes (the `Cryptsetup` module), to check it.
public enum DmVerity {
    public static let blockSize = 4096

    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var description: String
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
