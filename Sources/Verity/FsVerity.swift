import ImageModel
import LinuxSys
import SystemPackage

/// The fs-verity file digest (reference 04): SHA-256 over a Merkle tree of 4096-byte blocks,
/// with an optional salt, then SHA-256 of the 256-byte `fsverity_descriptor`. What
/// `fsverity digest` prints and what overlayfs checks for `trusted.overlay.metacopy`.
///
/// Streaming and constant memory: feed data in chunks of any size with ``update(_:)``; the
/// hasher keeps one partial 4 KiB block per tree level.
public final class FsVerityHasher {
    public static let blockSize = 4096
    static let hashSize = 32

    public let salt: [UInt8]
    private let sha: Sha256
    private var size: UInt64 = 0
    /// Data not yet forming a full block.
    private var pending: [UInt8]
    /// One partial block of hashes per tree level (level 0 holds data-block hashes).
    private var levels: [[UInt8]] = []
    /// Whether each level has ever received a hash (a level above exists once it has).
    private var levelUsed: [Bool] = []

    /// - Parameter salt: up to 32 bytes, zero-padded to 64 and hashed before every block.
    public init(salt: [UInt8] = []) throws(VerityError) {
        guard salt.count <= 32 else { throw .saltTooLong(salt.count) }
        self.salt = salt
        sha = Sha256(prefix: salt.isEmpty ? [] : salt + [UInt8](repeating: 0, count: 64 - salt.count))
        pending = []
        pending.reserveCapacity(Self.blockSize)
    }

    /// Feeds the next bytes of the file.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        size += UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(Self.blockSize - pending.count, bytes.count)
            pending.append(contentsOf: bytes[0..<take])
            offset = take
            if pending.count == Self.blockSize {
                hashBlock(pending, level: 0)
                pending.removeAll(keepingCapacity: true)
            }
        }
        while bytes.count - offset >= Self.blockSize {
            hashBlock(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Self.blockSize]), level: 0)
            offset += Self.blockSize
        }
        if offset < bytes.count { pending.append(contentsOf: bytes[offset...]) }
    }

    /// Feeds the next bytes of the file.
    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Feeds `count` zero bytes (a hole) in O(log count): a run of identical hashes at one
    /// level fills whole blocks of the level above with one identical hash each, so only the
    /// ragged ends of each level's run are appended hash by hash (see `appendRun`).
    public func updateZeros(_ count: UInt64) {
        var remaining = count
        let zeros = [UInt8](repeating: 0, count: Self.blockSize)
        // Fill a partial block first.
        if !pending.isEmpty {
            let take = Int(min(UInt64(Self.blockSize - pending.count), remaining))
            update(Array(zeros[0..<take]))
            remaining -= UInt64(take)
        }
        if remaining >= UInt64(Self.blockSize) {
            if zeroBlockHash == nil {
                var hash = [UInt8](repeating: 0, count: Self.hashSize)
                hash.withUnsafeMutableBytes { out in zeros.withUnsafeBytes { sha.hash($0, into: out, at: 0) } }
                zeroBlockHash = hash
            }
            let blocks = remaining / UInt64(Self.blockSize)
            size += blocks * UInt64(Self.blockSize)
            appendRun(zeroBlockHash!, count: blocks, level: 0)
            remaining -= blocks * UInt64(Self.blockSize)
        }
        if remaining > 0 { update(Array(zeros[0..<Int(remaining)])) }
    }

    /// Appends `count` copies of `hash` to `level`. Whole blocks of copies that are sure to be
    /// followed by more hashes at this level (so the per-hash path would flush them upward) are
    /// turned into one identical hash each at the level above, recursively; at most a block's
    /// worth of copies per level goes through `appendHash`. The last copies always do, so a
    /// level whose only content is one block still becomes the root as it would hash by hash.
    private func appendRun(_ hash: [UInt8], count: UInt64, level: Int) {
        let perBlock = UInt64(Self.blockSize / Self.hashSize)
        var remaining = count
        while remaining > 0 {
            let held = level < levels.count ? levels[level].count / Self.hashSize : 0
            if held % Int(perBlock) == 0 && remaining > perBlock {
                if held > 0 { flush(level) }
                let blocks = (remaining - 1) / perBlock
                var block = [UInt8]()
                block.reserveCapacity(Self.blockSize)
                for _ in 0..<perBlock { block.append(contentsOf: hash) }
                var upper = [UInt8](repeating: 0, count: Self.hashSize)
                upper.withUnsafeMutableBytes { out in block.withUnsafeBytes { sha.hash($0, into: out, at: 0) } }
                if level == levels.count {
                    levels.append([])
                    levels[level].reserveCapacity(Self.blockSize)
                    levelUsed.append(false)
                }
                levelUsed[level] = true
                appendRun(upper, count: blocks, level: level + 1)
                remaining -= blocks * perBlock
            } else {
                appendHash(hash, level: level)
                remaining -= 1
            }
        }
    }

    private var zeroBlockHash: [UInt8]?

    /// The file digest of everything fed so far.
    public func finalize() -> Digest {
        var root = [UInt8](repeating: 0, count: Self.hashSize)
        if size > 0 {
            if !pending.isEmpty {
                pending.append(contentsOf: repeatElement(0, count: Self.blockSize - pending.count))
                hashBlock(pending, level: 0)
                pending.removeAll()
            }
            if size <= UInt64(Self.blockSize) {
                // One data block: its hash is the root (there is no tree).
                root = Array(levels[0][0..<Self.hashSize])
                return descriptorDigest(root: root)
            }
            // Flush partial levels upward while a level above exists; the top level's one
            // block is the root.
            var level = 0
            while level + 1 < levelUsed.count && levelUsed[level + 1] {
                if !levels[level].isEmpty { flush(level) }
                level += 1
            }
            var top = levels[level]
            top.append(contentsOf: repeatElement(0, count: Self.blockSize - top.count))
            root.withUnsafeMutableBytes { out in top.withUnsafeBytes { sha.hash($0, into: out, at: 0) } }
        }
        return descriptorDigest(root: root)
    }

    /// SHA-256 of the `fsverity_descriptor` for `root`.
    private func descriptorDigest(root: [UInt8]) -> Digest {
        var descriptor = [UInt8](repeating: 0, count: 256)
        descriptor[0] = 1  // version
        descriptor[1] = 1  // FS_VERITY_HASH_ALG_SHA256
        descriptor[2] = 12  // log2(4096)
        descriptor[3] = UInt8(salt.count)
        for i in 0..<8 { descriptor[8 + i] = UInt8(truncatingIfNeeded: size >> (8 * UInt64(i))) }
        descriptor.replaceSubrange(16..<48, with: root)
        descriptor.replaceSubrange(80..<80 + salt.count, with: salt)
        return Digest(bytes: Sha256.digest(descriptor))!
    }

    /// Bytes fed so far.
    public var count: UInt64 { size }

    private func hashBlock(_ block: [UInt8], level: Int) {
        block.withUnsafeBytes { hashBlock($0, level: level) }
    }

    /// Hashes one full block into the given level (the block itself belongs to the level below).
    private func hashBlock(_ block: UnsafeRawBufferPointer, level: Int) {
        let start = reserveHash(level: level)
        levels[level].withUnsafeMutableBytes { sha.hash(block, into: $0, at: start) }
    }

    /// Appends an already computed hash to a level.
    private func appendHash(_ hash: [UInt8], level: Int) {
        let start = reserveHash(level: level)
        levels[level].replaceSubrange(start..<start + Self.hashSize, with: hash)
    }

    /// Makes room for one hash in a level (flushing a full block upward first); returns its offset.
    private func reserveHash(level: Int) -> Int {
        if level == levels.count {
            levels.append([])
            levels[level].reserveCapacity(Self.blockSize)
            levelUsed.append(false)
        }
        if levels[level].count == Self.blockSize { flush(level) }
        let start = levels[level].count
        levels[level].append(contentsOf: repeatElement(0, count: Self.hashSize))
        levelUsed[level] = true
        return start
    }

    /// Pads a level's partial block, hashes it into the level above and empties it.
    private func flush(_ level: Int) {
        var block = levels[level]
        levels[level].removeAll(keepingCapacity: true)
        block.append(contentsOf: repeatElement(0, count: Self.blockSize - block.count))
        hashBlock(block, level: level + 1)
    }
}

/// fs-verity digest errors.
public enum VerityError: Error, Sendable, Equatable, CustomStringConvertible {
    case saltTooLong(Int)

    public var description: String {
        switch self {
        case .saltTooLong(let count): "fs-verity salt of \(count) bytes is longer than 32"
        }
    }
}

/// fs-verity digests of files.
public enum FsVerity {
    /// Read size for hashing: large reads, one reused buffer per call.
    public static let readSize = 1 << 20

    /// The fs-verity digest of the file at `path`.
    /// Only a regular file has one: anything else (a FIFO, a device, a directory) is refused
    /// without being read.
    public static func digest(ofFile path: String, salt: [UInt8] = []) throws -> Digest {
        let input = try InputFile(path: path)
        guard input.isRegular else { throw IOError("digest", path: path, detail: "not a regular file") }
        return try digest(of: input.descriptor, size: input.size, path: path, salt: salt).digest
    }

    /// The fs-verity digest of the first `size` bytes of `fd`, read with `pread` in large
    /// chunks. Holes (`SEEK_HOLE`) are not read: their whole zero blocks reuse one hash.
    /// `onData` sees every data region's bytes with their offset (to copy the file on the way).
    /// Returns the digest and the bytes actually present (less than `size` if it shrank).
    public static func digest(
        of fd: FileDescriptor, size: UInt64, path: String, salt: [UInt8] = [],
        onData: ((UInt64, [UInt8], Int) throws -> Void)? = nil
    ) throws -> (digest: Digest, count: UInt64) {
        let hasher = try FsVerityHasher(salt: salt)
        // Small files get a small buffer: zero-filling 1 MiB per file dominates trees of many small files.
        var buffer = [UInt8](repeating: 0, count: Int(min(UInt64(readSize), max(4096, (size + 4095) / 4096 * 4096))))
        var offset: UInt64 = 0
        while offset < size {
            let dataStart = min(try FileIO.nextData(fd, from: offset, path: path) ?? size, size)
            if dataStart > offset {
                hasher.updateZeros(dataStart - offset)
                offset = dataStart
                continue
            }
            let dataEnd = min(try FileIO.nextHole(fd, from: offset, path: path), size)
            while offset < dataEnd {
                let want = Int(min(UInt64(buffer.count), dataEnd - offset))
                let count = try FileIO.read(fd, at: offset, into: &buffer, count: want, path: path)
                if count == 0 { return (hasher.finalize(), offset) }
                buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                try onData?(offset, buffer, count)
                offset += UInt64(count)
            }
        }
        return (hasher.finalize(), hasher.count)
    }

    /// The fs-verity digest of everything readable from `fd` (from its current offset).
    public static func digest(of fd: FileDescriptor, salt: [UInt8] = [], buffer: inout [UInt8]) throws -> Digest {
        let hasher = try FsVerityHasher(salt: salt)
        if buffer.count < readSize { buffer = [UInt8](repeating: 0, count: readSize) }
        while true {
            let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return hasher.finalize()
    }

    /// The fs-verity digest of everything readable from `fd`.
    public static func digest(of fd: FileDescriptor, salt: [UInt8] = []) throws -> Digest {
        var buffer: [UInt8] = []
        return try digest(of: fd, salt: salt, buffer: &buffer)
    }

    /// The fs-verity digest of bytes in memory.
    public static func digest(of bytes: [UInt8], salt: [UInt8] = []) throws -> Digest {
        let hasher = try FsVerityHasher(salt: salt)
        hasher.update(bytes)
        return hasher.finalize()
    }
}
