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
    /// Whether every object has fs-verity (``makeVerifiedStandIns(for:in:)`` says); the
    /// verified arms run only then.
    public var objectsHaveVerity = false
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
        report.system.note = configuration.note
        var requests: [(Arm, MountRequest)] = []
        var mounted: [String] = []
        defer {
            for target in mounted.reversed() { try? driver.unmount(target) }
        }
        let tree = configuration.workloads.filter(\.isTree)
        for arm in configuration.arms {
            try checkCancelled()
            if let reason = unavailable(arm) {
                report.skipped.append(.init(arm: arm.name, reason: reason))
                continue
            }
            progress("building \(arm.name)")
            let (path, seconds) = try build(arm)
            report.images.append(
                .init(arm: arm.name, path: path, bytes: (try FileStatus(path: path)).size, buildSeconds: seconds))
            var request = try mountRequest(arm, image: path, target: workDirectory + "/mnt/" + arm.name)
            if arm.kind == .composefsVerity { request.digest = try sealImage(path) }
            requests.append((arm, request))
            if !tree.isEmpty {
                try driver.mount(request)
                mounted.append(request.target)
            }
        }
        if !configuration.arms.contains(where: { if case .verityDisk = $0.kind { true } else { false } }) {
            report.skipped.append(.init(arm: "overlay-disk-*", reason: diskArmReason()))
        }
        guard !requests.isEmpty else { throw BenchError("no arm can run on this machine") }
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
        var request = MountRequest(
            image: image, target: target, objects: [objects], layout: layout, verity: arm.isVerified ? .require : .off)
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
                let before = try BlockReadCounter.snapshot()
                let busy = try SystemCounters.cpuBusySeconds()
                var timing = try body(item)
                timing.busySeconds = try SystemCounters.cpuBusySeconds() - busy
                timing.blockReads = BlockReadCounter.delta(try BlockReadCounter.snapshot(), before)
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
        case .composefs, .composefsVerity:
            path = workDirectory + "/\(arm.name).cfs"
            try removeVerityImage(path)
            _ = try ImagePipeline.write(model, as: .composefs(minVersion: 0, maxVersion: 1, digest: false), to: path)
        case .squashfs(let layout, let compression, let rawMetadata, let levers):
            path = workDirectory + "/\(arm.name).sqfs"
            var options = SquashfsOptions(
                compression: compression, uncompressedTables: rawMetadata ? Set(SquashfsOptions.Table.allCases) : [])
            for lever in levers { lever.apply(to: &options) }
            _ = try ImagePipeline.write(model, as: .squashfs(layout: layout, options: options, disk: nil), to: path)
        case .verityDisk(let compression, let rawMetadata):
            path = workDirectory + "/\(arm.name).raw"
            let options = SquashfsOptions(
                compression: compression, uncompressedTables: rawMetadata ? Set(SquashfsOptions.Table.allCases) : [])
            _ = try ImagePipeline.write(
                model, as: .squashfs(layout: .dataOnly, options: options, disk: .init()), to: path)
        }
        return (path, elapsedSeconds(since: start))
    }

    /// Enables fs-verity on a built composefs image and returns its digest, to pin at mount.
    func sealImage(_ path: String) throws -> [UInt8] {
        let file = try ReadOnlyFile(path: path)
        try FileIO.enableVerity(file.descriptor, path: path)
        guard let digest = FileIO.measureVerity(file.descriptor) else {
            throw BenchError("\(path): fs-verity was enabled but cannot be measured")
        }
        return digest
    }

    /// An image with fs-verity cannot be rewritten in place (the file is immutable): a
    /// previous run's goes first.
    func removeVerityImage(_ path: String) throws {
        if FileQueries.exists(path) { try FileQueries.remove(path) }
    }

    /// Why a verified arm cannot run here (nil: it can).
    func unavailable(_ arm: Arm) -> String? {
        guard arm.isVerified else { return nil }
        if !objectsHaveVerity {
            return "the objects' filesystem (\(objects)) has no fs-verity, so nothing can be verified"
        }
        if case .verityDisk = arm.kind, !LinuxKernelOps().hasDeviceMapper() { return Self.noDeviceMapper }
        return nil
    }

    func diskArmReason() -> String {
        LinuxKernelOps().hasDeviceMapper()
            ? "not asked for (--arms overlay-disk-lz4 with fs-verity objects)" : Self.noDeviceMapper
    }

    static let noDeviceMapper =
        "the kernel has no device-mapper (/dev/mapper/control missing), so dm-verity cannot be activated"

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
