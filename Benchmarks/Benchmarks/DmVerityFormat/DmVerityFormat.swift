import Benchmark
import Foundation
import Verity

/// dm-verity hash tree of a 64 MiB data image through libcryptsetup (what `build --disk` does),
/// and the userspace check of the same tree.
let megabytesPerSecond = BenchmarkMetric.custom("MB / s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ovlcfs-bench-verity")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let data = directory.appendingPathComponent("data").path
    let size = 64 << 20
    FileManager.default.createFile(atPath: data, contents: Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }))
    let salt = [UInt8](repeating: 7, count: 32)
    let configuration = Benchmark.Configuration(metrics: [.wallClock, megabytesPerSecond], maxDuration: .seconds(5), maxIterations: 10,
                                                thresholds: [.wallClock: .relaxed])
    Benchmark("DmVerity format 64 MiB (libcryptsetup)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            let start = ContinuousClock.now
            blackHole(try DmVerity.format(data: data, hash: data + ".hash", salt: salt))
            let elapsed = ContinuousClock.now - start
            benchmark.measurement(megabytesPerSecond, Int(Double(size) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) / 1e6))
        }
    }
    Benchmark("DmVerity userspace check 64 MiB", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            let start = ContinuousClock.now
            blackHole(try DmVerity.rootHash(ofFile: data, offset: 0, blocks: UInt64(size / 4096), salt: salt))
            let elapsed = ContinuousClock.now - start
            benchmark.measurement(megabytesPerSecond, Int(Double(size) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) / 1e6))
        }
    }
}
