/// Summary statistics of a sample of timings (seconds).
public struct Summary: Sendable, Codable, Equatable {
    public var runs: Int
    public var mean: Double
    /// Sample standard deviation (n − 1); 0 for a single run.
    public var stddev: Double
    public var median: Double
    public var min: Double
    public var max: Double

    public init(_ samples: [Double]) {
        precondition(!samples.isEmpty, "no samples")
        runs = samples.count
        mean = samples.reduce(0, +) / Double(samples.count)
        let m = mean
        stddev =
            samples.count > 1
            ? (samples.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(samples.count - 1)).squareRoot() : 0
        median = Statistics.median(samples)
        min = samples.min()!
        max = samples.max()!
    }
}

public enum Statistics {
    public static func median(_ samples: [Double]) -> Double {
        let sorted = samples.sorted()
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    /// The ratio of medians `a / b` with a percentile-bootstrap confidence interval: both
    /// samples are resampled with replacement `iterations` times from a seeded generator, so
    /// the interval is reproducible.
    public static func ratio(
        _ a: [Double], _ b: [Double], confidence: Double = 0.95, iterations: Int = 2000,
        seed: UInt64 = 0x5EED
    ) -> Ratio {
        var rng = SplitMix64(seed: seed)
        var ratios: [Double] = []
        ratios.reserveCapacity(iterations)
        for _ in 0..<iterations {
            let ra = (0..<a.count).map { _ in a[Int(rng.next() % UInt64(a.count))] }
            let rb = (0..<b.count).map { _ in b[Int(rng.next() % UInt64(b.count))] }
            ratios.append(median(ra) / median(rb))
        }
        ratios.sort()
        let tail = (1 - confidence) / 2
        let low = ratios[Swift.max(0, Int((Double(iterations) * tail).rounded(.down)))]
        let high = ratios[Swift.min(iterations - 1, Int((Double(iterations) * (1 - tail)).rounded(.up)) - 1)]
        return Ratio(value: median(a) / median(b), low: low, high: high)
    }

    public struct Ratio: Sendable, Codable, Equatable {
        public var value: Double
        public var low: Double
        public var high: Double
    }
}

/// A small deterministic generator (SplitMix64) for reproducible resampling and orders.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
