import Benchmark
import ComposefsDump
import BenchmarkSupport
import Foundation
import ImageModel

/// Growth of the resident set over the first parse (the model plus the parser's transient
/// state: the peak), per entry. Later iterations reuse freed memory, so only the first counts.
let bytesPerEntry = BenchmarkMetric.custom("peak RSS growth bytes / entry", polarity: .prefersSmaller, useScalingFactor: false)
let linesPerSecond = BenchmarkMetric.custom("lines / s (thousands)", polarity: .prefersLarger, useScalingFactor: false)

/// Parses `bytes` once per iteration (on `jobs` threads) and reports throughput and the
/// model's heap footprint.
func parseBenchmark(_ benchmark: Benchmark, _ bytes: [UInt8], lines: Int, jobs: Int = 1) throws {
    var first = true
    for _ in benchmark.scaledIterations {
        let before = residentBytes()
        let start = ContinuousClock.now
        let image = try DumpParser.parse(bytes, input: "bench", options: DumpOptions(jobs: jobs))
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

    Benchmark("DumpParse synthetic (1000000 lines, 2 threads)", configuration: .init(maxIterations: 5)) { benchmark in
        let synthetic = syntheticDump(entries: 1_000_000)
        benchmark.startMeasurement()
        try parseBenchmark(benchmark, synthetic, lines: 1_000_000, jobs: 2)
    }
}
