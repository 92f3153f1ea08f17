import Dispatch
import ErofsWriter
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys
import MountDriver
import OverlayTranslation
import SquashfsWriter
import SystemPackage

/// Cache state of a measured run.
public enum CacheState: String, Sendable, Codable, CaseIterable {
    /// `sync` and `echo 3 > /proc/sys/vm/drop_caches` right before the run.
    case cold
    /// After warm-up runs; nothing dropped.
    case warm
}

/// A departure from the defaults of `ovlcfs build`/`ovlcfs mount`, measured side by side with
/// them: an overlay arm's name followed by `+lever` (docs/performance.md).
public enum Lever: String, Sendable, Codable, CaseIterable {
    /// Directory index entries only where a listing enters a new metadata block, as mksquashfs
    /// writes them (`--directory-index blocks`).
    case blockIndex = "block-index"
    /// Inode table: per directory, subdirectory subtrees first, then its other entries
    /// (`--inode-order grouped`).
    case groupedOrder = "grouped-order"
    /// Inode table in post-order by name, as gensquashfs writes it (`--inode-order name`).
    case nameOrder = "name-order"
    /// Loop device with 512-byte logical blocks, the kernel's default (`mount --loop-block-size 512`).
    case loop512

    func apply(to options: inout SquashfsOptions) {
        switch self {
        case .blockIndex: options.directoryIndex = .blocks
        case .groupedOrder: options.inodeOrder = .grouped
        case .nameOrder: options.inodeOrder = .name
        case .loop512: break
        }
    }

    func apply(to request: inout MountRequest) {
        if self == .loop512 { request.loopBlockSize = 512 }
    }
}

/// One stack under test.
public struct Arm: Sendable, Codable, Equatable {
    public enum Kind: Sendable, Codable, Equatable {
        case composefs
        case squashfs(
            layout: OverlayLayout, compression: SquashfsOptions.Compression, rawMetadata: Bool, levers: [Lever] = [])
    }

    public var name: String
    public var kind: Kind

    public static let composefs = Arm(name: "composefs", kind: .composefs)

    /// `overlay-<layout>-<compression>`; `none` means metadata (and data) stored raw.
    public static func overlay(_ layout: OverlayLayout, _ compression: SquashfsOptions.Compression) -> Arm {
        Arm(
            name: "overlay-\(layout.rawValue)-\(compression.rawValue)",
            kind: .squashfs(
                layout: layout, compression: compression == .none ? .gzip : compression,
                rawMetadata: compression == .none))
    }

    /// The default arms: composefs, and the overlay option in both layouts with metadata
    /// uncompressed and compressed with `compression`.
    public static func defaults(compression: SquashfsOptions.Compression = .lz4) -> [Arm] {
        [.composefs] + OverlayLayout.allCases.flatMap { [overlay($0, .none), overlay($0, compression)] }
    }

    /// An arm by name: `composefs`, `overlay-<layout>-<compressor>`, optionally followed by
    /// levers (`overlay-data-only-none+loop512`); nil if the name is none of these.
    public static func named(_ name: String) -> Arm? {
        let parts = name.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        let known =
            [composefs]
            + OverlayLayout.allCases.flatMap { layout in
                SquashfsOptions.Compression.allCases.map { overlay(layout, $0) }
            }
        guard var arm = known.first(where: { $0.name == parts[0] }) else { return nil }
        guard parts.count > 1 else { return arm }
        guard case .squashfs(let layout, let compression, let raw, _) = arm.kind else { return nil }
        var levers: [Lever] = []
        for part in parts.dropFirst() {
            guard let lever = Lever(rawValue: part), !levers.contains(lever) else { return nil }
            levers.append(lever)
        }
        arm.name = name
        arm.kind = .squashfs(layout: layout, compression: compression, rawMetadata: raw, levers: levers)
        return arm
    }

    var levers: [Lever] {
        if case .squashfs(_, _, _, let levers) = kind { levers } else { [] }
    }
}

public struct BenchConfiguration: Sendable {
    public var arms: [Arm] = Arm.defaults()
    public var workloads: [Workload] = Workload.allCases
    public var caches: [CacheState] = CacheState.allCases
    public var runs = 5
    public var warmups = 1
    public var randomFiles = 200
    public var stateDirectory = "/run/ovlcfs"
    public init() {}
}

/// Everything a benchmark measured, as written to `--json`.
public struct BenchReport: Sendable, Codable {
    public struct Result: Sendable, Codable {
        public var arm: String
        public var workload: Workload
        public var cache: CacheState
        public var samples: [Double]
        public var median: Double
        public var mean: Double
        public var stddev: Double
        public var min: Double
        public var max: Double
        public var runs: Int

        public init(
            arm: String, workload: Workload, cache: CacheState, samples: [Double], median: Double, mean: Double,
            stddev: Double, min: Double, max: Double, runs: Int
        ) {
            (self.arm, self.workload, self.cache, self.samples) = (arm, workload, cache, samples)
            (self.median, self.mean, self.stddev, self.min, self.max, self.runs) = (
                median, mean, stddev, min, max, runs
            )
        }
    }

    public struct RatioEntry: Sendable, Codable {
        public var arm: String
        public var workload: Workload
        public var cache: CacheState
        /// Median of the arm ÷ median of composefs, with its 95 % bootstrap interval.
        public var ratio: Double
        public var low: Double
        public var high: Double

        public init(arm: String, workload: Workload, cache: CacheState, ratio: Double, low: Double, high: Double) {
            (self.arm, self.workload, self.cache, self.ratio, self.low, self.high) = (
                arm, workload, cache, ratio, low, high
            )
        }
    }

    public struct ImageInfo: Sendable, Codable {
        public var arm: String
        public var path: String
        public var bytes: UInt64
        public var buildSeconds: Double
    }

    public struct Skipped: Sendable, Codable {
        public var arm: String
        public var reason: String
    }

    public struct SystemInfo: Sendable, Codable {
        public var kernel: String
        public var cpu: String
        public var cores: Int
        public var memoryBytes: UInt64
        public var date: String
        public var source: String
        public var entries: Int
        public var fileBytes: UInt64
        public var runs: Int
        public var warmups: Int
        public var randomFiles: Int

        public init(
            kernel: String, cpu: String, cores: Int, memoryBytes: UInt64, date: String, source: String, entries: Int,
            fileBytes: UInt64, runs: Int, warmups: Int, randomFiles: Int
        ) {
            (self.kernel, self.cpu, self.cores, self.memoryBytes, self.date, self.source) = (
                kernel, cpu, cores, memoryBytes, date, source
            )
            (self.entries, self.fileBytes, self.runs, self.warmups, self.randomFiles) = (
                entries, fileBytes, runs, warmups, randomFiles
            )
        }
    }

    public var results: [Result] = []
    public var ratios: [RatioEntry] = []
    public var images: [ImageInfo] = []
    public var skipped: [Skipped] = []
    public var system: SystemInfo

    public init(system: SystemInfo) { self.system = system }

    public func result(_ arm: String, _ workload: Workload, _ cache: CacheState) -> Result? {
        results.first { $0.arm == arm && $0.workload == workload && $0.cache == cache }
    }
}

/// Builds, mounts and measures the arms side by side, interleaved, and always unmounts.
public final class BenchRunner: @unchecked Sendable {
    public let model: Image
    public let objects: String
    public let workDirectory: String
    public let configuration: BenchConfiguration
    public var progress: (String) -> Void = { _ in }
    /// Set (from a signal handler) to stop between runs; everything is still torn down.
    public let cancellation = Cancellation()
    var driver: MountDriver

    public final class Cancellation: @unchecked Sendable {
        private let lock = NSLock()
        private var flag = false
        public init() {}
        public func cancel() {
            lock.lock()
            flag = true
            lock.unlock()
        }
        public var isCancelled: Bool {
            lock.lock()
            defer { lock.unlock() }
            return flag
        }
    }

    public init(model: Image, objects: String, workDirectory: String, configuration: BenchConfiguration) {
        self.model = model
        self.objects = objects
        self.workDirectory = workDirectory
        self.configuration = configuration
        driver = MountDriver(stateDirectory: configuration.stateDirectory)
    }

    /// Runs everything; `source` names the input in the report.
    public func run(source: String) throws -> BenchReport {
        guard geteuid() == 0 else { throw BenchError("bench mounts images and drops caches: run it as root") }
        try FileQueries.createDirectories(workDirectory + "/mnt")
        var report = BenchReport(system: systemInfo(source: source))
        var mounted: [(Arm, String)] = []
        defer {
            for (_, target) in mounted.reversed() { try? driver.unmount(target) }
        }
        for arm in configuration.arms {
            try checkCancelled()
            progress("building \(arm.name)")
            let (path, seconds) = try build(arm)
            report.images.append(
                .init(arm: arm.name, path: path, bytes: (try FileStatus(path: path)).size, buildSeconds: seconds))
            let target = workDirectory + "/mnt/" + arm.name
            try FileQueries.createDirectories(target)
            if try driver.isMountPoint(target) { try driver.unmount(target) }
            let layout: OverlayLayout = if case .squashfs(let layout, _, _, _) = arm.kind { layout } else { .dataOnly }
            var request = MountRequest(image: path, target: target, objects: [objects], layout: layout, verity: .off)
            for lever in arm.levers { lever.apply(to: &request) }
            try driver.mount(request)
            mounted.append((arm, target))
        }
        report.skipped.append(.init(arm: "overlay-disk-*", reason: diskArmReason()))
        let sample = try TreeSample.list(mounted[0].1)
        let runner = WorkloadRunner(sample: sample, randomFiles: configuration.randomFiles)
        var samples: [String: [Double]] = [:]
        func key(_ arm: Arm, _ workload: Workload, _ cache: CacheState) -> String {
            "\(arm.name)|\(workload.rawValue)|\(cache.rawValue)"
        }
        for cache in configuration.caches {
            for workload in configuration.workloads {
                if cache == .warm {
                    for (arm, target) in mounted {
                        for _ in 0..<configuration.warmups {
                            try checkCancelled()
                            progress("warm-up \(workload.rawValue) \(arm.name)")
                            _ = try runner.run(workload, at: target)
                        }
                    }
                }
                for run in 0..<configuration.runs {
                    // Interleave, rotating the starting arm so position effects hit every arm.
                    let order = (0..<mounted.count).map { mounted[($0 + run) % mounted.count] }
                    for (arm, target) in order {
                        try checkCancelled()
                        if cache == .cold { try dropCaches() }
                        let seconds = try runner.run(workload, at: target)
                        samples[key(arm, workload, cache), default: []].append(seconds)
                        progress(
                            "\(cache.rawValue) \(workload.rawValue) run \(run + 1)/\(configuration.runs) \(arm.name): \(String(format: "%.3f", seconds)) s"
                        )
                    }
                }
            }
        }
        for cache in configuration.caches {
            for workload in configuration.workloads {
                let base = samples[key(.composefs, workload, cache)]
                for (arm, _) in mounted {
                    guard let values = samples[key(arm, workload, cache)] else { continue }
                    let summary = Summary(values)
                    report.results.append(
                        .init(
                            arm: arm.name, workload: workload, cache: cache, samples: values, median: summary.median,
                            mean: summary.mean, stddev: summary.stddev, min: summary.min, max: summary.max,
                            runs: summary.runs))
                    if let base, arm.name != Arm.composefs.name {
                        let ratio = Statistics.ratio(values, base)
                        report.ratios.append(
                            .init(
                                arm: arm.name, workload: workload, cache: cache, ratio: ratio.value, low: ratio.low,
                                high: ratio.high))
                    }
                }
            }
        }
        return report
    }

    func checkCancelled() throws {
        if cancellation.isCancelled { throw BenchError("interrupted; every arm was unmounted") }
    }

    /// Writes the arm's image into the work directory; returns its path and the build time.
    func build(_ arm: Arm) throws -> (String, Double) {
        let start = ContinuousClock.now
        let path: String
        switch arm.kind {
        case .composefs:
            path = workDirectory + "/composefs.cfs"
            _ = try ImagePipeline.write(model, as: .composefs(minVersion: 0, maxVersion: 1, digest: false), to: path)
        case .squashfs(let layout, let compression, let rawMetadata, let levers):
            path = workDirectory + "/\(arm.name).sqfs"
            var options = SquashfsOptions(
                compression: compression, uncompressedTables: rawMetadata ? Set(SquashfsOptions.Table.allCases) : [])
            for lever in levers { lever.apply(to: &options) }
            _ = try ImagePipeline.write(model, as: .squashfs(layout: layout, options: options, disk: nil), to: path)
        }
        let elapsed = ContinuousClock.now - start
        return (path, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    func diskArmReason() -> String {
        FileQueries.exists("/dev/mapper/control")
            ? "verity disk images are not implemented yet"
            : "the kernel has no device-mapper (/dev/mapper/control missing), so dm-verity cannot be activated"
    }

    func systemInfo(source: String) -> BenchReport.SystemInfo {
        let summary = ImageSummary(model)
        let kernel =
            (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines) ?? "?"
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cpu =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }.map {
                String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces)
            } ?? "?"
        let formatter = ISO8601DateFormatter()
        return .init(
            kernel: kernel, cpu: cpu, cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: ProcessInfo.processInfo.physicalMemory, date: formatter.string(from: Date()), source: source,
            entries: model.entryCount, fileBytes: summary.fileBytes, runs: configuration.runs,
            warmups: configuration.warmups, randomFiles: configuration.randomFiles)
    }
}

/// `sync` then drop the page cache, dentries and inodes.
public func dropCaches() throws {
    do { try PageCache.dropAll() } catch { throw BenchError("\(error) (root needed)") }
}

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
        if store.regularFileSize(beneath: payload) == inode.size { continue }
        let (fd, _) = try store.createRegularFile(beneath: payload)
        defer { try? fd.close() }
        try FileIO.truncate(fd, to: inode.size, path: directory + "/" + String(decoding: payload, as: UTF8.self))
        made += 1
    }
    return made
}
