import Benchmark
import ComposefsDump
import Foundation
import ImageModel

/// Parsing the composefs dump of CentOS Stream 9 minimal (22,010 lines), decompressed in
/// memory first so the number is the parser's alone. Reads ../shared/vectors (next to the
/// checkout); set OVLCFS_DUMP to parse another dump.
let dumpPath = ProcessInfo.processInfo.environment["OVLCFS_DUMP"]
    ?? URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("shared/vectors/composefs/cs9-x86_64-minimal.dump.gz").path

func loadDump() -> [UInt8] {
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
func syntheticDump(entries count: Int) -> [UInt8] {
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

let benchmarks: @Sendable () -> Void = {
    let cs9 = loadDump()
    let lines = cs9.lazy.filter { $0 == 0x0A }.count
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        maxDuration: .seconds(5),
        maxIterations: 100
    )

    Benchmark("DumpParse cs9-x86_64-minimal (\(lines) lines)",
              configuration: .init(scalingFactor: .one, thresholds: [.wallClock: .relaxed])) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try DumpParser.parse(cs9, input: "cs9"))
        }
    }

    Benchmark("DumpWrite cs9-x86_64-minimal (\(lines) lines)") { benchmark in
        let image = try DumpParser.parse(cs9, input: "cs9")
        benchmark.startMeasurement()
        blackHole(DumpWriter.render(image))
    }

    let synthetic = syntheticDump(entries: 1_000_000)
    Benchmark("DumpParse synthetic (1000000 lines)",
              configuration: .init(metrics: [.wallClock, .peakMemoryResident, .mallocCountTotal], maxIterations: 5)) { benchmark in
        blackHole(try DumpParser.parse(synthetic, input: "synthetic"))
    }
}
