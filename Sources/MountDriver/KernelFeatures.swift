import Foundation
import LinuxSys

/// Every difference between kernels that changes how an image is mounted, probed in one
/// place (as composefs-rs keeps them in one file): the plan is a function of the request and
/// these facts, so `mount --dry-run` and `status --features` show exactly what decides it.
public struct KernelFeatures: Sendable, Codable, Equatable {
    /// `uname -r`.
    public var release: String
    /// overlayfs takes a detached mount (an `fsmount` descriptor) as a layer (6.15+); before,
    /// the lower filesystem is attached on a staging directory for the overlay mount only.
    public var detachedLayers: Bool
    /// EROFS mounts a regular file (6.12+); before, a composefs image goes on a loop device.
    public var fileBackedEROFS: Bool
    /// overlayfs data-only lower layers, `datadir+` (6.5+); before, only `--layout legacy` works.
    public var dataOnlyLayers: Bool
    /// device-mapper with its control node: dm-verity can map a verity disk.
    public var deviceMapper: Bool
    /// Objects directory → whether its filesystem can enforce fs-verity digests
    /// (overlay `verity=require`).
    public var fsVerity: [String: Bool]

    public init(
        release: String, detachedLayers: Bool, fileBackedEROFS: Bool, dataOnlyLayers: Bool, deviceMapper: Bool,
        fsVerity: [String: Bool]
    ) {
        self.release = release
        self.detachedLayers = detachedLayers
        self.fileBackedEROFS = fileBackedEROFS
        self.dataOnlyLayers = dataOnlyLayers
        self.deviceMapper = deviceMapper
        self.fsVerity = fsVerity
    }

    /// Probes `kernel` (and the filesystems of `objects`).
    public static func probe(_ kernel: any KernelOps, objects: [String]) -> KernelFeatures {
        let release = kernel.release()
        let version = Self.version(release)
        return KernelFeatures(
            release: release, detachedLayers: kernel.acceptsDetachedLayers(),
            fileBackedEROFS: version.map { $0 >= (6, 12) } ?? true,
            dataOnlyLayers: version.map { $0 >= (6, 5) } ?? true,
            deviceMapper: kernel.hasDeviceMapper(),
            fsVerity: Dictionary(objects.map { ($0, kernel.hasFsVerity($0)) }, uniquingKeysWith: { a, _ in a }))
    }

    /// (major, minor) of a release string such as `6.18.0-1-amd64`.
    static func version(_ release: String) -> (Int, Int)? {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
    }

    /// One line per feature: its value and what it changes.
    public struct Effect: Sendable, Codable, Equatable {
        public var feature: String
        public var available: Bool
        public var effect: String
    }

    public var effects: [Effect] {
        var list = [
            Effect(
                feature: "detached layers (6.15+)", available: detachedLayers,
                effect: detachedLayers
                    ? "the lower filesystem stays detached, handed to overlayfs as /proc/self/fd/N"
                    : "the lower filesystem is attached on a private staging directory during the overlay mount"),
            Effect(
                feature: "file-backed EROFS (6.12+)", available: fileBackedEROFS,
                effect: fileBackedEROFS
                    ? "composefs images are mounted straight from the file" : "composefs images go on a loop device"),
            Effect(
                feature: "data-only layers (6.5+)", available: dataOnlyLayers,
                effect: dataOnlyLayers
                    ? "objects stores are datadir+ layers (--layout data-only)" : "only --layout legacy can mount"),
            Effect(
                feature: "device-mapper", available: deviceMapper,
                effect: deviceMapper
                    ? "verity disks are mapped through dm-verity"
                    : "verity disks are verified in userspace before mounting (--verity auto) or refused (require)"),
        ]
        for (directory, capable) in fsVerity.sorted(by: { $0.key < $1.key }) {
            list.append(
                Effect(
                    feature: "fs-verity on \(directory)", available: capable,
                    effect: capable
                        ? "overlay verity=require checks every object's digest (--verity auto/require)"
                        : "object digests are not enforced (--verity auto warns, require refuses)"))
        }
        return list
    }

    public var text: String {
        (["kernel \(release)"] + effects.map { "\($0.available ? "yes" : "no ")  \($0.feature): \($0.effect)" }).joined(
            separator: "\n") + "\n"
    }
}
