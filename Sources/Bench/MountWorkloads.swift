import Foundation
import LinuxSys
import MountDriver

/// The `mount` and `density` workloads: what mounting costs, one image at a time and many at once.
extension BenchRunner {
    /// Mount and unmount latency per arm, through the driver `ovlcfs mount` uses; cold runs
    /// drop caches first, warm runs follow warm-up mounts. A run's CPU time is the mount's.
    func measureMounts(_ arms: [(Arm, MountRequest)], into timings: inout [String: [Timing]]) throws {
        for cache in configuration.caches {
            if cache == .warm {
                for (arm, request) in arms {
                    for _ in 0..<configuration.warmups {
                        try checkCancelled()
                        progress("warm-up mount \(arm.name)")
                        _ = try mountOnce(request)
                    }
                }
            }
            try interleaved(arms, .mount, cache, into: &timings) { try mountOnce($0) }
        }
    }

    /// One mount and unmount, timed apart.
    func mountOnce(_ request: MountRequest) throws -> Timing {
        var mounted = false
        defer { if mounted { try? driver.unmount(request.target) } }
        var timing = try Timing.of {
            try driver.mount(request)
            return .zero
        }
        mounted = true
        let start = ContinuousClock.now
        try driver.unmount(request.target)
        mounted = false
        timing.unmountSeconds = elapsedSeconds(since: start)
        return timing
    }

    /// `configuration.density` copies of the arm's image (distinct files: nothing shared by
    /// accident) mounted at once, each walked with `ls -lR`, then unmounted; kernel objects
    /// and memory counted from a dropped-caches baseline. Everything mounted is unmounted
    /// when a run fails or is interrupted.
    func measureDensity(_ arm: Arm, image request: MountRequest) throws -> BenchReport.DensityResult {
        let count = configuration.density
        let requests = try densityRequests(arm, request, count: count)
        let filesystems = try driver.plan(requests[0]).steps.filter {
            $0.action == .mountLower || $0.action == .mountOverlay
        }.count
        var runs: [DensityRun] = []
        for run in 0..<configuration.runs {
            try checkCancelled()
            progress("density \(arm.name) run \(run + 1)/\(configuration.runs): mounting \(count)")
            runs.append(try densityRun(arm, requests))
        }
        func median(_ values: [Double]) -> Double { Statistics.median(values) / Double(count) }
        return .init(
            arm: arm.name, images: count, mountSeconds: runs.map(\.mount.seconds),
            walkSeconds: runs.map(\.walk.seconds),
            umountSeconds: runs.map(\.umount.seconds), userSeconds: runs.map(\.cpu.user),
            systemSeconds: runs.map(\.cpu.system),
            kernelObjects: .init(
                mounts: median(runs.map { Double($0.objects.mounts) }),
                loopDevices: median(runs.map { Double($0.objects.loops) }),
                dmDevices: median(runs.map { Double($0.objects.dm) }), filesystems: Double(filesystems)),
            memory: .init(
                slabBytes: median(runs.map { Double($0.memory.slab) }),
                pageCacheBytes: median(runs.map { Double($0.memory.pageCache) }),
                slabTotalBytes: median(runs.map { Double($0.memory.slabTotal) }),
                vmallocAndPercpuBytes: median(runs.map { Double($0.memory.other) })))
    }

    struct DensityRun {
        var mount, walk, umount: Timing
        var cpu: CPUTime { mount.cpu + walk.cpu + umount.cpu }
        var objects: KernelSnapshot.Delta
        var memory: KernelSnapshot.Delta
    }

    /// Requests for `count` copies of the arm's image, each at its own mount point.
    func densityRequests(_ arm: Arm, _ request: MountRequest, count: Int) throws -> [MountRequest] {
        let directory = workDirectory + "/density/" + arm.name
        try FileQueries.createDirectories(directory)
        return try (0..<count).map { index in
            // Copied afresh every time: a copy from an earlier run may hold another image of
            // the same size.
            let copy = directory + "/\(index).img"
            if FileQueries.exists(copy) { try FileQueries.remove(copy) }
            try FileManager.default.copyItem(atPath: request.image, toPath: copy)
            var each = try mountRequest(arm, image: copy, target: workDirectory + "/mnt/density-\(index)")
            // A copy has no fs-verity of its own: sealed again, so the pinned digest is measured
            // by the kernel as for the original (not hashed in userspace inside the timing).
            if request.digest != nil { each.digest = try sealImage(copy) }
            return each
        }
    }

    func densityRun(_ arm: Arm, _ requests: [MountRequest]) throws -> DensityRun {
        try dropCaches()
        let before = try KernelSnapshot.settled()
        var mounted: [String] = []
        defer { for target in mounted.reversed() { try? driver.unmount(target) } }
        let mount = try Timing.of {
            for request in requests {
                try checkCancelled()
                try driver.mount(request)
                mounted.append(request.target)
            }
            return .zero
        }
        let afterMount = try KernelSnapshot.take()
        progress("density \(arm.name): walking \(requests.count)")
        let walk = try Timing.of {
            var children = CPUTime.zero
            for target in mounted {
                try checkCancelled()
                children = children + (try WorkloadRunner.listRecursively(target))
            }
            return children
        }
        let afterWalk = try KernelSnapshot.take()
        progress("density \(arm.name): unmounting \(requests.count)")
        let umount = try Timing.of {
            while let target = mounted.last {
                try driver.unmount(target)
                mounted.removeLast()
            }
            return .zero
        }
        return DensityRun(
            mount: mount, walk: walk, umount: umount, objects: afterMount - before, memory: afterWalk - before)
    }
}

/// What the kernel holds at one moment: the counts a density run compares.
struct KernelSnapshot {
    var mounts: Int
    var loops: Int
    var dm: Int
    var slab: UInt64
    var slabTotal: UInt64
    var pageCache: UInt64
    /// vmalloc'd and per-CPU memory (decompressor buffers, block-layer structures).
    var other: UInt64

    /// The inode and dentry caches of the filesystems in the two stacks.
    static let caches = ["dentry", "ovl_inode", "squashfs_inode_cache", "erofs_inode", "inode_cache"]

    static func take() throws -> KernelSnapshot {
        // Counts first, memory last: reading /sys makes dentries of its own.
        let mounts = try SystemCounters.mounts()
        let loops = try SystemCounters.attachedLoopDevices().count
        let dm = try SystemCounters.deviceMapperDevices().count
        let slab = try SystemCounters.slabBytes()
        let memory = try SystemCounters.memoryInfo()
        return KernelSnapshot(
            mounts: mounts, loops: loops, dm: dm, slab: caches.reduce(0) { $0 + (slab[$1] ?? 0) },
            slabTotal: memory["Slab"] ?? 0, pageCache: (memory["Cached"] ?? 0) + (memory["Buffers"] ?? 0),
            other: (memory["VmallocUsed"] ?? 0) + (memory["Percpu"] ?? 0))
    }

    /// A snapshot once freeing has settled: inodes and dentries that drop_caches let go are
    /// freed after an RCU grace period, so the slab shrinks for a moment afterwards. Waits
    /// (at most 2 s) until two readings 50 ms apart agree within 256 KiB.
    static func settled() throws -> KernelSnapshot {
        var last = try take()
        for _ in 0..<40 {
            usleep(50_000)
            let next = try take()
            if abs(Int64(next.slabTotal) - Int64(last.slabTotal)) < 256 << 10 { return next }
            last = next
        }
        return last
    }

    /// Differences (counts may go down: other activity; they are reported as they are).
    struct Delta {
        var mounts, loops, dm: Int
        var slab, slabTotal, pageCache, other: Int64
    }

    static func - (a: KernelSnapshot, b: KernelSnapshot) -> Delta {
        Delta(
            mounts: a.mounts - b.mounts, loops: a.loops - b.loops, dm: a.dm - b.dm,
            slab: Int64(a.slab) - Int64(b.slab), slabTotal: Int64(a.slabTotal) - Int64(b.slabTotal),
            pageCache: Int64(a.pageCache) - Int64(b.pageCache), other: Int64(a.other) - Int64(b.other))
    }
}
