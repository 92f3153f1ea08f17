import MountDriver
import OverlayTranslation
import SquashfsWriter

/// Cache state of a measured run.
public enum CacheState: String, Sendable, Codable, CaseIterable {
    /// `sync` and `echo 3 > /proc/sys/vm/drop_caches` right before the run.
    case cold
    /// After warm-up runs; nothing dropped.
    case warm
}

/// A departure from the defaults of `ovlcfs build`/`ovlcfs mount`, measured side by side with
/// them: an overlay arm's name followed by `+lever` (docs/performance.md).
public enum Lever: String, Sendable, Codable, CaseIterable {
    /// Directory index entries only where a listing enters a new metadata block, as mksquashfs
    /// writes them (`--directory-index blocks`).
    case blockIndex = "block-index"
    /// Inode table: per directory, subdirectory subtrees first, then its other entries
    /// (`--inode-order grouped`).
    case groupedOrder = "grouped-order"
    /// Inode table in post-order by name, as gensquashfs writes it (`--inode-order name`).
    case nameOrder = "name-order"
    /// Loop device with 512-byte logical blocks, the kernel's default (`mount --loop-block-size 512`).
    case loop512

    func apply(to options: inout SquashfsOptions) {
        switch self {
        case .blockIndex: options.directoryIndex = .blocks
        case .groupedOrder: options.inodeOrder = .grouped
        case .nameOrder: options.inodeOrder = .name
        case .loop512: break
        }
    }

    func apply(to request: inout MountRequest) {
        if self == .loop512 { request.loopBlockSize = 512 }
    }
}

/// One stack under test.
public struct Arm: Sendable, Codable, Equatable {
    public enum Kind: Sendable, Codable, Equatable {
        case composefs
        case squashfs(
            layout: OverlayLayout, compression: SquashfsOptions.Compression, rawMetadata: Bool, levers: [Lever] = [])
        /// The composefs image with fs-verity enabled, mounted with its digest pinned, objects
        /// checked (`verity=require`).
        case composefsVerity
        /// The overlay option's GPT disk (squashfs + dm-verity hash tree) through dm-verity,
        /// objects checked (`verity=require`).
        case verityDisk(compression: SquashfsOptions.Compression, rawMetadata: Bool)
    }

    public var name: String
    public var kind: Kind

    public static let composefs = Arm(name: "composefs", kind: .composefs)
    public static let composefsVerity = Arm(name: "composefs-verity", kind: .composefsVerity)

    /// `overlay-disk-<compression>`: the verity disk of the data-only overlay option.
    public static func disk(_ compression: SquashfsOptions.Compression) -> Arm {
        Arm(
            name: "overlay-disk-\(compression.rawValue)",
            kind: .verityDisk(
                compression: compression == .none ? .gzip : compression, rawMetadata: compression == .none))
    }

    /// Whether the arm verifies everything it reads (and so needs fs-verity objects).
    public var isVerified: Bool {
        switch kind {
        case .composefsVerity, .verityDisk: true
        case .composefs, .squashfs: false
        }
    }

    /// `overlay-<layout>-<compression>`; `none` means metadata (and data) stored raw.
    public static func overlay(_ layout: OverlayLayout, _ compression: SquashfsOptions.Compression) -> Arm {
        Arm(
            name: "overlay-\(layout.rawValue)-\(compression.rawValue)",
            kind: .squashfs(
                layout: layout, compression: compression == .none ? .gzip : compression,
                rawMetadata: compression == .none))
    }

    /// The default arms: composefs, and the overlay option in both layouts with metadata
    /// uncompressed and compressed with `compression`.
    public static func defaults(compression: SquashfsOptions.Compression = .lz4) -> [Arm] {
        [.composefs] + OverlayLayout.allCases.flatMap { [overlay($0, .none), overlay($0, compression)] }
    }

    /// An arm by name: `composefs`, `overlay-<layout>-<compressor>`, optionally followed by
    /// levers (`overlay-data-only-none+loop512`); nil if the name is none of these.
    public static func named(_ name: String) -> Arm? {
        let parts = name.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        let known =
            [composefs, composefsVerity]
            + OverlayLayout.allCases.flatMap { layout in
                SquashfsOptions.Compression.allCases.map { overlay(layout, $0) }
            } + SquashfsOptions.Compression.allCases.map { disk($0) }
        guard var arm = known.first(where: { $0.name == parts[0] }) else { return nil }
        guard parts.count > 1 else { return arm }
        guard case .squashfs(let layout, let compression, let raw, _) = arm.kind else { return nil }
        var levers: [Lever] = []
        for part in parts.dropFirst() {
            guard let lever = Lever(rawValue: part), !levers.contains(lever) else { return nil }
            levers.append(lever)
        }
        arm.name = name
        arm.kind = .squashfs(layout: layout, compression: compression, rawMetadata: raw, levers: levers)
        return arm
    }

    var levers: [Lever] {
        if case .squashfs(_, _, _, let levers) = kind { levers } else { [] }
    }
}

public struct BenchConfiguration: Sendable {
    public var arms: [Arm] = Arm.defaults()
    public var workloads: [Workload] = Workload.defaults
    public var caches: [CacheState] = CacheState.allCases
    public var runs = 5
    /// Printed with the report (`--note`).
    public var note: String?
    /// Images mounted at once by the `density` workload.
    public var density = 50
    public var warmups = 1
    public var randomFiles = 200
    public var stateDirectory = "/run/ovlcfs"
    public init() {}
}
