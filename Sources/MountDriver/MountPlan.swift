import DiskImage
import Foundation
import ImageModel
import LinuxSys
import OverlayTranslation

/// Everything mounting one image takes, decided before anything is touched: a value computed
/// from the request and the probed ``KernelFeatures``, printed by `ovlcfs mount --dry-run`
/// and run step by step by the executor, which records an undo action for each step that
/// succeeded.
public struct MountPlan: Sendable, Codable {
    public var image: String
    public var kind: MountedImageKind
    /// The mount point, resolved with `realpath`.
    public var target: String
    public var layout: OverlayLayout
    public var objects: [String]
    /// Whether the overlay checks object digests (`verity=require`).
    public var overlayVerity: Bool
    /// For verity disks: the root hash the data is checked against.
    public var rootHash: String?
    /// The image file's fs-verity digest it must have (then every step reads the image through
    /// the one descriptor that was checked).
    public var digest: String?
    /// A writable overlay's upper and work directories (resolved).
    public var upperdir: String?
    public var workdir: String?
    /// How overlayfs is given them when they were pinned (`/proc/self/fd/N`).
    var upperAccess: String?
    var workAccess: String?
    /// The overlay mount's attributes (read-only unless writable; nosuid, nodev, noexec).
    public var attributes: MountAttributes = [.readOnly]
    public var features: KernelFeatures
    /// Protection that is off, and why (printed as warnings when mounting).
    public var warnings: [String]
    public var steps: [MountPlanStep]

    public var text: String {
        var lines = [
            "mount \(image) (\(kind.rawValue)) at \(target)",
            "  layout \(layout.rawValue), objects \(objects.joined(separator: ", "))"
                + (overlayVerity ? ", verity=require" : "")
                + (upperdir.map { ", writable: upperdir \($0), workdir \(workdir ?? "?")" } ?? ""),
        ]
        for (index, step) in steps.enumerated() {
            lines.append("  \(index + 1). \(step.text)")
            if let warning = step.warning { lines.append("     warning: \(warning)") }
        }
        for warning in warnings { lines.append("  warning: \(warning)") }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One step of a plan, with the kernel objects it makes or uses and their options.
public struct MountPlanStep: Sendable, Codable, Equatable {
    public enum Action: String, Sendable, Codable {
        /// Open the image once and check its fs-verity digest; later steps use that descriptor.
        case checkDigest = "check-digest"
        /// Check the data partition of a verity disk against its root hash in userspace.
        case verifyDisk = "verify-disk"
        /// A read-only autoclear loop device over the image (or a partition of it).
        case attachLoop = "attach-loop"
        /// A dm-verity mapping of the data loop through the hash loop.
        case activateVerity = "activate-verity"
        /// The image's filesystem as a detached mount.
        case mountLower = "mount-lower"
        /// Deferred removal of the dm-verity mapping: it goes with the lower mount.
        case deferVerityRemoval = "defer-verity-removal"
        /// The overlay (detached, or through a staging directory before 6.15).
        case mountOverlay = "mount-overlay"
        /// The state record (`STATE/mounts/HASH.json`).
        case writeRecord = "write-record"
        /// The overlay attached at the mount point.
        case attach
    }

    public var action: Action
    /// attach-loop: which loop (`image`, `data`, `hash`).
    public var loop: String?
    public var offset: UInt64?
    public var sizeLimit: UInt64?
    public var blockSize: UInt32?
    /// mount-lower: the filesystem type and its source (`image`, `loop:ROLE`, `dm-verity`).
    public var filesystem: String?
    public var source: String?
    /// mount-overlay: its options, the lower layer written as `LOWER`.
    public var options: [String]?
    /// mount-overlay: through a staging directory (kernels before 6.15).
    public var staged: Bool?
    /// Printed as a warning once the step has succeeded (protection that is off, and why).
    public var warning: String?

    /// The error category a failure of this step reports.
    public var category: MountStep {
        switch action {
        case .checkDigest, .verifyDisk, .activateVerity, .deferVerityRemoval: .verity
        case .attachLoop: .loopAttach
        case .mountLower: .filesystemMount
        case .mountOverlay: .overlayMount
        case .writeRecord: .stateWrite
        case .attach: .attach
        }
    }

    public var text: String {
        switch action {
        case .checkDigest:
            "open the image once; its fs-verity digest must be the one given (every later step uses that descriptor)"
        case .verifyDisk: "verify the data partition against the root hash (userspace: no device-mapper)"
        case .attachLoop:
            "loop device (\(loop ?? "?")): offset \(offset ?? 0), size \(sizeLimit.map { $0 == 0 ? "to the end" : "\($0)" } ?? "?"), \(blockSize ?? 512)-byte blocks, read-only, autoclear"
        case .activateVerity: "dm-verity mapping of loop:data through loop:hash"
        case .mountLower:
            "\(filesystem ?? "?") from \(source ?? "?"), read-only, detached"
                + (source == "image" ? " (on a loop device if this kernel cannot mount the file)" : "")
        case .deferVerityRemoval: "dm-verity mapping removed with the lower mount (deferred)"
        case .mountOverlay:
            "overlay \((options ?? []).joined(separator: ","))\(staged == true ? " (lower attached on a staging directory meanwhile)" : "")"
        case .writeRecord: "state record"
        case .attach: "attach the overlay at the mount point"
        }
    }
}

extension MountDriver {
    /// The plan for `request`, from the request and the kernel's features; reads the image's
    /// header (and GPT) but changes nothing. Refusals (a policy the kernel cannot meet, a
    /// missing mount point or objects directory) are thrown here, before any step.
    public func plan(_ request: MountRequest) throws -> MountPlan {
        let target = try Self.resolve(request.target)
        guard (try? FileStatus(path: target))?.isDirectory == true else {
            throw MountDriverError(step: nil, message: "mount point \(target) is not a directory")
        }
        try refuseIfMounted(target)
        guard !request.objects.isEmpty else {
            throw MountDriverError(step: nil, message: "at least one objects directory is needed")
        }
        for objects in request.objects where (try? FileStatus(path: objects))?.isDirectory != true {
            throw MountDriverError(step: nil, message: "objects directory \(objects) does not exist")
        }
        // Absolute paths in the plan and the record: `gc` and `status` run from anywhere.
        let objects = request.objects.map { (try? FileQueries.realPath($0)) ?? $0 }
        let image = (try? FileQueries.realPath(request.image)) ?? request.image
        let kind = try Self.kind(of: request.imageAccess ?? request.image)
        let features = KernelFeatures.probe(kernel, objects: objects)
        var plan = MountPlan(
            image: image, kind: kind, target: target, layout: request.layout, objects: objects,
            overlayVerity: false, rootHash: nil, digest: request.digest.map { Hex.encode($0) }, features: features,
            warnings: [], steps: [])
        if request.digest != nil { plan.steps.append(MountPlanStep(action: .checkDigest)) }
        try planUpper(request, target: target, plan: &plan)
        var lower: String
        switch kind {
        case .squashfs:
            plan.steps.append(loopStep("image", offset: 0, size: 0, blockSize: loopBlockSize(request, size: nil)))
            lower = "loop:image"
        case .composefs:
            if features.fileBackedEROFS {
                lower = "image"
            } else {
                plan.steps.append(loopStep("image", offset: 0, size: 0, blockSize: loopBlockSize(request, size: nil)))
                lower = "loop:image"
            }
        case .verityDisk:
            lower = try planVerityDisk(request, features: features, plan: &plan)
        }
        // After the image's own checks, so a verity disk's refusal names device-mapper first.
        plan.overlayVerity = try overlayVerity(request, features: features, warnings: &plan.warnings)
        if request.layout == .dataOnly && !features.dataOnlyLayers {
            plan.warnings.append(
                "kernel \(features.release) predates overlayfs data-only layers (6.5+): if the overlay mount fails, use --layout legacy"
            )
        }
        plan.steps.append(
            MountPlanStep(action: .mountLower, filesystem: kind == .composefs ? "erofs" : "squashfs", source: lower))
        if lower == "dm-verity" { plan.steps.append(MountPlanStep(action: .deferVerityRemoval)) }
        plan.steps.append(
            MountPlanStep(
                action: .mountOverlay,
                options: overlayOptions(plan, lower: "LOWER").map { key, value in value.map { "\(key)=\($0)" } ?? key },
                staged: !features.detachedLayers))
        plan.steps += [MountPlanStep(action: .writeRecord), MountPlanStep(action: .attach)]
        return plan
    }

    /// The steps of a verity disk: dm-verity over two loops where device-mapper exists and the
    /// policy wants it, else a userspace check (auto) or nothing (off) before one loop over the
    /// data partition; `require` without device-mapper is refused. Returns the lower's source.
    func planVerityDisk(_ request: MountRequest, features: KernelFeatures, plan: inout MountPlan) throws -> String {
        let disk = try step(.verity) { try VerityDisk.open(request.imageAccess ?? request.image) }
        let rootHash = request.rootHash ?? disk.rootHash
        plan.rootHash = Hex.encode(rootHash)
        if request.verity != .off && features.deviceMapper {
            plan.steps.append(
                loopStep(
                    "data", offset: disk.data.offset, size: disk.data.size,
                    blockSize: loopBlockSize(request, size: disk.data.size)))
            plan.steps.append(
                loopStep(
                    "hash", offset: disk.hash.offset, size: disk.hash.size,
                    blockSize: loopBlockSize(request, size: disk.hash.size)))
            plan.steps.append(MountPlanStep(action: .activateVerity))
            return "dm-verity"
        } else {
            var warning: String?
            switch request.verity {
            case .off:
                warning = "--verity off: the data partition of \(request.image) is mounted unchecked"
            case .require:
                throw MountDriverError(
                    step: .verity,
                    message:
                        "--verity require: the kernel has no device-mapper (no /dev/mapper/control; CONFIG_BLK_DEV_DM and the verity target are needed), so dm-verity cannot be activated",
                    hint: "--verity auto verifies the image in userspace before mounting")
            case .auto:
                plan.steps.append(
                    MountPlanStep(
                        action: .verifyDisk, offset: disk.data.offset, sizeLimit: disk.data.size,
                        warning:
                            "no dm-verity (the kernel has no device-mapper): \(request.image) was verified against root hash \(Hex.encode(rootHash)) before mounting, but changes made while it is mounted are not detected"
                    ))
            }
            var dataLoop = loopStep(
                "data", offset: disk.data.offset, size: disk.data.size,
                blockSize: loopBlockSize(request, size: disk.data.size))
            dataLoop.warning = warning
            plan.steps.append(dataLoop)
            return "loop:data"
        }
    }

    /// Refuses a mount point that is mounted or has an ovlcfs record (checked again under the
    /// mount point's lock when mounting).
    func refuseIfMounted(_ target: String) throws {
        if try kernel.isMounted(target) || FileQueries.exists(recordPath(for: target)) {
            throw MountDriverError(
                step: nil, message: "\(target) is already an ovlcfs mount point", hint: "ovlcfs umount \(target)")
        }
    }

    func loopStep(_ role: String, offset: UInt64, size: UInt64, blockSize: UInt32) -> MountPlanStep {
        MountPlanStep(action: .attachLoop, loop: role, offset: offset, sizeLimit: size, blockSize: blockSize)
    }

    /// A writable mount's checks: upper and work directories that exist, on one filesystem,
    /// apart from each other, the mount point and the objects (the image and the store are
    /// never written: copy-up reads an object and writes the upper directory).
    func planUpper(_ request: MountRequest, target: String, plan: inout MountPlan) throws {
        plan.attributes = request.attributes.union(request.readOnly || request.upperdir == nil ? [.readOnly] : [])
        guard request.upperdir != nil || request.workdir != nil else { return }
        guard let upper = request.upperdir, let work = request.workdir else {
            throw MountDriverError(step: nil, message: "a writable mount needs both upperdir and workdir")
        }
        var resolved: [String] = []
        // Checked through the pinned descriptors where the driver opened them.
        for (name, path) in [("upperdir", request.upperAccess ?? upper), ("workdir", request.workAccess ?? work)] {
            guard (try? FileStatus(following: path))?.isDirectory == true else {
                throw MountDriverError(step: nil, message: "\(name) \(path) is not a directory")
            }
            resolved.append(try Self.resolve(path))
        }
        let (upperPath, workPath) = (resolved[0], resolved[1])
        func inside(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b == "/" ? "/" : b + "/") }
        guard
            try FileStatus(following: request.upperAccess ?? upperPath).device
                == FileStatus(following: request.workAccess ?? workPath).device
        else {
            throw MountDriverError(
                step: nil, message: "workdir \(workPath) is on another filesystem than upperdir \(upperPath)",
                hint: "overlayfs renames from workdir into upperdir: put both on one filesystem")
        }
        guard !inside(upperPath, workPath) && !inside(workPath, upperPath) else {
            throw MountDriverError(
                step: nil, message: "upperdir and workdir must be separate directories, neither inside the other")
        }
        for (name, path) in [("upperdir", upperPath), ("workdir", workPath)] {
            if inside(path, target) || inside(target, path) {
                throw MountDriverError(step: nil, message: "\(name) \(path) and the mount point \(target) overlap")
            }
            for objects in request.objects {
                let store = (try? Self.resolve(objects)) ?? objects
                if inside(path, store) || inside(store, path) {
                    throw MountDriverError(
                        step: nil, message: "\(name) \(path) and the objects directory \(store) overlap",
                        hint: "the objects store must never be written through the overlay")
                }
            }
        }
        // Two mounts on one upper directory corrupt each other (overlayfs only warns).
        for other in records() where other.upperdir == upperPath || other.workdir == workPath {
            if try !isGone(other) {
                throw MountDriverError(
                    step: nil, message: "the ovlcfs mount at \(other.target) already uses \(upperPath) or \(workPath)")
            }
        }
        plan.upperdir = upperPath
        plan.workdir = workPath
        plan.upperAccess = request.upperAccess
        plan.workAccess = request.workAccess
    }

    /// The overlay's options with the image's filesystem reached at `lower`.
    func overlayOptions(_ plan: MountPlan, lower: String) -> [(String, String?)] {
        var options: [(String, String?)] = [("lowerdir+", lower)]
        for objects in plan.objects {
            options.append((plan.layout == .dataOnly ? "datadir+" : "lowerdir+", objects))
        }
        if let upper = plan.upperAccess ?? plan.upperdir, let work = plan.workAccess ?? plan.workdir {
            // Writable: renamed directories get redirects in the upper layer.
            options += [("upperdir", upper), ("workdir", work), ("metacopy", "on"), ("redirect_dir", "on")]
        } else {
            options += [("metacopy", "on"), ("redirect_dir", "follow"), ("ro", nil)]
        }
        if plan.overlayVerity { options.append(("verity", "require")) }
        return options
    }

    /// Whether to ask overlayfs for `verity=require`, by policy and what the objects'
    /// filesystems can do.
    func overlayVerity(_ request: MountRequest, features: KernelFeatures, warnings: inout [String]) throws -> Bool {
        let capable = request.objects.allSatisfy { features.fsVerity[$0] == true }
        switch request.verity {
        case .off:
            return false
        case .require:
            guard capable else {
                throw MountDriverError(
                    step: nil,
                    message:
                        "--verity require: the kernel or the objects' filesystem has no fs-verity (CONFIG_FS_VERITY and an ext4/f2fs made with -O verity are needed), so object digests cannot be enforced"
                )
            }
            return true
        case .auto:
            if !capable {
                warnings.append(
                    "overlay verity is off — the objects' filesystem has no fs-verity; object contents are not checked against their digests"
                )
            }
            return capable
        }
    }

    /// The loop block size for `request` over `size` bytes of its image (nil: the whole file).
    func loopBlockSize(_ request: MountRequest, size: UInt64?) -> UInt32 {
        if let chosen = request.loopBlockSize { return chosen }
        guard let bytes = size ?? (try? FileStatus(path: request.imageAccess ?? request.image))?.size, bytes > 0 else {
            return 512
        }
        return bytes % 4096 == 0 ? 4096 : 512
    }
}
