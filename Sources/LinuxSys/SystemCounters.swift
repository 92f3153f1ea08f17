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
