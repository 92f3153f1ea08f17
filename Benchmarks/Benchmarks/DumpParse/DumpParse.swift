import Benchmark
import ComposefsDump
import Foundation
import Glibc
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

/// Resident set size of this process, from /proc/self/statm.
func residentBytes() -> Int {
    let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? "0 0"
    let pages = Int(statm.split(separator: " ")[1]) ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Growth of the resident set over the first parse (the model plus the parser's transient
/// state: the peak), per entry. Later iterations reuse freed memory, so only the first counts.
let bytesPerEntry = BenchmarkMetric.custom("peak RSS growth bytes / entry", polarity: .prefersSmaller, useScalingFactor: false)
let linesPerSecond = BenchmarkMetric.custom("lines / s (thousands)", polarity: .prefersLarger, useScalingFactor: false)

/// Parses `bytes` once per iteration and reports throughput and the model's heap footprint.
func parseBenchmark(_ benchmark: Benchmark, _ bytes: [UInt8], lines: Int) throws {
    var first = true
    for _ in benchmark.scaledIterations {
        let before = residentBytes()
        let start = ContinuousClock.now
        let image = try DumpParser.parse(bytes, input: "bench")
        let elapsed = ContinuousClock.now - start
        if first {
            benchmark.measurement(bytesPerEntry, (residentBytes() - before) / image.entryCount)
            first = false
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        benchmark.measurement(linesPerSecond, Int(Double(lines) / seconds / 1000))
        blackHole(image)
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .peakMemoryResidentDelta, bytesPerEntry, linesPerSecond],
        maxDuration: .seconds(5),
        maxIterations: 100
    )

    Benchmark("DumpParse cs9-x86_64-minimal (22010 lines)",
              configuration: .init(thresholds: [.wallClock: .relaxed])) { benchmark in
        let cs9 = loadDump()
        benchmark.startMeasurement()
        try parseBenchmark(benchmark, cs9, lines: 22010)
    }

    Benchmark("DumpWrite cs9-x86_64-minimal (22010 lines)", configuration: .init(metrics: [.wallClock, .mallocCountTotal])) { benchmark in
        let image = try DumpParser.parse(loadDump(), input: "cs9")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(DumpWriter.render(image)) }
    }

    Benchmark("DumpParse synthetic (1000000 lines)", configuration: .init(maxIterations: 5)) { benchmark in
        let synthetic = syntheticDump(entries: 1_000_000)
        benchmark.startMeasurement()
        try parseBenchmark(benchmark, synthetic, lines: 1_000_000)
    }
}
