import DiskImage
import Foundation
import LinuxSys
import MountDriver
import OverlayTranslation
import SystemPackage
import TestSupport
import Testing

@Suite("Mount driver (recorded kernel, no root needed)")
struct MountDriverTests {
    /// A squashfs-looking image (`bytes` long), a mount point and objects in a temporary directory.
    func fixture(bytes: Int = 4096) throws -> (TemporaryDirectory, String, String, String) {
        let dir = try TemporaryDirectory()
        let image = dir.path("i.sqfs")
        _ = FileManager.default.createFile(
            atPath: image, contents: Data([0x68, 0x73, 0x71, 0x73] + [UInt8](repeating: 0, count: bytes - 4)))
        try FileManager.default.createDirectory(atPath: dir.path("mnt"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        return (dir, image, dir.path("mnt"), dir.path("objects"))
    }

    @Test("the exact sequence of kernel calls for a squashfs image, and the one call to undo it")
    func sequence() throws {
        let (dir, image, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        let record = try driver.mount(MountRequest(image: image, target: mnt, objects: [objects], verity: .off))
        #expect(
            kernel.calls == [
                "loop \(image) bs=4096",
                "squashfs /dev/loop7 ro",
                "overlay ovlcfs lowerdir+=/proc/self/fd/12,datadir+=\(objects),metacopy=on,redirect_dir=follow,ro",
                "attach /proc/self/fd/13 at \(mnt)",
                "release /dev/loop7",
            ])
        #expect(record.loopDevice == "/dev/loop7")
        #expect(record.loops == [AttachedLoop(device: "/dev/loop7", sequence: 42)])
        #expect(try driver.status().map(\.mounted) == [true])
        // The loop device outlives the unmount for two looks (udev has it open): umount waits.
        kernel.loopLingers = 2
        try driver.unmount(mnt)
        #expect(kernel.calls.last == "umount \(mnt)")
        #expect(kernel.loopChecks == Array(repeating: "/dev/loop7 #42", count: 3))
        #expect(driver.records().isEmpty)
    }

    @Test("writable: upperdir and workdir reach the overlay with redirect_dir=on, mounted read-write; overlaps refused")
    func writable() throws {
        let (dir, image, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        for name in ["upper", "work", "objects/inside"] {
            try FileManager.default.createDirectory(atPath: dir.path(name), withIntermediateDirectories: true)
        }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        var request = MountRequest(image: image, target: mnt, objects: [objects], verity: .off)
        request.upperdir = dir.path("upper")
        request.workdir = dir.path("work")
        let record = try driver.mount(request)
        let overlay = try #require(kernel.calls.first { $0.hasPrefix("overlay ") })
        #expect(overlay.contains(",upperdir=") && overlay.contains(",workdir=") && overlay.contains("redirect_dir=on"))
        #expect(!overlay.contains(",ro") && overlay.hasSuffix(" attributes=0"), "\(overlay)")
        #expect(record.upperdir != nil && record.workdir != nil)
        try driver.unmount(mnt)
        for (upper, work, expected) in [
            (dir.path("objects/inside"), dir.path("work"), "overlap"),
            (dir.path("upper"), dir.path("upper"), "separate"),
            (mnt, dir.path("work"), "overlap"),
        ] {
            request.upperdir = upper
            request.workdir = work
            let error = try #require(throws: MountDriverError.self) { try driver.mount(request) }
            #expect("\(error)".contains(expected), "\(error)")
        }
        request.workdir = nil
        #expect(throws: MountDriverError.self) { try driver.mount(request) }
    }

    @Test("legacy layout stacks the objects as an ordinary lower layer; verity=require when the objects can verify")
    func legacyAndVerity() throws {
        let (dir, image, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        kernel.verity = true
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        try driver.mount(MountRequest(image: image, target: mnt, objects: [objects], layout: .legacy, verity: .auto))
        #expect(
            kernel.calls[2]
                == "overlay ovlcfs lowerdir+=/proc/self/fd/12,lowerdir+=\(objects),metacopy=on,redirect_dir=follow,ro,verity=require"
        )
    }

    @Test("verity require without fs-verity fails before touching anything; auto warns")
    func verityPolicies() throws {
        let (dir, image, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        let error = try #require(throws: MountDriverError.self) {
            try driver.mount(MountRequest(image: image, target: mnt, objects: [objects], verity: .require))
        }
        #expect(error.description.contains("fs-verity"))
        #expect(kernel.calls.isEmpty)
        nonisolated(unsafe) var warnings: [String] = []
        driver.warn = { warnings.append($0) }
        try driver.mount(MountRequest(image: image, target: mnt, objects: [objects], verity: .auto))
        #expect(warnings.count == 1 && warnings[0].contains("verity is off"))
    }

    @Test(
        "a failure at each step undoes every step before it and names the step",
        arguments: MountStep.allCases.filter { $0 != .verity })
    func faultInjection(step: MountStep) throws {
        let (dir, image, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        kernel.failAt = step
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        if step == .stateWrite {
            // Make the state directory unwritable: a file where the directory should be.
            _ = FileManager.default.createFile(atPath: dir.path("state"), contents: Data())
        }
        let error = try #require(throws: MountDriverError.self) {
            try driver.mount(MountRequest(image: image, target: mnt, objects: [objects], verity: .off))
        }
        #expect(error.step == step, "\(error)")
        #expect(error.description.hasPrefix("\(step.rawValue) failed: "))
        #expect(kernel.liveLoops == 0, "loop device left attached after \(step)")
        #expect(kernel.liveMounts == 0, "mount left alive after \(step)")
        #expect(kernel.mounted.isEmpty)
        #expect(driver.records().isEmpty)
    }

    @Test("refusals before any kernel call", arguments: ["not-an-image", "no-mountpoint", "no-objects", "twice"])
    func refusals(kind: String) throws {
        let (dir, image, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        var request = MountRequest(image: image, target: mnt, objects: [objects], verity: .off)
        switch kind {
        case "not-an-image": request.image = objects + "/../state-missing"
        case "no-mountpoint": request.target = dir.path("nowhere")
        case "no-objects": request.objects = [dir.path("nothing")]
        default: try driver.mount(request)
        }
        let before = kernel.calls.count
        #expect(throws: MountDriverError.self) { try driver.mount(request) }
        #expect(kernel.calls.count == before)
    }

    @Test(
        "with device-mapper a verity disk is mapped through its hash tree; the mapping goes with the mount, or at once on failure"
    )
    func dmVeritySequence() throws {
        let (dir, _, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        _ = FileManager.default.createFile(
            atPath: dir.path("data"), contents: Data((0..<(256 << 10)).map { UInt8(truncatingIfNeeded: $0 * 7) }))
        let disk = try VerityDisk.build(dataImage: dir.path("data"), destination: dir.path("disk.raw"))
        let kernel = RecordingKernel()
        kernel.deviceMapper = true
        kernel.verity = true
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        let record = try driver.mount(
            MountRequest(image: dir.path("disk.raw"), target: mnt, objects: [objects], verity: .require))
        let mapped = try #require(record.verityDevice)
        #expect(
            kernel.calls == [
                "loop \(dir.path("disk.raw")) bs=4096",
                "loop \(dir.path("disk.raw")) bs=4096",
                "verity /dev/loop7 /dev/loop7 \(disk.rootHashHex)",
                "squashfs \(mapped) ro",
                "deferred-remove",
                "overlay ovlcfs lowerdir+=/proc/self/fd/14,datadir+=\(objects),metacopy=on,redirect_dir=follow,ro,verity=require",
                "attach /proc/self/fd/16 at \(mnt)",
                "release /dev/loop7",
                "release /dev/loop7",
            ])
        #expect(kernel.activeVerity.isEmpty)

        // A failure after activation removes the mapping at once and detaches both loops.
        let failing = RecordingKernel()
        failing.deviceMapper = true
        failing.failAt = .filesystemMount
        let other = MountDriver(kernel: failing, stateDirectory: dir.path("state2"))
        let error = try #require(throws: MountDriverError.self) {
            try other.mount(MountRequest(image: dir.path("disk.raw"), target: mnt, objects: [objects], verity: .auto))
        }
        #expect(error.step == .filesystemMount)
        #expect(failing.calls.suffix(3) == ["remove", "detach /dev/loop7", "detach /dev/loop7"])
        #expect(failing.activeVerity.isEmpty && failing.liveLoops == 0)

        // --verity off never maps: one loop over the data partition.
        let plain = RecordingKernel()
        plain.deviceMapper = true
        let third = MountDriver(kernel: plain, stateDirectory: dir.path("state3"))
        let unchecked = try third.mount(
            MountRequest(image: dir.path("disk.raw"), target: dir.path("objects"), objects: [objects], verity: .off))
        #expect(unchecked.verityDevice == nil)
        #expect(!plain.calls.contains { $0.hasPrefix("verity") })
    }

    @Test(
        "loop block size: 4096 for a whole number of 4 KiB blocks, else 512; the request can choose",
        arguments: [(4096, nil, 4096), (8192, nil, 4096), (96, nil, 512), (4100, nil, 512), (8192, 512, 512)]
            as [(Int, UInt32?, UInt32)])
    func loopBlockSize(bytes: Int, requested: UInt32?, expected: UInt32) throws {
        let (dir, image, mnt, objects) = try fixture(bytes: bytes)
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        var request = MountRequest(image: image, target: mnt, objects: [objects], verity: .off)
        request.loopBlockSize = requested
        _ = try driver.mount(request)
        defer { _ = try? driver.unmountAll() }
        #expect(kernel.calls.first == "loop \(image) bs=\(expected)")
    }

    @Test("before 6.15 the lower filesystem is attached on a staging directory for the overlay mount only")
    func stagingBefore615() throws {
        let (dir, image, mnt, objects) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        kernel.detachedLayers = false
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        try driver.mount(MountRequest(image: image, target: mnt, objects: [objects], verity: .off))
        let staging = try #require(kernel.calls[2].split(separator: " ").last.map(String.init))
        #expect(staging.hasPrefix(dir.path("state") + "/staging/"))
        #expect(
            kernel.calls[3]
                == "overlay ovlcfs lowerdir+=\(staging),datadir+=\(objects),metacopy=on,redirect_dir=follow,ro")
        #expect(kernel.calls[4] == "umount -l \(staging)")
        #expect(kernel.calls[5] == "attach /proc/self/fd/14 at \(mnt)")
        #expect(!FileManager.default.fileExists(atPath: staging), "the staging directory is removed")
    }

    @Test("umount --all removes dm-verity mappings orphaned by a killed mount, and only those")
    func orphanedMappings() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        kernel.deviceMapper = true
        // 999999999 is beyond pid_max: that process is gone; ours is alive; the third is not ours.
        kernel.activeVerity = ["ovlcfs-999999999-1", "ovlcfs-\(getpid())-2", "root-verity"]
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        #expect(try driver.unmountAll().isEmpty)
        #expect(kernel.removed == ["ovlcfs-999999999-1"])
        #expect(kernel.activeVerity == ["ovlcfs-\(getpid())-2", "root-verity"])
    }
}

/// `umount` acts only on what ovlcfs mounted (issue 12 #3, #4).
@Suite("Mount driver: only its own mounts")
struct OwnMountsTests {
    func fixture() throws -> (TemporaryDirectory, MountRequest) {
        let dir = try TemporaryDirectory()
        _ = FileManager.default.createFile(
            atPath: dir.path("i.sqfs"), contents: Data([0x68, 0x73, 0x71, 0x73] + [UInt8](repeating: 0, count: 4092)))
        try FileManager.default.createDirectory(atPath: dir.path("mnt"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        return (
            dir,
            MountRequest(
                image: dir.path("i.sqfs"), target: dir.path("mnt"), objects: [dir.path("objects")], verity: .off)
        )
    }

    @Test("a mount without an ovlcfs record is refused, not unmounted")
    func noRecord() throws {
        let (dir, request) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        kernel.foreign[request.target] = "tmpfs"
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        let error = try #require(throws: MountDriverError.self) { try driver.unmount(request.target) }
        #expect(error.description.contains("not by ovlcfs"))
        #expect(!kernel.calls.contains { $0.hasPrefix("umount") })
    }

    @Test("an unreadable mount table is an error, never 'nothing mounted': no record is pruned, nothing unmounted")
    func unreadableMountTable() throws {
        let (dir, request) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        try driver.mount(request)
        kernel.mounted.remove(request.target)
        kernel.mountTableUnreadable = true
        #expect(throws: RecordingKernel.Injected.self) { try driver.status() }
        #expect(throws: RecordingKernel.Injected.self) { try driver.pruneUnmountedRecords() }
        #expect(driver.records().count == 1, "a record was pruned on an unreadable mount table")
        #expect(throws: (any Error).self) { try driver.unmount(request.target) }
        #expect(throws: (any Error).self) { try driver.mount(request) }
        #expect(!kernel.calls.contains { $0.hasPrefix("umount") })
        kernel.mountTableUnreadable = false
        try driver.pruneUnmountedRecords()
        #expect(driver.records().isEmpty)
    }

    @Test("a recorded mount replaced by another is left alone; the stale record goes; --all does the same")
    func replaced() throws {
        let (dir, request) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        try driver.mount(request)
        kernel.mounted.remove(request.target)
        kernel.foreign[request.target] = "tmpfs"
        #expect(try driver.status().map(\.foreign) == [true])
        #expect(try driver.status().map(\.mounted) == [false])
        #expect(throws: MountDriverError.self) { try driver.unmount(request.target) }
        #expect(!kernel.calls.contains { $0.hasPrefix("umount") })
        #expect(driver.records().isEmpty)
        // The same through --all.
        kernel.foreign = [:]
        try driver.mount(request)
        kernel.mounted.remove(request.target)
        kernel.foreign[request.target] = "tmpfs"
        #expect(throws: MountDriverError.self) { try driver.unmountAll() }
        #expect(!kernel.calls.contains { $0.hasPrefix("umount") })
        #expect(driver.records().isEmpty)
    }

    @Test("a mount stacked over an ovlcfs mount: umount refuses and keeps the record; status still shows it mounted")
    func covered() throws {
        let (dir, request) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        try driver.mount(request)
        kernel.foreign[request.target] = "tmpfs"
        let error = try #require(throws: MountDriverError.self) { try driver.unmount(request.target) }
        #expect(error.description.contains("mounted over"))
        #expect(!kernel.calls.contains { $0.hasPrefix("umount") })
        #expect(driver.records().count == 1)
        #expect(try driver.status().map(\.mounted) == [true])
        kernel.foreign = [:]
        try driver.unmount(request.target)
        #expect(driver.records().isEmpty && kernel.mounted.isEmpty)
    }

    @Test("a garbage record is reported, and umount --all removes it")
    func garbage() throws {
        let (dir, request) = try fixture()
        defer { dir.cleanup() }
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        try driver.mount(request)
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: dir.path("state/mounts/junk.json")))
        #expect(driver.garbageRecords().count == 1)
        #expect(driver.records().count == 1)
        #expect(try driver.unmountAll() == [request.target])
        #expect(driver.garbageRecords().isEmpty && driver.records().isEmpty)
    }

    @Test("a target reached through a symlink is recorded, checked and unmounted by its real path")
    func symlinkedTarget() throws {
        let (dir, request) = try fixture()
        defer { dir.cleanup() }
        try FileManager.default.createSymbolicLink(atPath: dir.path("via"), withDestinationPath: dir.path("."))
        var viaLink = request
        viaLink.target = dir.path("via/mnt")
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        let record = try driver.mount(viaLink)
        let real = try FileQueries.realPath(request.target)
        #expect(record.target == real)
        #expect(kernel.calls.contains("attach /proc/self/fd/13 at \(real)"))
        #expect(throws: MountDriverError.self) { try driver.mount(request) }
        try driver.unmount(viaLink.target)
        #expect(kernel.calls.last == "umount \(real)")
        #expect(driver.records().isEmpty)
    }

    @Test("a mount point of any length has a record (names are a fixed-length hash)")
    func longTarget() throws {
        let (dir, request) = try fixture()
        defer { dir.cleanup() }
        var path = dir.path("mnt")
        for _ in 0..<20 { path += "/" + String(repeating: "x", count: 200) }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var long = request
        long.target = path
        let kernel = RecordingKernel()
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        try driver.mount(long)
        #expect(driver.records().map(\.target) == [path])
        try driver.unmount(path)
        #expect(driver.records().isEmpty)
    }
}

/// The plan and its executor (issue 13): every kind of plan, failed at each of its steps,
/// leaves nothing behind — through the undo ledger, not per-resource flags.
@Suite("Mount plans and the undo ledger")
struct MountPlanTests {
    enum Kind: String, CaseIterable {
        case squashfs, composefs, composefsOnLoop, verityDisk, verityDiskUserspace, stagedLower
    }

    /// An image of `kind`, the kernel to mount it with, and the request.
    func setUp(_ kind: Kind, _ dir: TemporaryDirectory) throws -> (RecordingKernel, MountRequest) {
        let kernel = RecordingKernel()
        try FileManager.default.createDirectory(atPath: dir.path("mnt"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        var image = dir.path("i.sqfs")
        switch kind {
        case .composefs, .composefsOnLoop:
            image = dir.path("i.cfs")
            _ = FileManager.default.createFile(
                atPath: image, contents: Data([0x9A, 0x62, 0x78, 0xD0] + [UInt8](repeating: 0, count: 8188)))
            if kind == .composefsOnLoop { kernel.kernelRelease = "6.6.0" }
        case .verityDisk, .verityDiskUserspace:
            _ = FileManager.default.createFile(
                atPath: dir.path("data"), contents: Data((0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 * 13) }))
            image = try VerityDisk.build(dataImage: dir.path("data"), destination: dir.path("disk.raw")).path
            kernel.deviceMapper = kind == .verityDisk
        case .squashfs, .stagedLower:
            _ = FileManager.default.createFile(
                atPath: image, contents: Data([0x68, 0x73, 0x71, 0x73] + [UInt8](repeating: 0, count: 4092)))
            kernel.detachedLayers = kind != .stagedLower
        }
        return (
            kernel, MountRequest(image: image, target: dir.path("mnt"), objects: [dir.path("objects")], verity: .auto)
        )
    }

    @Test("the plan of each kind: its steps in order", arguments: Kind.allCases)
    func steps(kind: Kind) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (kernel, request) = try setUp(kind, dir)
        let plan = try MountDriver(kernel: kernel, stateDirectory: dir.path("state")).plan(request)
        let expected: [MountPlanStep.Action] =
            switch kind {
            case .squashfs, .stagedLower, .composefsOnLoop:
                [.attachLoop, .mountLower, .mountOverlay, .writeRecord, .attach]
            case .composefs: [.mountLower, .mountOverlay, .writeRecord, .attach]
            case .verityDisk:
                [
                    .attachLoop, .attachLoop, .activateVerity, .mountLower, .deferVerityRemoval, .mountOverlay,
                    .writeRecord, .attach,
                ]
            case .verityDiskUserspace: [.verifyDisk, .attachLoop, .mountLower, .mountOverlay, .writeRecord, .attach]
            }
        #expect(plan.steps.map(\.action) == expected)
        #expect(plan.steps.first { $0.action == .mountOverlay }?.staged == (kind == .stagedLower))
        // Planning touched nothing: no kernel call, no state directory.
        #expect(kernel.calls.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.path("state")))
        let json = try JSONEncoder().encode(plan)
        #expect(try JSONDecoder().decode(MountPlan.self, from: json).steps == plan.steps)
    }

    @Test("a failure at every step of every plan kind undoes all steps before it", arguments: Kind.allCases)
    func faultAtEveryStep(kind: Kind) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let count = try {
            let (kernel, request) = try setUp(kind, dir)
            return try MountDriver(kernel: kernel, stateDirectory: dir.path("state")).plan(request).steps.count
        }()
        for failing in 0..<count {
            let (kernel, request) = try setUp(kind, dir)
            let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state-\(failing)"))
            nonisolated(unsafe) var failedStep: MountPlanStep?
            driver.injectFault = { index, step in
                if index == failing {
                    failedStep = step
                    throw RecordingKernel.Injected()
                }
            }
            let error = try #require(throws: MountDriverError.self) { try driver.mount(request) }
            let step = try #require(failedStep)
            #expect(error.step == step.category, "\(kind) step \(failing) (\(step.action)): \(error)")
            #expect(kernel.liveLoops == 0, "\(kind): a loop device left after a failure at \(step.action)")
            #expect(kernel.liveMounts == 0, "\(kind): a mount left after a failure at \(step.action)")
            #expect(kernel.mounted.isEmpty)
            #expect(kernel.activeVerity.isEmpty, "\(kind): a dm-verity mapping left after a failure at \(step.action)")
            #expect(driver.records().isEmpty)
        }
        // And without a fault the same plan mounts, and one unmount releases it.
        let (kernel, request) = try setUp(kind, dir)
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state-ok"))
        try driver.mount(request)
        try driver.unmount(request.target)
        #expect(kernel.mounted.isEmpty && driver.records().isEmpty)
    }

    @Test("a data-only layout on a kernel that predates data-only layers plans with a warning, not a refusal")
    func dataOnlyWarned() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (kernel, request) = try setUp(.squashfs, dir)
        kernel.kernelRelease = "5.14.0-427.el9_4.x86_64"
        let plan = try MountDriver(kernel: kernel, stateDirectory: dir.path("state")).plan(request)
        #expect(plan.warnings.contains { $0.contains("--layout legacy") })
        #expect(plan.steps.count == 5)
    }

    @Test("composefs on a kernel that cannot mount EROFS from a file falls back to a loop device, undone on failure")
    func erofsLoopFallback() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let (kernel, request) = try setUp(.composefs, dir)
        kernel.erofsFromFileFails = true
        let driver = MountDriver(kernel: kernel, stateDirectory: dir.path("state"))
        let record = try driver.mount(request)
        #expect(record.loopDevice == "/dev/loop7")
        #expect(kernel.calls.prefix(2) == ["loop \(request.image) bs=4096", "erofs /dev/loop7 ro"])
        try driver.unmount(request.target)
        // The loop taken by the fallback is undone when a later step fails.
        let (failing, again) = try setUp(.composefs, dir)
        failing.erofsFromFileFails = true
        failing.failAt = .overlayMount
        #expect(throws: MountDriverError.self) {
            try MountDriver(kernel: failing, stateDirectory: dir.path("state2")).mount(again)
        }
        #expect(failing.liveLoops == 0 && failing.liveMounts == 0)
    }
}
