import Benchmark
import BenchmarkSupport
import ComposefsDump
import Foundation
import ImageModel
import OverlayTranslation
import SquashfsWriter

/// Translation + squashfs write from a parsed model (what `ovlcfs build` does after reading).
let entriesPerSecond = BenchmarkMetric.custom("entries / s (thousands)", polarity: .prefersLarger, useScalingFactor: false)
let rssPerEntry = BenchmarkMetric.custom("peak RSS growth bytes / entry", polarity: .prefersSmaller, useScalingFactor: false)

func buildBenchmark(_ benchmark: Benchmark, _ image: Image, options: SquashfsOptions) throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ovlcfs-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    var first = true
    for _ in benchmark.scaledIterations {
        let before = residentBytes()
        let start = ContinuousClock.now
        let layer = try OverlayTranslation.translate(image)
        let result = try SquashfsWriter.write(layer, to: directory.appendingPathComponent("i.sqfs").path, options: options)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        benchmark.measurement(entriesPerSecond, Int(Double(result.entries) / seconds / 1000))
        if first {
            benchmark.measurement(rssPerEntry, (residentBytes() - before) / result.entries)
            first = false
        }
        blackHole(result)
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, entriesPerSecond, rssPerEntry],
        maxDuration: .seconds(5),
        maxIterations: 30
    )
    for compression in [SquashfsOptions.Compression.lz4, .zstd] {
        Benchmark("SquashfsWrite cs9-x86_64-minimal \(compression.rawValue)",
                  configuration: .init(thresholds: [.wallClock: .relaxed])) { benchmark in
            let image = try DumpParser.parse(loadDump(), input: "cs9")
            benchmark.startMeasurement()
            try buildBenchmark(benchmark, image, options: SquashfsOptions(compression: compression))
        }
    }
    Benchmark("SquashfsWrite synthetic 1000000 lz4", configuration: .init(maxIterations: 2)) { benchmark in
        let image = try DumpParser.parse(syntheticDump(entries: 1_000_000), input: "synthetic")
        benchmark.startMeasurement()
        try buildBenchmark(benchmark, image, options: SquashfsOptions(compression: .lz4))
    }
}
