import Glibc

/// What the kernel holds, counted from `/proc` and `/sys`: mounts, loop and device-mapper
/// devices, slab caches and memory. Each read throws when its file cannot be read, so a
/// count is never a silent zero.
public enum SystemCounters {
    /// The mounts in this mount namespace's tree (`/proc/self/mountinfo`; detached mounts,
    /// which are in no tree, are not there).
    public static func mounts() throws -> Int { try Mounts.table().count }

    /// Loop devices with a backing file (`/sys/block/loopN/loop/backing_file` exists).
    public static func attachedLoopDevices() throws(IOError) -> [String] {
        try FileQueries.directoryEntries("/sys/block").map { String(decoding: $0, as: UTF8.self) }
            .filter { $0.hasPrefix("loop") && FileQueries.exists("/sys/block/\($0)/loop/backing_file") }.sorted()
    }

    /// Device-mapper devices (`/sys/class/block/dm-N`); none without device-mapper.
    public static func deviceMapperDevices() throws(IOError) -> [String] {
        guard FileQueries.exists("/sys/class/block") else { return [] }
        return try FileQueries.directoryEntries("/sys/class/block").map { String(decoding: $0, as: UTF8.self) }
            .filter { $0.hasPrefix("dm-") }.sorted()
    }

    /// Reads completed and bytes read so far per block device (`/sys/block/DEV/stat`: fields
    /// 1 and 3, sectors of 512 bytes whatever the device's block size).
    public static func blockDeviceReads() throws -> [String: (requests: UInt64, bytes: UInt64)] {
        var reads: [String: (requests: UInt64, bytes: UInt64)] = [:]
        for name in try FileQueries.directoryEntries("/sys/block").map({ String(decoding: $0, as: UTF8.self) }) {
            guard let text = try? text("/sys/block/\(name)/stat") else { continue }  // gone since listed
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 2, let requests = UInt64(fields[0]), let sectors = UInt64(fields[2]) else { continue }
            reads[name] = (requests, sectors * 512)
        }
        return reads
    }

    /// Seconds all CPUs together have been busy since boot (`/proc/stat`: user, nice, system,
    /// irq, softirq and steal; not idle or iowait), in clock ticks of 10 ms: work of every
    /// thread, the kernel's workers (loop, dm-verity, fs-verity) included.
    public static func cpuBusySeconds() throws -> Double {
        guard let line = try text("/proc/stat").split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else {
            throw IOError("parse", path: "/proc/stat", detail: "no cpu line")
        }
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard ticks.count >= 8 else { throw IOError("parse", path: "/proc/stat", detail: "short cpu line") }
        let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
        return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Bytes in use per slab cache (active objects × object size, `/proc/slabinfo`; root).
    public static func slabBytes() throws -> [String: UInt64] {
        var caches: [String: UInt64] = [:]
        for line in try text("/proc/slabinfo").split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, let active = UInt64(fields[1]), let size = UInt64(fields[3]) else { continue }
            caches[String(fields[0]), default: 0] += active * size
        }
        return caches
    }

    /// `/proc/meminfo` in bytes, by field name (`Cached`, `Buffers`, `Slab`, …).
    public static func memoryInfo() throws -> [String: UInt64] {
        var info: [String: UInt64] = [:]
        for line in try text("/proc/meminfo").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let value = parts[1].split(separator: " ")
            guard let number = value.first.flatMap({ UInt64($0) }) else { continue }
            info[String(parts[0])] = value.count > 1 && value[1] == "kB" ? number * 1024 : number
        }
        return info
    }

    static func text(_ path: String) throws -> String {
        String(decoding: try InputReader(path: path).readAll(), as: UTF8.self)
    }
}
