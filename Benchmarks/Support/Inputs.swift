import Foundation

/// The composefs dump of CentOS Stream 9 minimal (22,010 lines), from ../shared/vectors next to
/// the checkout; set OVLCFS_DUMP to use another dump.
public let dumpPath = ProcessInfo.processInfo.environment["OVLCFS_DUMP"]
    ?? URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("shared/vectors/composefs/cs9-x86_64-minimal.dump.gz").path

/// The (decompressed) bytes of `dumpPath`.
public func loadDump() -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-dcf", dumpPath]
    let pipe = Pipe()
    process.standardOutput = pipe
    try! process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Array(data)
}

/// A synthetic dump of `count` entries shaped like a root filesystem: directories of 50
/// files with payloads, digests and an SELinux label.
public func syntheticDump(entries count: Int) -> [UInt8] {
    var text = "/ 4096 40755 2 0 0 0 0.0 - - -\n"
    var made = 1
    var dir = 0
    while made < count {
        text += "/d\(dir) 4096 40755 2 0 0 0 1700000000.0 - - - security.selinux=system_u:object_r:usr_t:s0\\x00\n"
        made += 1
        for file in 0..<50 where made < count {
            let hex = String(format: "%016llx", UInt64(dir * 50 + file) &* 0x9E37_79B9_7F4A_7C15)
            let digest = String(repeating: hex, count: 4)
            text += "/d\(dir)/file-\(file).so 123456 100644 1 0 0 0 1700000000.0 \(digest.prefix(2))/\(digest.dropFirst(2)) - \(digest) security.selinux=system_u:object_r:lib_t:s0\\x00\n"
            made += 1
        }
        dir += 1
    }
    return Array(text.utf8)
}

/// Resident set size of this process, from /proc/self/statm.
public func residentBytes() -> Int {
    let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? "0 0"
    let pages = Int(statm.split(separator: " ")[1]) ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
