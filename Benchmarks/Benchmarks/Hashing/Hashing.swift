import Benchmark
import Foundation
import Verity

/// fs-verity digests in memory: the hashing alone (no I/O).
let megabytesPerSecond = BenchmarkMetric.custom("MB / s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    let data = [UInt8]((0..<(64 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) })
    Benchmark("FsVerity 64 MiB", configuration: .init(metrics: [.wallClock, megabytesPerSecond], maxDuration: .seconds(5), maxIterations: 20,
                                                      thresholds: [.wallClock: .relaxed])) { benchmark in
        for _ in benchmark.scaledIterations {
            let start = ContinuousClock.now
            blackHole(try FsVerity.digest(of: data))
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            benchmark.measurement(megabytesPerSecond, Int(Double(data.count) / seconds / 1e6))
        }
    }
}
