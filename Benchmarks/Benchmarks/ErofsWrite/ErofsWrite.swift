import Benchmark
import BenchmarkSupport
import ComposefsDump
import ErofsWriter
import Foundation
import ImageModel

/// Writing the composefs (EROFS) image from a parsed model, as `ovlcfs build --format composefs`.
let entriesPerSecond = BenchmarkMetric.custom("entries / s (thousands)", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResidentDelta, entriesPerSecond],
                                           maxDuration: .seconds(5), maxIterations: 30)
    Benchmark("ErofsWrite cs9-x86_64-minimal", configuration: .init(thresholds: [.wallClock: .relaxed])) { benchmark in
        let model = try DumpParser.parse(loadDump(), input: "cs9")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let start = ContinuousClock.now
            blackHole(try ComposefsImage.bytes(for: model))
            let elapsed = ContinuousClock.now - start
            benchmark.measurement(entriesPerSecond, Int(Double(model.entryCount) / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)) / 1000))
        }
    }
    Benchmark("ErofsWrite synthetic 1000000", configuration: .init(maxIterations: 2)) { benchmark in
        let model = try DumpParser.parse(syntheticDump(entries: 1_000_000), input: "synthetic")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let start = ContinuousClock.now
            blackHole(try ComposefsImage.bytes(for: model))
            let elapsed = ContinuousClock.now - start
            benchmark.measurement(entriesPerSecond, Int(Double(model.entryCount) / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)) / 1000))
        }
    }
}
