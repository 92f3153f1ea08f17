import DiskImage
import Foundation
import ImageModel
import LinuxSys
import SystemPackage
import Verity

/// Undo actions for the steps that succeeded so far, newest last. On failure they run newest
/// first; on success they are dropped. One mechanism instead of a flag per resource.
final class UndoLedger {
    private var entries: [(what: String, undo: () -> Void)] = []

    /// Records how to undo a step that just succeeded.
    func push(_ what: String, _ undo: @escaping () -> Void) { entries.append((what, undo)) }

    /// Undoes everything recorded, newest first; returns what was undone.
    @discardableResult
    func unwind() -> [String] {
        let done = entries.reversed().map(\.what)
        while let entry = entries.popLast() { entry.undo() }
        return done
    }

    /// Keeps what was done: nothing is undone.
    func commit() { entries.removeAll() }

    var isEmpty: Bool { entries.isEmpty }
}

/// Runs a ``MountPlan`` against the kernel: each step's kernel objects are kept here, each
/// step that succeeds pushes its undo onto the ledger, and a failure unwinds the ledger.
final class MountExecutor {
    let driver: MountDriver
    let plan: MountPlan
    let request: MountRequest
    let ledger = UndoLedger()
    private var loops: [String: any LoopHandle] = [:]
    private var verityName: String?
    private var mapped: String?
    private var verityDeferred = false
    private var lower: (any MountHandle)?
    private var overlay: (any MountHandle)?
    private var record: MountRecord?
    /// The image as the steps read it: through the descriptor whose digest was checked
    /// (`/proc/self/fd/N`), so a file swapped in under the path is never what gets mounted.
    var imagePath: String { request.imageAccess ?? plan.image }

    init(driver: MountDriver, plan: MountPlan, request: MountRequest) {
        self.driver = driver
        self.plan = plan
        self.request = request
    }

    var kernel: any KernelOps { driver.kernel }

    /// Runs every step; on failure undoes what succeeded and rethrows the step's error.
    func run() throws -> MountRecord {
        do {
            for (index, step) in plan.steps.enumerated() {
                try driver.step(step.category) {
                    try driver.injectFault?(index, step)
                    try perform(step)
                }
                if let warning = step.warning { driver.warn("warning: " + warning) }
            }
        } catch {
            ledger.unwind()
            throw error
        }
        ledger.commit()
        // The loop devices now live as long as their mounts (autoclear).
        for loop in loops.values { loop.release() }
        guard var record else { throw MountDriverError(step: .stateWrite, message: "the plan wrote no record") }
        do {
            if let top = try kernel.mountStack(at: plan.target).last {
                record.mountID = top.id
                try driver.writeRecord(record)
            }
        } catch {
            driver.warn("warning: \(plan.target) is mounted, but its mount ID was not recorded: \(error)")
        }
        return record
    }

    private func perform(_ step: MountPlanStep) throws {
        switch step.action {
        case .checkDigest: try checkDigest()
        case .verifyDisk: try verifyDisk(step)
        case .attachLoop: try attachLoop(step)
        case .activateVerity: try activateVerity()
        case .mountLower: try mountLower(step)
        case .deferVerityRemoval: try deferVerityRemoval()
        case .mountOverlay: try mountOverlay(step)
        case .writeRecord: try writeRecord()
        case .attach: try attachOverlay()
        }
    }

    private func checkDigest() throws {
        // Checked by the driver before planning; the image is read through that descriptor.
        guard request.imageAccess != nil else {
            throw MountDriverError(step: .verity, message: "the plan checks a digest that was not checked")
        }
    }

    private func verifyDisk(_ step: MountPlanStep) throws {
        // The partition verified is the one the plan's loop will cover.
        let disk = try VerityDisk.open(imagePath)
        guard disk.data.offset == step.offset, disk.data.size == step.sizeLimit else {
            throw MountDriverError(
                step: .verity,
                message: "\(plan.image) changed since the mount was planned (its data partition moved)")
        }
        try disk.verify(rootHash: request.rootHash)
    }

    private func attachLoop(_ step: MountPlanStep) throws {
        let role = step.loop ?? "image"
        let loop = try kernel.attachLoop(
            file: imagePath, offset: step.offset ?? 0, sizeLimit: step.sizeLimit ?? 0,
            blockSize: step.blockSize ?? 512)
        loops[role] = loop
        ledger.push("detach \(loop.path)") { try? loop.detach() }
    }

    private func activateVerity() throws {
        guard let data = loops["data"], let hash = loops["hash"],
            let rootHash = plan.rootHash.flatMap({ Hex.decode($0) })
        else {
            throw MountDriverError(
                step: .verity, message: "the plan activates dm-verity without its loop devices or root hash")
        }
        let name = "ovlcfs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mapped = try kernel.activateVerity(data: data.path, hash: hash.path, rootHash: rootHash, name: name)
        verityName = name
        ledger.push("remove dm-verity mapping \(name)") { [kernel] in
            guard !self.verityDeferred else { return }
            // Still busy (a failed mount's context not yet released): removed once unused.
            do { try kernel.deactivateVerity(name: name, deferred: false) } catch {
                try? kernel.deactivateVerity(name: name, deferred: true)
            }
        }
    }

    private func mountLower(_ step: MountPlanStep) throws {
        let source = try source(step.source ?? "image")
        do {
            lower = try kernel.mountFilesystem(
                type: step.filesystem ?? "squashfs", source: source, options: [("ro", nil)])
        } catch let error as MountError where error.errno == .notBlockDevice && step.source == "image" {
            // A kernel that cannot mount this filesystem from a file (EROFS without
            // CONFIG_EROFS_FS_BACKED_BY_FILE): the same image on a loop device.
            let loop = try kernel.attachLoop(
                file: imagePath, offset: 0, sizeLimit: 0, blockSize: driver.loopBlockSize(request, size: nil))
            loops["image"] = loop
            ledger.push("detach \(loop.path)") { try? loop.detach() }
            lower = try kernel.mountFilesystem(
                type: step.filesystem ?? "erofs", source: loop.path, options: [("ro", nil)])
        } catch let error as MountError where error.errno == .ioError && step.source == "dm-verity" {
            throw MountDriverError(
                step: .filesystemMount, message: "\(error)",
                hint:
                    "dm-verity refused the data: \(plan.image) changed after it was built, or the root hash is not this disk's"
            )
        }
        ledger.push("drop the detached \(step.filesystem ?? "lower") mount") { self.lower = nil }
    }

    private func deferVerityRemoval() throws {
        guard let verityName else {
            throw MountDriverError(step: .verity, message: "no dm-verity mapping to defer")
        }
        try kernel.deactivateVerity(name: verityName, deferred: true)
        verityDeferred = true
    }

    private func mountOverlay(_ step: MountPlanStep) throws {
        guard let lower else {
            throw MountDriverError(
                step: .overlayMount, message: "the plan mounts the overlay before its lower layer")
        }
        overlay =
            step.staged == true
            ? try driver.mountOverlayThroughStaging(lower: lower, attributes: plan.attributes) {
                self.driver.overlayOptions(self.plan, lower: $0)
            }
            : try kernel.mountFilesystem(
                type: "overlay", source: "ovlcfs", options: driver.overlayOptions(plan, lower: lower.procPath),
                attributes: plan.attributes)
        ledger.push("drop the detached overlay") { self.overlay = nil }
    }

    private func writeRecord() throws {
        let written = MountRecord(
            target: plan.target, image: plan.image, kind: plan.kind, layout: plan.layout, objects: plan.objects,
            loopDevice: (loops["image"] ?? loops["data"])?.path, upperdir: plan.upperdir, workdir: plan.workdir,
            imageIdentity: FileIdentity(path: imagePath),
            loops: loops.values.compactMap { loop in
                loop.sequence.map { AttachedLoop(device: loop.path, sequence: $0) }
            }.sorted { $0.device < $1.device },
            verityDevice: verityName.map { "/dev/mapper/" + $0 },
            overlayVerity: plan.overlayVerity, pid: getpid(), created: Date(), mountID: nil)
        try driver.writeRecord(written)
        record = written
        ledger.push("remove the state record") { [driver, plan] in
            try? FileQueries.remove(driver.recordPath(for: plan.target))
        }
    }

    private func attachOverlay() throws {
        guard let overlay else { throw MountDriverError(step: .attach, message: "no overlay to attach") }
        try overlay.attach(at: plan.target)
    }
    /// The device or file a lower filesystem is mounted from.
    private func source(_ name: String) throws -> String {
        if name == "image" { return imagePath }
        if name == "dm-verity", let mapped { return mapped }
        if name.hasPrefix("loop:"), let loop = loops[String(name.dropFirst(5))] { return loop.path }
        throw MountDriverError(step: .filesystemMount, message: "the plan mounts from \(name), which no step made")
    }
}
