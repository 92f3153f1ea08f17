// swift-tools-version: 6.1
//
// ovlcfs: composefs images and the overlayfs "overlay option" from one image model.
//
// The target graph is the architecture (see README.md, "Layout"). Each line: what a target
// holds -> what it uses (system libraries in brackets; each is wrapped by exactly one module).
//
//   ImageModel          pure values: the tree, inodes, xattrs, digests, limits     -> (none)
//   ComposefsDump       the composefs dump format: parser, writer                  -> ImageModel
//   OverlayTranslation  model -> overlay option (metacopy, redirects, whiteouts)    -> ImageModel
//   LinuxSys            files, directories, mounts, loop devices, syscalls          -> [zlib, CLinux]
//   Verity              fs-verity digests, SHA-256, dm-verity root hash (userspace) -> ImageModel, LinuxSys, [libcrypto]
//   Cryptsetup          dm-verity hash tree format, activation, removal             -> [libcryptsetup]
//   Archive             tar layers, one built-in decompressor                      -> [libarchive]
//   ObjectStore         the content-addressed objects/ store: ingest, verify, gc   -> ImageModel, Verity, LinuxSys
//   OCIImage            OCI/docker images: layout, verified blobs, layer rules      -> Archive, ObjectStore, Verity, …
//   SquashfsWriter      squashfs images (and a reader for checks)                  -> ImageModel, LinuxSys, [libsquashfs]
//   ErofsWriter         composefs EROFS images, byte-identical to mkcomposefs      -> ImageModel, OverlayTranslation, Verity
//   DiskImage           GPT disk with the data and dm-verity hash partitions       -> Cryptsetup, Verity, LinuxSys
//   ImagePipeline       one place that reads models and writes every image kind    -> the formats above
//   MountDriver         mount plan, executor with undo ledger, records, features   -> DiskImage, ObjectStore, Cryptsetup, …
//   Bench               the A/B benchmark: workloads, statistics, reports          -> MountDriver, ImagePipeline, …
//   ovlcfs              the command-line tool and mount.ovlcfs (thin)              -> all of the above
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
        .target(name: "ComposefsDump", dependencies: ["ImageModel"], swiftSettings: strict),
        .target(name: "OverlayTranslation", dependencies: ["ImageModel"], swiftSettings: strict),
        .target(name: "Verity", dependencies: ["ImageModel", "CCrypto", "LinuxSys", system], swiftSettings: strict),
        .target(name: "ErofsWriter", dependencies: ["ImageModel", "OverlayTranslation", "Verity"], swiftSettings: strict),
        .target(name: "Cryptsetup", dependencies: ["CCryptsetup", system], swiftSettings: strict),
        .target(name: "DiskImage", dependencies: ["Cryptsetup", "LinuxSys", "Verity", system], swiftSettings: strict),
        .target(name: "MountDriver", dependencies: ["Cryptsetup", "ImageModel", "LinuxSys", "ObjectStore", "OverlayTranslation", "DiskImage", "Verity", system], swiftSettings: strict),
        .target(name: "ImagePipeline", dependencies: [
            "ComposefsDump", "ImageModel", "LinuxSys", "OverlayTranslation", "SquashfsWriter", "ErofsWriter", "DiskImage", "Verity",
        ], swiftSettings: strict),
        .target(name: "Bench", dependencies: [
            "ImageModel", "LinuxSys", "MountDriver", "OverlayTranslation", "SquashfsWriter", "ErofsWriter", "ImagePipeline", "Verity", system,
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
            dependencies: ["Bench", "ComposefsDump", "DiskImage", "ErofsWriter", "ImageModel", "LinuxSys", "OCIImage", "ObjectStore", "OverlayTranslation", "SquashfsWriter", "TestSupport"],
            path: "Tests/Fuzz", swiftSettings: strict
        ),

        .target(name: "TestSupport", dependencies: ["ImageModel", "Bench", "MountDriver", "LinuxSys", "ComposefsDump", "OverlayTranslation", "SquashfsWriter", system], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "ImageModelTests", dependencies: ["ImageModel", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ComposefsDumpTests", dependencies: ["ImagePipeline", "ComposefsDump", "ImageModel", "LinuxSys", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "OverlayTranslationTests", dependencies: ["OverlayTranslation", "ImageModel", "ComposefsDump", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SquashfsWriterTests", dependencies: ["ImagePipeline", "SquashfsWriter", "OverlayTranslation", "ImageModel", "ComposefsDump", "LinuxSys", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ErofsWriterTests", dependencies: ["ImagePipeline", "ErofsWriter", "ComposefsDump", "ImageModel", "Verity", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "MountDriverTests", dependencies: ["MountDriver", "LinuxSys", "OverlayTranslation", "DiskImage", "TestSupport", system], swiftSettings: strict),
        .testTarget(name: "BenchTests", dependencies: [
            "Bench", "ComposefsDump", "ImageModel", "ImagePipeline", "LinuxSys", "MountDriver", "OverlayTranslation", "SquashfsWriter", "TestSupport",
        ], swiftSettings: strict),
        .testTarget(name: "DiskImageTests", dependencies: ["Cryptsetup", "DiskImage", "Verity", "LinuxSys", "TestSupport", system], swiftSettings: strict),
        .testTarget(name: "VerityTests", dependencies: ["Verity", "ImageModel", "TestSupport", system], swiftSettings: strict),
        .testTarget(name: "ObjectStoreTests", dependencies: [
            "ObjectStore", "Verity", "ImageModel", "ComposefsDump", "LinuxSys", "OverlayTranslation", "TestSupport", system,
        ], exclude: ["make_tree.py"], swiftSettings: strict),
        .testTarget(name: "IntegrationTests", dependencies: [
            "SquashfsWriter", "OverlayTranslation", "ImageModel", "ImagePipeline", "ComposefsDump", "LinuxSys", "ObjectStore", "Verity", "ErofsWriter", "MountDriver", "DiskImage", "TestSupport", system,
        ], swiftSettings: strict),
        .testTarget(name: "OCIImageTests", dependencies: [
            "OCIImage", "Archive", "ImageModel", "ComposefsDump", "ObjectStore", "LinuxSys", "Verity", "TestSupport",
        ], swiftSettings: strict),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
