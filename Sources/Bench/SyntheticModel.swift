import Foundation
import ImageModel

/// A deterministic, realistic image model of any size, for benchmarks (`synthetic:ENTRIES[:LARGEST_DIR]`).
///
/// Its shape follows a Linux root filesystem: directory sizes log-uniform between 1 and 300
/// entries, about 10 % symlinks, 11 % directories and 79 % regular files with fs-verity
/// digests and log-normal sizes (median ~4 KiB), every entry labelled with a
/// `security.selinux` context from a small set; optionally one directory of `largestDirectory`
/// entries (`/usr/share/large`), to measure how lookups scale with directory size. The same
/// parameters and seed give the same model, entry for entry.
public struct SyntheticModel: Sendable, Equatable {
    public var entries: Int
    public var largestDirectory: Int?
    public var seed: UInt64

    public static let maxEntries = 50_000_000

    public init(entries: Int, largestDirectory: Int? = nil, seed: UInt64 = 1) {
        self.entries = entries
        self.largestDirectory = largestDirectory
        self.seed = seed
    }

    /// Parses `synthetic:ENTRIES[:LARGEST_DIR]` (nil when `source` does not start with `synthetic:`).
    public static func parse(_ source: String) throws -> SyntheticModel? {
        guard source.hasPrefix("synthetic:") else { return nil }
        let fields = source.dropFirst("synthetic:".count).split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(fields.count), let entries = Int(fields[0]), (2...maxEntries).contains(entries)
        else {
            throw BenchError("\(source): expected synthetic:ENTRIES[:LARGEST_DIR], ENTRIES from 2 to \(maxEntries)")
        }
        var model = SyntheticModel(entries: entries)
        if fields.count == 2 {
            guard let largest = Int(fields[1]), largest >= 1, largest <= entries - 4 else {
                throw BenchError("\(source): LARGEST_DIR must be from 1 to ENTRIES - 4 (its parents are entries too)")
            }
            model.largestDirectory = largest
        }
        return model
    }

    public var name: String { "synthetic:\(entries)" + (largestDirectory.map { ":\($0)" } ?? "") }

    /// Builds the model.
    public func image() throws -> Image {
        var generator = Generator(seed: seed, entries: entries)
        return try generator.build(largestDirectory: largestDirectory)
    }
}

private struct Generator {
    var rng: SplitMix64
    let entries: Int
    var builder: ImageBuilder
    var labels: [XattrSetID] = []
    var made = 1
    var serial: UInt64 = 0
    let mtime = Timestamp(seconds: 1_700_000_000)

    static let types = [
        "bin_t", "lib_t", "usr_t", "etc_t", "man_t", "locale_t", "fonts_t", "shell_exec_t", "textrel_shlib_t",
        "cert_t", "systemd_unit_file_t", "lib_t",
    ]
    static let stems = [
        "lib", "python3", "share", "locale", "doc", "include", "man", "systemd", "firmware", "module", "perl",
        "icons", "x86_64", "linux", "gnu", "config", "common", "utils", "data", "kernel",
    ]
    static let suffixes = [".so", ".py", ".h", ".gz", ".conf", ".txt", "", "", ".mo", ".pyc", ".ko.xz", ".json"]

    init(seed: UInt64, entries: Int) {
        rng = SplitMix64(seed: seed)
        self.entries = entries
        builder = try! ImageBuilder(root: Inode(type: .directory, permissions: 0o755))
        builder.reserveCapacity(entries: entries)
        labels = Self.types.map { type in
            builder.internXattrs([
                Xattr(key: Array("security.selinux".utf8), value: Array("system_u:object_r:\(type):s0\0".utf8))
            ])
        }
        builder.updateInode(InodeID(0)) { $0.xattrs = labels[0] }
    }

    mutating func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }

    /// A log-normal file size: median e^8.3 (~4 KiB), σ 2.2, at most 256 MiB.
    mutating func fileSize() -> UInt64 {
        let u1 = max(uniform(), 1e-12), u2 = uniform()
        let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        return UInt64(min(exp(8.3 + 2.2 * normal), 268_435_456))
    }

    mutating func name(_ index: Int) -> [UInt8] {
        let stem = Self.stems[Int(rng.next() % UInt64(Self.stems.count))]
        let suffix = Self.suffixes[Int(rng.next() % UInt64(Self.suffixes.count))]
        return Array("\(stem)-\(String(index, radix: 36))\(suffix)".utf8)
    }

    mutating func entry(in parent: EntryID, index: Int, directoryShare: Double) throws -> EntryID? {
        let label = labels[Int(rng.next() % UInt64(labels.count))]
        let roll = uniform()
        var inode: Inode
        if roll < 0.10 {
            let target = Array("../\(Self.stems[Int(rng.next() % UInt64(Self.stems.count))])/target-\(index)".utf8)
            inode = Inode(type: .symlink, permissions: 0o777, size: UInt64(target.count), data: .symlink(target))
        } else if roll < 0.10 + directoryShare {
            inode = Inode(type: .directory, permissions: 0o755)
        } else {
            inode = Inode(type: .regular, permissions: roll < 0.3 ? 0o755 : 0o644)
            inode.size = fileSize()
            serial += 1
            var digestRNG = SplitMix64(seed: serial &* 0x9E37_79B9_7F4A_7C15 ^ rng.next())
            var bytes: [UInt8] = []
            for _ in 0..<4 { bytes.appendLE(digestRNG.next()) }
            let digest = Digest(bytes: bytes)!
            inode.data = .external(ExternalObject(payload: .object(digest), digest: digest))
        }
        inode.mtime = Timestamp(seconds: mtime.seconds - Int64(rng.next() % 50_000_000))
        inode.xattrs = label
        let added = try builder.add(name: name(made), in: parent, inode: inode)
        made += 1
        return inode.type == .directory ? added : nil
    }

    mutating func build(largestDirectory: Int?) throws -> Image {
        var queue: [EntryID] = []
        var head = 0
        if let largest = largestDirectory, entries >= 4 {
            let usr = try builder.add(name: Array("usr".utf8), in: .root, inode: directoryInode())
            let share = try builder.add(name: Array("share".utf8), in: usr, inode: directoryInode())
            let large = try builder.add(name: Array("large".utf8), in: share, inode: directoryInode())
            made += 3
            for index in 0..<max(0, min(largest, entries - made)) {
                _ = try entry(in: large, index: index, directoryShare: 0)
            }
            queue = [.root, usr, share]
        } else {
            queue = [.root]
        }
        while made < entries {
            // Log-uniform directory sizes from 1 to 300; a parent that runs out of queue
            // gets more subdirectories so the walk never ends early.
            let parent = head < queue.count ? queue[head] : queue[Int(rng.next() % UInt64(queue.count))]
            head += 1
            let size = Int(exp(uniform() * log(300.0))) + (parent == .root ? 12 : 0)
            let directoryShare = head >= queue.count ? 0.3 : 0.11
            for index in 0..<min(size, entries - made) {
                if let directory = try entry(in: parent, index: index, directoryShare: directoryShare) {
                    queue.append(directory)
                }
            }
        }
        return try builder.build()
    }

    func directoryInode() -> Inode {
        Inode(type: .directory, permissions: 0o755, mtime: mtime, xattrs: labels[0])
    }
}
