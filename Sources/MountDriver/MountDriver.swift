import Cryptsetup
import DiskImage
import Foundation
import ImageModel
import LinuxSys
import ObjectStore
import OverlayTranslation
import SystemPackage
import Verity

/// Mounts images as composefs does, through the new mount API, and undoes it.
///
/// The lower filesystem (squashfs on a loop device, or EROFS straight from the file) is
/// created as a *detached* mount and handed to overlayfs as `lowerdir+=/proc/self/fd/N`; only
/// the overlay is attached in the tree. So the one thing to undo afterwards is that overlay
/// mount: the lower mount lives exactly as long as the overlay, and the loop device (autoclear)
/// as long as the lower mount. A failure at any step drops what was made so far; a killed
/// process leaves nothing but, at worst, a stale state record that `status` flags and
/// `umount --all` clears.
public final class MountDriver {
    let kernel: any KernelOps
    public let stateDirectory: String
    /// Called with warnings (protection that is off, and why).
    public var warn: (String) -> Void = { _ in }
    /// Test seam: called before each step of a plan runs (its index and the step); throwing
    /// fails that step, so tests can fail every step of every plan kind and check the undo.
    public var injectFault: ((Int, MountPlanStep) throws -> Void)?

    public init(kernel: any KernelOps = LinuxKernelOps(), stateDirectory: String = "/run/ovlcfs") {
        self.kernel = kernel
        self.stateDirectory = stateDirectory
    }

    var recordsDirectory: String { stateDirectory + "/mounts" }

    /// A record's file: a fixed-length name from the SHA-256 of the mount point, so any
    /// mount point, however long or strange, has one.
    func recordPath(for target: String) -> String {
        recordsDirectory + "/" + Hex.encode(sha256(Array(target.utf8)).prefix(16)) + ".json"
    }

    /// Holds the lock of one mount point: check-and-mount and unmount of a target run one at a
    /// time across processes.
    func lock(_ target: String, wait: Bool = true) throws -> FileLock {
        let directory = stateDirectory + "/locks"
        do {
            try FileQueries.createDirectories(directory)
            return try FileLock(
                path: directory + "/"
                    + recordPath(for: target).split(separator: "/").last!.replacingOccurrences(
                        of: ".json", with: ".lock"), wait: wait)
        } catch {
            throw MountDriverError(step: .stateWrite, message: "\(error)")
        }
    }

    /// The mount point as the kernel names it: resolved once with `realpath`, so a target
    /// reached through a symlink is the path mountinfo shows.
    static func resolve(_ target: String) throws -> String {
        do { return try FileQueries.realPath(target) } catch {
            throw MountDriverError(step: nil, message: "mount point \(target): \(error)")
        }
    }

    /// Mounts `request.image` at `request.target`: plans (refusing what cannot be done),
    /// then, holding the mount point's lock, runs the plan; a failure at any step undoes every
    /// step before it.
    @discardableResult
    public func mount(_ request: MountRequest) throws -> MountRecord {
        // Planned under the mount point's lock: its check that nothing is mounted there holds.
        let target = try Self.resolve(request.target)
        let held = try lock(target)
        defer { withExtendedLifetime(held) {} }
        // A record whose mount is gone is what a plain umount(8) leaves.
        if let stale = recordFiles().records.first(where: { $0.record.target == target }), try isGone(stale.record) {
            try? FileQueries.remove(stale.path)
        }
        // Each ovlcfs objects store is held shared until the record is written, so a gc of it
        // (exclusive) either sees this mount's record or runs before the mount starts.
        let storeLocks = try request.objects.compactMap { try lockStore($0) }
        defer { withExtendedLifetime(storeLocks) {} }
        // A pinned digest is checked first, on a descriptor that everything after — the plan's
        // reads of the image included — goes through.
        var request = request
        let pinned = try request.digest.map { try openPinned(request.image, digest: $0) }
        if let pinned { request.imageAccess = "/proc/self/fd/\(pinned.descriptor.rawValue)" }
        // Upper and work directories are opened once, with no symlink on the way, and checked
        // and given to overlayfs through those descriptors: nothing swapped in meanwhile counts.
        var directories: [DirectoryHandle] = []
        for (name, path) in [("upperdir", request.upperdir), ("workdir", request.workdir)] {
            guard let path else { continue }
            do {
                let handle = try DirectoryHandle.openPinned(path: try Self.resolve(path))
                directories.append(handle)
                if name == "upperdir" {
                    request.upperAccess = handle.procPath
                } else {
                    request.workAccess = handle.procPath
                }
            } catch let error as MountDriverError {
                throw error
            } catch {
                throw MountDriverError(step: nil, message: "\(name) \(path): \(error)")
            }
        }
        defer { withExtendedLifetime(directories) {} }
        let plan = try plan(request)
        for warning in plan.warnings { warn("warning: " + warning) }
        return try withExtendedLifetime(pinned) {
            try MountExecutor(driver: self, plan: plan, request: request).run()
        }
    }

    /// The overlay mount with the lower filesystem attached at a staging directory under the
    /// state directory for the duration of the call (the overlay holds a private clone of it);
    /// `options` gives the overlay's options for the staging path.
    func mountOverlayThroughStaging(
        lower: any MountHandle, attributes: MountAttributes, options: (String) -> [(String, String?)]
    ) throws -> any MountHandle {
        let staging = stateDirectory + "/staging/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileQueries.removeEmptyDirectory(staging) }
        try lower.attach(at: staging)
        // Lazily: this process still holds the mount's fd, which makes a plain umount EBUSY.
        defer { try? kernel.detachMount(staging) }
        return try kernel.mountFilesystem(
            type: "overlay", source: "ovlcfs", options: options(staging), attributes: attributes)
    }

    func step<T>(_ step: MountStep, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as MountDriverError {
            throw error
        } catch {
            throw MountDriverError(step: step, message: "\(error)", hint: hint(for: step, error), cause: error)
        }
    }

    /// A hint from the step and the kernel's errno: only what that errno means at that step.
    func hint(for step: MountStep, _ error: any Error) -> String? {
        if let error = error as? VeritySetup.Error { return error.hint }
        guard let errno = (error as? MountError)?.errno ?? (error as? IOError)?.errno else { return nil }
        if errno == .notPermitted || errno == .permissionDenied { return "mounting needs root (CAP_SYS_ADMIN)" }
        switch (step, errno) {
        case (.loopAttach, .noSuchFileOrDirectory), (.loopAttach, .noSuchAddressOrDevice):
            return "is the loop module loaded? (modprobe loop)"
        case (.filesystemMount, .invalidArgument), (.filesystemMount, .ioError):
            return "the image is not one this kernel can mount (corrupt or truncated? ovlcfs inspect IMAGE reads it)"
        case (.filesystemMount, .operationNotSupportedByDevice):
            return "the kernel lacks the filesystem (modprobe squashfs / erofs)"
        case (.overlayMount, .invalidArgument):
            return "a kernel without data-only lower layers (before 6.5) needs --layout legacy"
        case (.overlayMount, .noSuchFileOrDirectory):
            return "a layer directory is missing: check the --objects paths"
        case (_, .noSpace):
            return "the filesystem holding \(stateDirectory) or the image is full"
        default:
            return nil
        }
    }

    /// Whether `target` is a mount point now.
    public func isMountPoint(_ target: String) throws -> Bool {
        try kernel.isMounted((try? Self.resolve(target)) ?? target)
    }

    /// The image kind, from its magic. Only regular files are images (a FIFO or a device is
    /// refused without reading it).
    public static func kind(of image: String) throws -> MountedImageKind {
        let kind: ImageKind
        do {
            let input = try InputFile(path: image)
            guard input.isRegular else { throw IOError("mount", path: image, detail: "not a regular file") }
            kind = ImageKind.detect(prefix: try input.prefix(ImageKind.prefixLength))
        } catch {
            throw MountDriverError(step: nil, message: "\(error)")
        }
        switch kind {
        case .squashfs: return .squashfs
        case .composefs: return .composefs
        case .verityDisk: return .verityDisk
        case .dump:
            throw MountDriverError(
                step: nil, message: "\(image) is neither a squashfs image, a composefs image nor a verity disk")
        }
    }

    /// Unmounts an ovlcfs mount point and drops its record. The lower mount and the loop
    /// device go with the overlay. Only a mount this driver recorded is unmounted: nothing
    /// without a record, and not a mount that has replaced the recorded one (its mount ID,
    /// type or source differ) — a stale record is then dropped and the mount left alone.
    public func unmount(_ target: String) throws {
        let target = (try? Self.resolve(target)) ?? URL(fileURLWithPath: target).standardizedFileURL.path
        let held = try lock(target)
        defer { withExtendedLifetime(held) {} }
        let entry = recordFiles().records.first { $0.record.target == target }
        let stack = try kernel.mountStack(at: target)
        guard let entry else {
            if !stack.isEmpty {
                throw MountDriverError(
                    step: nil,
                    message:
                        "\(target) is mounted, but not by ovlcfs (no record in \(recordsDirectory)); ovlcfs unmounts only its own mounts",
                    hint: "umount(8) it yourself if that is what you want")
            }
            throw MountDriverError(step: nil, message: "\(target) is not an ovlcfs mount point")
        }
        if let top = stack.last {
            guard let mine = stack.lastIndex(where: { entry.record.describes($0) }) else {
                try FileQueries.remove(entry.path)
                throw MountDriverError(
                    step: nil,
                    message:
                        "the mount at \(target) (\(top.type) from \(top.source), mount ID \(top.id)) is not the one ovlcfs made; its stale record was dropped and the mount left alone"
                )
            }
            guard mine == stack.count - 1 else {
                throw MountDriverError(
                    step: nil,
                    message:
                        "something is mounted over the ovlcfs mount at \(target) (\(top.type) from \(top.source), mount ID \(top.id))",
                    hint: "unmount that first; the ovlcfs record is kept")
            }
            do { try unmountRetryingBusy(target, mountID: stack[mine].id) } catch {
                let errno = (error as? MountError)?.errno
                throw MountDriverError(
                    step: nil, message: "\(error)",
                    hint: errno == .resourceBusy
                        ? "something still uses \(target) (fuser -m \(target))"
                        : errno == .staleNFSFileHandle
                            ? "the mount at \(target) changed while it was being unmounted; nothing was unmounted" : nil
                )
            }
            waitForLoops(entry.record.loops ?? [])
        }
        try FileQueries.remove(entry.path)
    }

    /// Waits up to 2 s for the mount's loop devices to detach. Autoclear detaches a device
    /// when its last opener closes it, and after an unmount that may be a moment later
    /// (udev probes a new device and holds it open meanwhile); `umount` returns once nothing
    /// it attached is left, as far as that is up to the kernel.
    func waitForLoops(_ loops: [AttachedLoop]) {
        for _ in 0..<40 {
            guard loops.contains(where: { kernel.isLoopAttached($0.device, sequence: $0.sequence) }) else { return }
            usleep(50_000)
        }
    }

    /// Unmounts, retrying for up to 2 s while the mount is busy: a process being started
    /// elsewhere holds copies of descriptors for a moment, which makes an idle mount EBUSY.
    func unmountRetryingBusy(_ target: String, mountID: Int) throws {
        var attempts = 0
        while true {
            do {
                return try kernel.unmount(target, mountID: mountID)
            } catch let error as MountError where error.errno == .resourceBusy && attempts < 40 {
                attempts += 1
                usleep(50_000)
            }
        }
    }

    /// Unmounts every recorded mount (stale records are just removed). Returns the targets.
    @discardableResult
    public func unmountAll() throws -> [String] {
        var done: [String] = []
        var firstError: (any Error)? = nil
        for path in garbageRecords() {
            do { try FileQueries.remove(path) } catch { if firstError == nil { firstError = error } }
        }
        for record in records().reversed() {
            do {
                try unmount(record.target)
                done.append(record.target)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        // A kill between dm-verity activation and the squashfs mount orphans a mapping
        // (ovlcfs-PID-N) whose process is gone: remove it, deferred, so one in use stays.
        for name in kernel.verityMappings() where name.hasPrefix("ovlcfs-") {
            let pid = name.split(separator: "-").dropFirst().first.flatMap { Int32($0) }
            guard let pid, pid != getpid(), !FileQueries.exists("/proc/\(pid)") else { continue }
            try? kernel.deactivateVerity(name: name, deferred: true)
        }
        if let firstError { throw firstError }
        return done
    }
}
