import ArgumentParser
import ComposefsDump
import Foundation
import ImageModel
import LinuxSys
import MountDriver
import OverlayTranslation

extension VerityPolicy: ExpressibleByArgument {}

/// Options every mount-related command shares.
struct StateOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Where mount records are kept (default: $OVLCFS_STATE_DIRECTORY or /run/ovlcfs).", valueName: "DIR"))
    var stateDirectory: String = ProcessInfo.processInfo.environment["OVLCFS_STATE_DIRECTORY"] ?? "/run/ovlcfs"
}

struct MountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount an image (overlay option or composefs) with its objects, as mount.composefs does.",
        discussion: """
            A verity disk (ovlcfs build --disk) has its data partition checked against its root \
            hash — by dm-verity where the kernel has device-mapper; here, without it, --verity \
            auto verifies the whole partition in userspace before mounting and warns that later \
            tampering goes unnoticed, and --verity require refuses. \
            A squashfs image goes on a read-only loop device (autoclear); a composefs image is \
            mounted as EROFS straight from the file (loop on kernels before 6.12). That lower \
            filesystem stays detached and becomes the overlay's lowerdir+; the objects \
            directories are data-only layers (--layout data-only, kernel 6.5+) or ordinary lower \
            layers (--layout legacy). Only the overlay appears at MOUNTPOINT, and one unmount \
            (`ovlcfs umount`, or plain umount(8)) releases everything. Needs root.

            With --upperdir and --workdir the overlay is writable: a write copies the file up \
            from its object into UPPER, a delete leaves a whiteout there, renamed directories \
            get redirects; the image and the objects store are never written. \
            Installed as mount.ovlcfs (scripts/install), the same mounts work as \
            `mount -t ovlcfs IMAGE DIR -o objects=/srv/objects[,OPTIONS]` and from /etc/fstab; \
            `mount.ovlcfs --help` lists the mount options.

            --verity auto asks overlayfs to check every object's fs-verity digest when the \
            objects' filesystem can (and says so when it cannot); require refuses to mount \
            without; off never asks.

            Examples:
              ovlcfs mount rootfs.sqfs /mnt/root --objects /srv/objects
              ovlcfs mount rootfs.cfs /mnt/root --objects /srv/objects --verity off
              ovlcfs mount rootfs.raw /mnt/root --objects /srv/objects --root-hash HEX
              ovlcfs mount rootfs.sqfs /mnt/root --objects /srv/objects --upperdir /var/lib/app/upper --workdir /var/lib/app/work
              ovlcfs mount rootfs.cfs /mnt/root --objects /srv/objects --digest $(ovlcfs digest --compact rootfs.cfs)
              ovlcfs mount rootfs.sqfs /mnt/root --objects /srv/objects --dry-run --json   (the plan only)
              ovlcfs umount /mnt/root
            """
    )

    @Argument(help: ArgumentHelp("The image: squashfs (ovlcfs build) or composefs.", valueName: "IMAGE"))
    var image: String

    @Argument(help: ArgumentHelp("An existing directory to mount on.", valueName: "MOUNTPOINT"))
    var mountPoint: String

    @Option(help: ArgumentHelp("An objects directory (repeat for several).", valueName: "OBJECTS"))
    var objects: [String] = []

    @Option(help: "data-only (objects as data-only layers, kernel 6.5+) or legacy.")
    var layout: OverlayLayout = .dataOnly

    @Option(
        help:
            "auto, require or off: dm-verity of verity disks (userspace check without device-mapper) and overlay fs-verity checks of objects."
    )
    var verity: VerityPolicy = .auto

    @Option(
        help: ArgumentHelp(
            "Verity disks: the root hash to trust (default: the one the partition UUIDs spell).", valueName: "HEX"))
    var rootHash: String?

    @Option(
        help: ArgumentHelp(
            "Mount read-write: changes go to this directory (with --workdir on the same filesystem); the image and objects are never written.",
            valueName: "DIR"))
    var upperdir: String?

    @Option(
        help: ArgumentHelp("With --upperdir: overlayfs's work directory (empty, same filesystem).", valueName: "DIR"))
    var workdir: String?

    @Option(
        help: ArgumentHelp(
            "The image file's fs-verity digest (as mount.composefs digest=): checked on the descriptor that is then mounted; a mismatch mounts nothing.",
            valueName: "HEX"))
    var digest: String?

    @Flag(help: "Before mounting, check that every object the image names exists with its size; list the missing ones.")
    var checkObjects = false

    @Option(
        help: ArgumentHelp(
            """
            Logical block size of the loop devices: 512, 1024, 2048 or 4096 (default: 4096 when the image is a \
            whole number of 4 KiB blocks, as ovlcfs writes them; squashfs then caches the device pages \
            it reads only partly instead of reading them again).
            """, valueName: "BYTES"))
    var loopBlockSize: UInt32?

    @Flag(help: "Print the plan — every step with its kernel objects and options — and touch nothing.")
    var dryRun = false

    @Flag(help: "With --dry-run: print the plan as JSON.")
    var json = false

    @OptionGroup var state: StateOptions

    func validate() throws {
        if objects.isEmpty { throw ValidationError("Give at least one --objects directory.") }
        if json && !dryRun { throw ValidationError("--json goes with --dry-run.") }
        if let loopBlockSize, ![512, 1024, 2048, 4096].contains(loopBlockSize) {
            throw ValidationError("--loop-block-size takes 512, 1024, 2048 or 4096, not \(loopBlockSize)")
        }
    }

    /// The image's payloads that no objects directory holds with the right size.
    func missingObjects() throws -> [String] {
        let (model, _) = try loadModel(image, options: DumpOptions(jobs: defaultDumpJobs))
        let stores = try objects.map { try DirectoryHandle(path: $0) }
        var missing: [String] = []
        var seen = Set<[UInt8]>()
        for inode in model.inodes where inode.type == .regular && inode.size > 0 {
            guard let payload = inode.externalObject?.payload?.bytes, seen.insert(payload).inserted else { continue }
            // Present means a regular file of the right size inside a store (no symlinks, no FIFOs).
            let found = stores.contains { $0.regularFileSize(beneath: payload) == inode.size }
            if !found { missing.append(String(decoding: payload, as: UTF8.self)) }
        }
        return missing.sorted()
    }

    func run() throws {
        try reportingErrors {
            if checkObjects {
                let missing = try missingObjects()
                if !missing.isEmpty {
                    for path in missing.prefix(20) { printError("missing object: \(path)") }
                    throw MountDriverError(
                        step: nil,
                        message:
                            "\(missing.count) object(s) the image names are missing or have the wrong size in \(objects.joined(separator: ", "))",
                        hint: "ingest them (ovlcfs build DIR --objects …) or point --objects at the right store")
                }
            }
            let driver = MountDriver(stateDirectory: state.stateDirectory)
            driver.warn = { printError("ovlcfs: \($0)") }
            var rootHashBytes: [UInt8]? = nil
            if let rootHash {
                guard let bytes = Hex.decode(rootHash, exactly: 32) else {
                    throw ValidationError("--root-hash takes 64 hex digits")
                }
                rootHashBytes = bytes
            }
            var request = MountRequest(
                image: image, target: mountPoint, objects: objects, layout: layout, verity: verity,
                rootHash: rootHashBytes)
            request.loopBlockSize = loopBlockSize
            request.upperdir = upperdir
            request.workdir = workdir
            if let digest {
                guard let bytes = Hex.decode(digest, exactly: 32) else {
                    throw ValidationError("--digest takes 64 hex digits (ovlcfs digest IMAGE prints them)")
                }
                request.digest = bytes
            }
            if dryRun {
                let plan = try driver.plan(request)
                let out = BufferedOutput.standardOutput()
                if json {
                    try out.writeJSON(plan)
                } else {
                    try out.write(plan.text)
                }
                try out.flush()
                return
            }
            let record = try driver.mount(request)
            printError(
                "mounted \(image) (\(record.kind.rawValue)\(record.loopDevice.map { " on \($0)" } ?? "")) at \(record.target)"
            )
        }
    }
}

struct UmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Unmount an ovlcfs mount (or all of them) and drop its record.",
        discussion: """
            Examples:
              ovlcfs umount /mnt/root
              ovlcfs umount --all
            """
    )

    @Argument(help: ArgumentHelp("The mount point.", valueName: "MOUNTPOINT"))
    var mountPoint: String?

    @Flag(
        help:
            "Unmount every recorded ovlcfs mount; stale records, and dm-verity mappings left by a killed `ovlcfs mount`, are removed."
    )
    var all = false

    @OptionGroup var state: StateOptions

    func validate() throws {
        if all == (mountPoint != nil) { throw ValidationError("Give MOUNTPOINT or --all.") }
    }

    func run() throws {
        try reportingErrors {
            let driver = MountDriver(stateDirectory: state.stateDirectory)
            if all {
                for target in try driver.unmountAll() { printError("unmounted \(target)") }
            } else {
                try driver.unmount(mountPoint!)
            }
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List ovlcfs mounts and flag stale records.",
        discussion: """
            Examples:
              ovlcfs status
              ovlcfs status --json
              ovlcfs status --features --objects /srv/objects   (what the kernel can do, and what it changes)
            """
    )

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Print what the kernel can do (each probe and what it changes), for the given --objects directories.")
    var features = false

    @Option(help: ArgumentHelp("With --features: objects directories to probe for fs-verity.", valueName: "OBJECTS"))
    var objects: [String] = []

    @OptionGroup var state: StateOptions

    func run() throws {
        try reportingErrors {
            if features {
                let probed = KernelFeatures.probe(LinuxKernelOps(), objects: objects)
                let out = BufferedOutput.standardOutput()
                if json {
                    struct Report: Encodable {
                        var features: KernelFeatures
                        var effects: [KernelFeatures.Effect]
                    }
                    try out.writeJSON(Report(features: probed, effects: probed.effects))
                } else {
                    try out.write(probed.text)
                }
                try out.flush()
                return
            }
            let driver = MountDriver(stateDirectory: state.stateDirectory)
            try driver.pruneUnmountedRecords()
            let statuses = try driver.status()
            for path in driver.garbageRecords() {
                printError("ovlcfs: unreadable mount record \(path) (ovlcfs umount --all removes it)")
            }
            let out = BufferedOutput.standardOutput()
            if json {
                try out.writeJSON(statuses)
            } else if statuses.isEmpty {
                try out.write("no ovlcfs mounts\n")
            } else {
                for status in statuses {
                    let r = status.record
                    try out.write(
                        "\(r.target)\t\(r.kind.rawValue)\t\(r.layout.rawValue)\t\(r.image)\t\(status.mounted ? "mounted" : status.foreign ? "STALE (another mount is there now; ovlcfs umount --all clears the record)" : "STALE (not mounted; ovlcfs umount --all clears it)")\n"
                    )
                }
            }
            try out.flush()
        }
    }
}
