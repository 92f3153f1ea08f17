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

/// Builds, mounts and measures the arms side by side, interleaved, and always unmounts.
public final class BenchRunner: @unchecked Sendable {
    public let model: Image
    public let objects: String
    public let workDirectory: String
    public let configuration: BenchConfiguration
    public var progress: (String) -> Void = { _ in }
    /// Set (from a signal handler) to stop between runs; everything is still torn down.
    public var cancellation = Cancellation()
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
        var requests: [(Arm, MountRequest)] = []
        var mounted: [String] = []
        defer {
            for target in mounted.reversed() { try? driver.unmount(target) }
        }
        let tree = configuration.workloads.filter(\.isTree)
        for arm in configuration.arms {
            try checkCancelled()
            progress("building \(arm.name)")
            let (path, seconds) = try build(arm)
            report.images.append(
                .init(arm: arm.name, path: path, bytes: (try FileStatus(path: path)).size, buildSeconds: seconds))
            let request = try mountRequest(arm, image: path, target: workDirectory + "/mnt/" + arm.name)
            requests.append((arm, request))
            if !tree.isEmpty {
                try driver.mount(request)
                mounted.append(request.target)
            }
        }
        report.skipped.append(.init(arm: "overlay-disk-*", reason: diskArmReason()))
        var timings: [String: [Timing]] = [:]
        if !tree.isEmpty {
            let runner = WorkloadRunner(sample: try TreeSample.list(mounted[0]), randomFiles: configuration.randomFiles)
            try measureTree(tree, arms: requests.map { ($0.0, $0.1.target) }, runner: runner, into: &timings)
            while let target = mounted.last {
                try driver.unmount(target)
                mounted.removeLast()
            }
        }
        if configuration.workloads.contains(.mount) { try measureMounts(requests, into: &timings) }
        if configuration.workloads.contains(.density) {
            for (arm, request) in requests { report.density.append(try measureDensity(arm, image: request)) }
        }
        summarize(timings, arms: requests.map(\.0), into: &report)
        return report
    }

    /// The request that mounts `arm`'s image at `target` (created; anything ovlcfs left
    /// mounted there is unmounted first).
    func mountRequest(_ arm: Arm, image: String, target: String) throws -> MountRequest {
        try FileQueries.createDirectories(target)
        if try driver.isMountPoint(target) { try driver.unmount(target) }
        let layout: OverlayLayout = if case .squashfs(let layout, _, _, _) = arm.kind { layout } else { .dataOnly }
        var request = MountRequest(image: image, target: target, objects: [objects], layout: layout, verity: .off)
        for lever in arm.levers { lever.apply(to: &request) }
        return request
    }

    static func key(_ arm: Arm, _ workload: Workload, _ cache: CacheState) -> String {
        "\(arm.name)|\(workload.rawValue)|\(cache.rawValue)"
    }

    /// The tree workloads, every arm mounted, interleaved run by run.
    func measureTree(
        _ workloads: [Workload], arms mounted: [(Arm, String)], runner: WorkloadRunner,
        into timings: inout [String: [Timing]]
    ) throws {
        for cache in configuration.caches {
            for workload in workloads {
                if cache == .warm {
                    for (arm, target) in mounted {
                        for _ in 0..<configuration.warmups {
                            try checkCancelled()
                            progress("warm-up \(workload.rawValue) \(arm.name)")
                            _ = try runner.run(workload, at: target)
                        }
                    }
                }
                try interleaved(mounted, workload, cache, into: &timings) { target in
                    try runner.run(workload, at: target)
                }
            }
        }
    }

    /// Runs `body` for every arm, `runs` times, rotating the starting arm so position effects
    /// hit every arm; caches are dropped before each cold run.
    func interleaved<Item>(
        _ items: [(Arm, Item)], _ workload: Workload, _ cache: CacheState, into timings: inout [String: [Timing]],
        _ body: (Item) throws -> Timing
    ) throws {
        for run in 0..<configuration.runs {
            let order = (0..<items.count).map { items[($0 + run) % items.count] }
            for (arm, item) in order {
                try checkCancelled()
                if cache == .cold { try dropCaches() }
                let timing = try body(item)
                timings[Self.key(arm, workload, cache), default: []].append(timing)
                progress(
                    "\(cache.rawValue) \(workload.rawValue) run \(run + 1)/\(configuration.runs) \(arm.name): \(String(format: "%.3f", timing.seconds)) s"
                )
            }
        }
    }

    /// Results and ratios to composefs from the timings.
    func summarize(_ timings: [String: [Timing]], arms: [Arm], into report: inout BenchReport) {
        for cache in configuration.caches {
            for workload in Workload.allCases where workload != .density {
                let base = timings[Self.key(.composefs, workload, cache)]?.map(\.seconds)
                for arm in arms {
                    guard let runs = timings[Self.key(arm, workload, cache)] else { continue }
                    report.results.append(.init(arm: arm.name, workload: workload, cache: cache, timings: runs))
                    if let base, arm.name != Arm.composefs.name {
                        let ratio = Statistics.ratio(runs.map(\.seconds), base)
                        report.ratios.append(
                            .init(
                                arm: arm.name, workload: workload, cache: cache, ratio: ratio.value, low: ratio.low,
                                high: ratio.high))
                    }
                }
            }
        }
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
