import Foundation
import LinuxSys
import SystemPackage

/// What a benchmark run does over a mounted tree.
public enum Workload: String, Sendable, CaseIterable, Codable {
    /// The real `ls -lR` (as in the 2023 comparison), output discarded.
    case lsLR = "ls-lR"
    /// readdir + lstat of every entry, in-process, depth-first.
    case walk
    /// lstat of every path in a fixed random order.
    case statRandom = "stat-random"
    /// listxattr + getxattr of every entry.
    case getxattr
    /// open + read of N random regular files (reads the objects).
    case readRandom = "read-random"
    /// open + read of every regular file.
    case readAll = "read-all"
    /// Mounting an image with its objects, and unmounting it, through the mount driver.
    case mount
    /// N images mounted at once, each walked with `ls -lR`, then unmounted (`--density N`).
    case density

    /// The workloads over a mounted tree.
    public static let tree: [Workload] = [.lsLR, .walk, .statRandom, .getxattr, .readRandom, .readAll]
    /// What runs when no `--workloads` are given (density takes minutes: asked for by name).
    public static let defaults: [Workload] = tree + [.mount]

    public var isTree: Bool { Self.tree.contains(self) }
}

/// One measured run: wall-clock seconds and CPU time (and, for `mount`, the unmount's seconds).
public struct Timing: Sendable, Equatable {
    public var seconds: Double
    public var cpu: CPUTime
    public var unmountSeconds: Double?
    /// Read requests and bytes per kind of block device during the run (loop, dm, virtio, …).
    public var blockReads: [String: BlockReads] = [:]
    /// CPU seconds all CPUs spent busy during the run, kernel worker threads included.
    public var busySeconds: Double?

    public init(seconds: Double, cpu: CPUTime, unmountSeconds: Double? = nil) {
        self.seconds = seconds
        self.cpu = cpu
        self.unmountSeconds = unmountSeconds
    }

    /// Measures `body` on this thread: wall clock and this thread's CPU time, plus the CPU
    /// time `body` reports for children it ran.
    public static func of(_ body: () throws -> CPUTime) rethrows -> Timing {
        let start = ContinuousClock.now
        let cpu = CPUTime.thisThread()
        let children = try body()
        let used = CPUTime.thisThread() - cpu + children
        return Timing(seconds: elapsedSeconds(since: start), cpu: used)
    }
}

/// Reads from block devices of one kind.
public struct BlockReads: Sendable, Equatable, Codable {
    public var requests: UInt64
    public var bytes: UInt64
}

/// Reads so far per kind of block device, from `/sys/block/*/stat`: what each stack asks of
/// the block layer, counted exactly (emulation slows it down but does not change it).
public enum BlockReadCounter {
    public static func kind(of device: String) -> String {
        if device.hasPrefix("loop") { return "loop" }
        if device.hasPrefix("dm-") { return "dm" }
        if device.hasPrefix("vd") { return "virtio" }
        if device.hasPrefix("zram") || device.hasPrefix("ram") { return "ram" }
        return "other"
    }

    public static func snapshot() throws -> [String: BlockReads] {
        var totals: [String: BlockReads] = [:]
        for (device, reads) in try SystemCounters.blockDeviceReads() {
            var total = totals[kind(of: device), default: BlockReads(requests: 0, bytes: 0)]
            total.requests += reads.requests
            total.bytes += reads.bytes
            totals[kind(of: device)] = total
        }
        return totals
    }

    /// `after` − `before` per kind (a device that went away between them counts as zero).
    public static func delta(_ after: [String: BlockReads], _ before: [String: BlockReads]) -> [String: BlockReads] {
        var delta: [String: BlockReads] = [:]
        for (kind, reads) in after {
            let base = before[kind] ?? BlockReads(requests: 0, bytes: 0)
            delta[kind] = BlockReads(
                requests: reads.requests >= base.requests ? reads.requests - base.requests : 0,
                bytes: reads.bytes >= base.bytes ? reads.bytes - base.bytes : 0)
        }
        return delta
    }
}

/// Seconds elapsed since `start`.
public func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// The paths of a tree, gathered once (outside any measurement) from one arm's mount.
public struct TreeSample: Sendable {
    /// Relative paths of every entry (the root is "").
    public var paths: [String]
    /// Relative paths of regular files with data.
    public var files: [String]

    public init(paths: [String], files: [String]) {
        self.paths = paths
        self.files = files
    }

    /// Lists a mounted tree.
    public static func list(_ root: String) throws -> TreeSample {
        var paths: [String] = [""], files: [String] = []
        var stack: [(DirectoryHandle, String)] = [(try DirectoryHandle(path: root), "")]
        while let (dir, prefix) = stack.popLast() {
            for name in try dir.entries() {
                let path = prefix + "/" + String(decoding: name, as: UTF8.self)
                let status = try dir.status(name)
                paths.append(path)
                if status.isDirectory { stack.append((try dir.openDirectory(name), path)) }
                if status.isRegular && status.size > 0 { files.append(path) }
            }
        }
        return TreeSample(paths: paths, files: files)
    }
}

/// Runs workloads; each call returns the elapsed seconds.
public struct WorkloadRunner: Sendable {
    public var sample: TreeSample
    public var randomFiles: Int
    let statOrder: [Int]
    let readOrder: [Int]

    public init(sample: TreeSample, randomFiles: Int = 200, seed: UInt64 = 42) {
        self.sample = sample
        self.randomFiles = randomFiles
        var rng = SplitMix64(seed: seed)
        statOrder = Array(sample.paths.indices).shuffled(using: &rng)
        readOrder = Array(Array(sample.files.indices).shuffled(using: &rng).prefix(randomFiles))
    }

    /// Runs a tree workload over the tree mounted at `root`.
    public func run(_ workload: Workload, at root: String) throws -> Timing {
        try Timing.of { try perform(workload, at: root) }
    }

    /// Returns the CPU time of children it ran.
    func perform(_ workload: Workload, at root: String) throws -> CPUTime {
        switch workload {
        case .lsLR:
            return try Self.listRecursively(root)
        case .walk:
            var stack = [try DirectoryHandle(path: root)]
            while let dir = stack.popLast() {
                for name in try dir.entries() where try dir.status(name).isDirectory {
                    stack.append(try dir.openDirectory(name))
                }
            }
        case .statRandom:
            for index in statOrder { _ = try FileStatus(path: root + sample.paths[index]) }
        case .getxattr:
            for path in sample.paths {
                let full = root + path
                for name in try FileQueries.xattrNames(full) { _ = try FileQueries.xattr(full, name: name) }
            }
        case .readRandom:
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            for index in readOrder { try readFile(root + sample.files[index], buffer: &buffer) }
        case .readAll:
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            for file in sample.files { try readFile(root + file, buffer: &buffer) }
        case .mount, .density:
            throw BenchError("\(workload.rawValue) is not a workload over a mounted tree")
        }
        return .zero
    }

    /// The real `ls -lR` of `root`, output discarded; returns its CPU time.
    static func listRecursively(_ root: String) throws -> CPUTime {
        let (status, cpu) = try Subprocess.runMeasured("/bin/ls", ["-lR", root])
        guard status == 0 else { throw BenchError("ls -lR \(root) exited with \(status)") }
        return cpu
    }

    func readFile(_ path: String, buffer: inout [UInt8]) throws {
        let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        defer { try? fd.close() }
        while try FileIO.read(fd, into: &buffer, path: path) > 0 {}
    }
}

public struct BenchError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
