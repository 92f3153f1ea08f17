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

    public func run(_ workload: Workload, at root: String) throws -> Double {
        let start = ContinuousClock.now
        switch workload {
        case .lsLR:
            let status = try Subprocess.runQuietly("/bin/ls", ["-lR", root])
            guard status == 0 else { throw BenchError("ls -lR \(root) exited with \(status)") }
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
        }
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
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
