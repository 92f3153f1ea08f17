import Foundation

/// Everything a benchmark measured, as written to `--json`.
public struct BenchReport: Sendable, Codable {
    /// One arm × workload × cache cell: wall-clock samples (for `mount`, the mount latency)
    /// and their statistics, with the CPU time of each run, user and system apart.
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
        /// CPU seconds of each run: this thread's for in-process work (the kernel's work in its
        /// system calls included), the child's for `ls -lR`. Their sum is exact; the kernel
        /// splits it into user and system by tick samples, so a run of a few milliseconds may
        /// show all of it on one side.
        public var userSeconds: [Double]
        public var systemSeconds: [Double]
        /// `mount` only: the unmount latency of each run (`ovlcfs umount`: until the loop
        /// devices are gone too).
        public var unmountSamples: [Double]?
        /// CPU seconds all CPUs were busy during each run (`/proc/stat`, 10 ms ticks): the
        /// thread's and child's time above plus the kernel's workers — loop's backing-file
        /// reads, dm-verity and fs-verity hashing — which they do not include.
        public var busySeconds: [Double]?
        /// Per kind of block device (loop, dm, virtio, …), the read requests and bytes of each
        /// run (`/sys/block/*/stat` deltas; a mount's and its unmount's for `mount`).
        public var blockReadRequests: [String: [Double]]?
        public var blockReadBytes: [String: [Double]]?

        public init(
            arm: String, workload: Workload, cache: CacheState, samples: [Double], median: Double, mean: Double,
            stddev: Double, min: Double, max: Double, runs: Int, userSeconds: [Double] = [],
            systemSeconds: [Double] = [], unmountSamples: [Double]? = nil
        ) {
            (self.arm, self.workload, self.cache, self.samples) = (arm, workload, cache, samples)
            (self.median, self.mean, self.stddev, self.min, self.max, self.runs) = (
                median, mean, stddev, min, max, runs
            )
            (self.userSeconds, self.systemSeconds, self.unmountSamples) = (userSeconds, systemSeconds, unmountSamples)
        }

        /// A result from timed runs.
        public init(arm: String, workload: Workload, cache: CacheState, timings: [Timing]) {
            let samples = timings.map(\.seconds)
            let summary = Summary(samples)
            self.init(
                arm: arm, workload: workload, cache: cache, samples: samples, median: summary.median,
                mean: summary.mean, stddev: summary.stddev, min: summary.min, max: summary.max, runs: summary.runs,
                userSeconds: timings.map(\.cpu.user), systemSeconds: timings.map(\.cpu.system),
                unmountSamples: timings.contains { $0.unmountSeconds != nil }
                    ? timings.map { $0.unmountSeconds ?? 0 } : nil)
            if timings.allSatisfy({ $0.busySeconds != nil }) { busySeconds = timings.map { $0.busySeconds ?? 0 } }
            let kinds = Set(timings.flatMap(\.blockReads.keys)).sorted()
            if !kinds.isEmpty {
                blockReadRequests = Dictionary(
                    uniqueKeysWithValues: kinds.map { kind in
                        (kind, timings.map { Double($0.blockReads[kind]?.requests ?? 0) })
                    })
                blockReadBytes = Dictionary(
                    uniqueKeysWithValues: kinds.map { kind in
                        (kind, timings.map { Double($0.blockReads[kind]?.bytes ?? 0) })
                    })
            }
        }
    }

    /// Kernel objects one mounted image holds, counted (not assumed) during a density run.
    public struct KernelObjects: Sendable, Codable, Equatable {
        /// Mounts in the mount table (`/proc/self/mountinfo`).
        public var mounts: Double
        /// Loop devices with a backing file (`/sys/block/loop*`).
        public var loopDevices: Double
        /// Device-mapper devices (`/sys/class/block/dm-*`).
        public var dmDevices: Double
        /// Filesystem instances the mount plan creates, attached or detached (the lower layer
        /// is a detached mount, in no table): from the plan, not counted.
        public var filesystems: Double

        public init(mounts: Double, loopDevices: Double, dmDevices: Double, filesystems: Double) {
            (self.mounts, self.loopDevices, self.dmDevices, self.filesystems) = (
                mounts, loopDevices, dmDevices, filesystems
            )
        }
    }

    /// Memory one mounted and walked image costs, from a dropped-caches baseline.
    public struct Memory: Sendable, Codable, Equatable {
        /// Inode and dentry slab caches (`/proc/slabinfo`: dentry, ovl_inode,
        /// squashfs_inode_cache, erofs_inode, inode_cache), active objects × object size.
        public var slabBytes: Double
        /// Page cache, block-device buffers included (`Cached` + `Buffers`, `/proc/meminfo`).
        /// Loop devices run without direct I/O, so the overlay option's image is cached twice:
        /// as the backing file's pages and as the loop device's.
        public var pageCacheBytes: Double
        /// All slab memory (`Slab`, `/proc/meminfo`): the caches above plus kmalloc'd buffers
        /// and everything else the kernel allocates from slabs.
        public var slabTotalBytes: Double
        /// vmalloc'd and per-CPU memory (`VmallocUsed` + `Percpu`): decompressor buffers,
        /// block-layer queues.
        public var vmallocAndPercpuBytes: Double

        public init(
            slabBytes: Double, pageCacheBytes: Double, slabTotalBytes: Double, vmallocAndPercpuBytes: Double = 0
        ) {
            (self.slabBytes, self.pageCacheBytes, self.slabTotalBytes) = (slabBytes, pageCacheBytes, slabTotalBytes)
            self.vmallocAndPercpuBytes = vmallocAndPercpuBytes
        }
    }

    /// N images of one arm mounted at once, then one `ls -lR` of each (`--density N`).
    public struct DensityResult: Sendable, Codable {
        public var arm: String
        public var images: Int
        /// Per run: seconds to mount all N, to walk all N, to unmount all N.
        public var mountSeconds: [Double]
        public var walkSeconds: [Double]
        public var umountSeconds: [Double]
        /// Per run, the three phases together.
        public var userSeconds: [Double]
        public var systemSeconds: [Double]
        /// Per image (medians over the runs).
        public var kernelObjects: KernelObjects
        public var memory: Memory

        public init(
            arm: String, images: Int, mountSeconds: [Double], walkSeconds: [Double], umountSeconds: [Double],
            userSeconds: [Double], systemSeconds: [Double], kernelObjects: KernelObjects, memory: Memory
        ) {
            (self.arm, self.images, self.mountSeconds, self.walkSeconds, self.umountSeconds) = (
                arm, images, mountSeconds, walkSeconds, umountSeconds
            )
            (self.userSeconds, self.systemSeconds, self.kernelObjects, self.memory) = (
                userSeconds, systemSeconds, kernelObjects, memory
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
        /// Where the objects the images point to came from: `sparse stand-ins` (the default:
        /// files of the right sizes, all holes) or `hard links to the source's files`.
        public var objects: String = "sparse stand-ins of the right sizes"
        /// Where and how it was measured, when that matters for reading it (e.g. under emulation).
        public var note: String?

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
    public var density: [DensityResult] = []
    public var ratios: [RatioEntry] = []
    public var images: [ImageInfo] = []
    public var skipped: [Skipped] = []
    public var system: SystemInfo

    public init(system: SystemInfo) { self.system = system }

    public func result(_ arm: String, _ workload: Workload, _ cache: CacheState) -> Result? {
        results.first { $0.arm == arm && $0.workload == workload && $0.cache == cache }
    }
}
