// swift-tools-version: 6.1
//
// ovlcfs: composefs images and the overlayfs "overlay option" from one image model.
//
// The target graph is the architecture (see README.md, "Layout"):
//   ImageModel            pure values: the tree, inodes, xattrs, limits
//   ComposefsDump         the composefs dump format (reader, writer)     -> ImageModel, LinuxSys
//   LinuxSys              the only Swift module that touches C I/O APIs -> CZlib, SystemPackage
//   ovlcfs                the command-line tool (thin)                  -> all of the above
// C libraries come in as system libraries, each wrapped by exactly one module.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]
let system = Target.Dependency.product(name: "SystemPackage", package: "swift-system")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "ovlcfs",
    products: [
        .executable(name: "ovlcfs", targets: ["ovlcfs"]),
        .library(name: "ImageModel", targets: ["ImageModel"]),
        .library(name: "ComposefsDump", targets: ["ComposefsDump"]),
        .library(name: "OverlayTranslation", targets: ["OverlayTranslation"]),
        .library(name: "SquashfsWriter", targets: ["SquashfsWriter"]),
        .library(name: "Verity", targets: ["Verity"]),
        .library(name: "ObjectStore", targets: ["ObjectStore"]),
        .library(name: "ErofsWriter", targets: ["ErofsWriter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // System libraries (apt packages named in `providers`; .ci/run installs them).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSquashfs", pkgConfig: "libsquashfs1", providers: [.apt(["libsquashfs-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CCryptsetup", pkgConfig: "libcryptsetup", providers: [.apt(["libcryptsetup-dev"])]),

        .target(name: "CSquashfsShim", dependencies: ["CSquashfs"]),

        .target(name: "CLinux"),
        .target(name: "LinuxSys", dependencies: ["CZlib", "CLinux", system], swiftSettings: strict),
        .target(name: "ImageModel", swiftSettings: strict),
        .target(name: "ComposefsDump", dependencies: ["ImageModel", "LinuxSys"], swiftSettings: strict),
        .target(name: "OverlayTranslation", dependencies: ["ImageModel"], swiftSettings: strict),
        .target(name: "Verity", dependencies: ["ImageModel", "CCrypto", "CCryptsetup", "LinuxSys", system], swiftSettings: strict),
        .target(name: "ErofsWriter", dependencies: ["ImageModel", "OverlayTranslation", "Verity"], swiftSettings: strict),
        .target(name: "DiskImage", dependencies: ["LinuxSys", "Verity", system], swiftSettings: strict),
        .target(name: "MountDriver", dependencies: ["ImageModel", "LinuxSys", "ObjectStore", "OverlayTranslation", "DiskImage", "Verity", system], swiftSettings: strict),
        .target(name: "ImagePipeline", dependencies: [
            "ImageModel", "LinuxSys", "OverlayTranslation", "SquashfsWriter", "ErofsWriter", "DiskImage", "Verity",
        ], swiftSettings: strict),
        .target(name: "Bench", dependencies: [
            "ImageModel", "LinuxSys", "MountDriver", "OverlayTranslation", "SquashfsWriter", "ErofsWriter", "ImagePipeline", system,
        ], swiftSettings: strict),
        .target(name: "Archive", dependencies: ["CArchive", system], swiftSettings: strict),
        .target(name: "OCIImage", dependencies: ["Archive", "ImageModel", "LinuxSys", "ObjectStore", "Verity", system], swiftSettings: strict),
        .target(name: "ObjectStore", dependencies: ["ImageModel", "Verity", "LinuxSys", system], swiftSettings: strict),
        .target(name: "SquashfsWriter", dependencies: ["ImageModel", "CSquashfsShim", "LinuxSys", system], swiftSettings: strict),
        .executableTarget(
            name: "ovlcfs",
            dependencies: [argumentParser, "ImageModel", "ComposefsDump", "LinuxSys", "OverlayTranslation", "SquashfsWriter", "Verity", "ObjectStore", "ErofsWriter", "MountDriver", "Bench", "DiskImage", "ImagePipeline", "OCIImage"],
            swiftSettings: strict
        ),

        // Seeded mutation fuzzer of every reader (scripts/fuzz; short runs in the test suite).
        .executableTarget(
            name: "ovlcfs-fuzz",
            dependencies: ["Bench", "ComposefsDump", "DiskImage", "ErofsWriter", "ImageModel", "LinuxSys", "OCIImage", "ObjectStore", "OverlayTranslation", "SquashfsWriter"],
            path: "Tests/Fuzz", swiftSettings: strict
        ),

        .target(name: "TestSupport", dependencies: ["ImageModel", "Bench", "MountDriver", "LinuxSys", system], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "ImageModelTests", dependencies: ["ImageModel", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ComposefsDumpTests", dependencies: ["ComposefsDump", "ImageModel", "LinuxSys", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "OverlayTranslationTests", dependencies: ["OverlayTranslation", "ImageModel", "ComposefsDump", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SquashfsWriterTests", dependencies: ["SquashfsWriter", "OverlayTranslation", "ImageModel", "ComposefsDump", "LinuxSys", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ErofsWriterTests", dependencies: ["ErofsWriter", "ComposefsDump", "ImageModel", "Verity", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "MountDriverTests", dependencies: ["MountDriver", "LinuxSys", "OverlayTranslation", "DiskImage", "TestSupport", system], swiftSettings: strict),
        .testTarget(name: "BenchTests", dependencies: [
            "Bench", "ComposefsDump", "ImageModel", "LinuxSys", "MountDriver", "OverlayTranslation", "SquashfsWriter", "TestSupport",
        ], swiftSettings: strict),
        .testTarget(name: "DiskImageTests", dependencies: ["DiskImage", "Verity", "LinuxSys", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "VerityTests", dependencies: ["Verity", "ImageModel", "TestSupport", system], swiftSettings: strict),
        .testTarget(name: "ObjectStoreTests", dependencies: [
            "ObjectStore", "Verity", "ImageModel", "ComposefsDump", "LinuxSys", "OverlayTranslation", "TestSupport", system,
        ], exclude: ["make_tree.py"], swiftSettings: strict),
        .testTarget(name: "IntegrationTests", dependencies: [
            "SquashfsWriter", "OverlayTranslation", "ImageModel", "ComposefsDump", "LinuxSys", "ObjectStore", "Verity", "ErofsWriter", "MountDriver", "DiskImage", "TestSupport", system,
        ], swiftSettings: strict),
        .testTarget(name: "OCIImageTests", dependencies: [
            "OCIImage", "Archive", "ImageModel", "ComposefsDump", "ObjectStore", "LinuxSys", "Verity", "TestSupport",
        ], swiftSettings: strict),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
