// swift-tools-version: 6.1
//
// Micro-benchmarks for ovlcfs (ordo-one/benchmark). A nested package, so the benchmark
// dependency never slows the main build or CI. Run from this folder:
//   swift package benchmark            (all)
//   swift package benchmark --filter DumpParse
import PackageDescription

let package = Package(
    name: "ovlcfs-benchmarks",
    dependencies: [
        .package(name: "ovlcfs", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(name: "BenchmarkSupport", path: "Support"),
        .executableTarget(
            name: "DumpParse",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ComposefsDump", package: "ovlcfs"),
                .product(name: "ImageModel", package: "ovlcfs"),
            ],
            path: "Benchmarks/DumpParse",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SquashfsWrite",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ComposefsDump", package: "ovlcfs"),
                .product(name: "ImageModel", package: "ovlcfs"),
                .product(name: "OverlayTranslation", package: "ovlcfs"),
                .product(name: "SquashfsWriter", package: "ovlcfs"),
            ],
            path: "Benchmarks/SquashfsWrite",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ErofsWrite",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ComposefsDump", package: "ovlcfs"),
                .product(name: "ImageModel", package: "ovlcfs"),
                .product(name: "ErofsWriter", package: "ovlcfs"),
            ],
            path: "Benchmarks/ErofsWrite",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Hashing",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Verity", package: "ovlcfs"),
            ],
            path: "Benchmarks/Hashing",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "DmVerityFormat",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Verity", package: "ovlcfs"),
            ],
            path: "Benchmarks/DmVerityFormat",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
