import ComposefsDump
import DiskImage
import ErofsWriter
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys
import MountDriver
import ObjectStore
import OverlayTranslation
import SquashfsWriter
import SystemPackage
import TestSupport
import Testing
import Verity

/// An objects store for a model: every payload a file of the object's size (sparse), except a
/// few filled with a byte pattern so reads through the mount can be checked.
struct ObjectsFixture {
    let root: String
    /// Payload path → the bytes written into it (the patterned objects).
    var patterned: [[UInt8]: [UInt8]] = [:]

    init(for image: Image, in directory: String, patterned patternCount: Int = 8) throws {
        root = directory
        var sizes: [[UInt8]: UInt64] = [:]
        for inode in image.inodes where inode.type == .regular && inode.size > 0 {
            if let payload = inode.externalObject?.payload { sizes[payload.bytes] = inode.size }
        }
        let ordered = sizes.keys.sorted { $0.lexicographicallyPrecedes($1) }
        for (index, payload) in ordered.enumerated() {
            let path = directory + "/" + String(decoding: payload, as: UTF8.self)
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: path, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            let size = sizes[payload]!
            if index < patternCount && size <= 1 << 20 {
                let bytes = (0..<Int(size)).map { UInt8(($0 * 7 + index) % 251) }
                try handle.write(contentsOf: Data(bytes))
                patterned[payload] = bytes
            } else {
                try handle.truncate(atOffset: size)
            }
        }
    }
}

/// Compares what the kernel shows under `mount` with the model, the way a composefs mount of
/// the model shows it (reference 02 §1). Walks with directory file descriptors, so names that
/// are not UTF-8 work. Returns the mismatches.
func compareKernelView(
    of image: Image, at mount: String, layout: OverlayLayout, allXattrNamespaces: Bool = false,
    contents: (ImageModel.Inode) -> [UInt8]? = { _ in nil }
) throws -> [String] {
    var problems: [String] = []
    func problem(_ text: String) { if problems.count < 30 { problems.append(text) } }
    var inodeNumbers: [InodeID: [UInt64]] = [:]
    var whiteoutParents = Set<EntryID>()
    for entry in image.entryIDs where entry != .root && image.inode(of: entry).isWhiteout {
        whiteoutParents.insert(image.parent(of: entry))
    }
    var handles: [EntryID: DirectoryHandle] = [.root: try DirectoryHandle(path: mount)]
    let x = Array("x".utf8)
    for entry in image.depthFirstOrder {
        let relative = image.displayPath(of: entry)
        let id = image.inodeID(of: entry)
        let inode = image[inode: id]
        let name = entry == .root ? [] : Array(image.name(of: entry))
        guard let parent = handles[entry == .root ? .root : image.parent(of: entry)] else {
            problem("\(relative): parent directory could not be opened")
            continue
        }
        let status: FileStatus
        do { status = try parent.status(name) } catch {
            problem("\(relative): \(error)")
            continue
        }
        var expectedXattrs = image.xattrs(of: inode).filter { allXattrNamespaces || SquashfsLosses.isStorable($0.key) }
        var expectedType = inode.type
        if inode.isWhiteout {
            expectedType = .regular
            expectedXattrs += [
                Xattr(key: Array("trusted.overlay.whiteout".utf8), value: []),
                Xattr(key: Array("user.overlay.whiteout".utf8), value: []),
            ]
        }
        if whiteoutParents.contains(entry) {
            expectedXattrs += [
                Xattr(key: Array("trusted.overlay.whiteouts".utf8), value: []),
                Xattr(key: Array("user.overlay.whiteouts".utf8), value: []),
            ]
            if !expectedXattrs.contains(where: { $0.key == Array("trusted.overlay.opaque".utf8) }) {
                expectedXattrs += [
                    Xattr(key: Array("trusted.overlay.opaque".utf8), value: x),
                    Xattr(key: Array("user.overlay.opaque".utf8), value: x),
                ]
            }
        }
        if FileType(mode: status.mode) != expectedType {
            problem("\(relative): type \(String(status.mode, radix: 8)), model \(expectedType)")
        }
        if status.mode & 0o7777 != UInt32(inode.permissions) {
            problem(
                "\(relative): permissions \(String(status.mode & 0o7777, radix: 8)), model \(String(inode.permissions, radix: 8))"
            )
        }
        if status.uid != inode.uid || status.gid != inode.gid {
            problem("\(relative): owner \(status.uid):\(status.gid), model \(inode.uid):\(inode.gid)")
        }
        let mtime = min(max(inode.mtime.seconds, 0), Int64(UInt32.max))
        if status.mtimeSeconds != mtime { problem("\(relative): mtime \(status.mtimeSeconds), model \(mtime)") }
        switch expectedType {
        case .regular:
            let size = inode.isWhiteout ? 0 : inode.size
            if status.size != size { problem("\(relative): size \(status.size), model \(size)") }
            if !inode.isWhiteout && status.nlink != UInt64(inode.nlink) {
                problem("\(relative): nlink \(status.nlink), model \(inode.nlink)")
            }
            if let bytes = contents(inode) {
                let file = try parent.openFile(name)
                defer { try? file.close() }
                var buffer = [UInt8](repeating: 0, count: bytes.count + 1)
                var read: [UInt8] = []
                while true {
                    let count = try FileIO.read(file, into: &buffer, path: relative)
                    if count == 0 { break }
                    read += buffer[0..<count]
                }
                if read != bytes { problem("\(relative): read \(read.count) bytes that differ from the object") }
            }
        case .symlink:
            let target = try parent.readLink(name)
            if target != inode.symlinkTarget {
                problem("\(relative): link target \(String(decoding: target, as: UTF8.self))")
            }
        case .blockDevice, .charDevice:
            if status.rdev != inode.rdev { problem("\(relative): rdev \(status.rdev), model \(inode.rdev)") }
        case .directory:
            let handle = entry == .root ? parent : try parent.openDirectory(name)
            handles[entry] = handle
            let isMergedRoot = entry == .root && layout == .legacy
            if !isMergedRoot && status.nlink != UInt64(image.nlink(of: id)) {
                problem("\(relative): nlink \(status.nlink), model \(image.nlink(of: id))")
            }
            let names = try handle.entries()
            let modelNames = image.children(of: entry).map { Array(image.name(of: $0)) }
            if names != modelNames {
                problem(
                    "\(relative): lists \(names.count) names, model \(modelNames.count): extra \(Set(names).subtracting(modelNames).map { String(decoding: $0, as: UTF8.self) }.sorted().prefix(5))"
                )
            }
        default:
            break
        }
        // Hard links: one (st_dev, st_ino) per model inode.
        let identity = [status.device, status.inode]
        if let seen = inodeNumbers[id], seen != identity {
            problem("\(relative): inode \(identity), its hard link has \(seen)")
        }
        inodeNumbers[id] = identity
        let actual = try parent.xattrs(name).map { Xattr(key: $0.key, value: $0.value) }
        func sorted(_ list: [Xattr]) -> [Xattr] { list.sorted { $0.key.lexicographicallyPrecedes($1.key) } }
        if sorted(actual) != sorted(expectedXattrs) {
            problem(
                "\(relative): xattrs \(actual.map { String(decoding: $0.key, as: UTF8.self) }.sorted()), model \(expectedXattrs.map { String(decoding: $0.key, as: UTF8.self) }.sorted())"
            )
        }
    }
    // Hard links share (st_dev, st_ino); distinct model inodes never do.
    var owners: [[UInt64]: InodeID] = [:]
    for (id, number) in inodeNumbers {
        if let other = owners[number] {
            problem(
                "\(image.displayPath(of: image.primaryEntry(of: id))) and \(image.displayPath(of: image.primaryEntry(of: other))) share inode number \(number)"
            )
        }
        owners[number] = id
    }
    return problems
}

@Suite(
    "Kernel truth: the overlay option mounted for real", .serialized,
    .enabled(if: HostCapabilities.canMountSquashfsOverlay, "\(HostCapabilities.mountSkipReason)"))
struct OverlayMountTests {
    static let models: [URL] = [
        TestPaths.fixture("special.dump"),
        TestPaths.fixture("fedora.dump.gz"),
        TestPaths.cs9,
    ]

    @Test("the merged mount shows the model", arguments: models, OverlayLayout.allCases)
    func mountShowsModel(model: URL, layout: OverlayLayout) throws {
        let image = try DumpFile.read(path: model.path)
        let dir = try TemporaryDirectory()
        let mounts = TestMounts()
        defer {
            mounts.tearDown()
            dir.cleanup()
        }
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        let objects = try ObjectsFixture(for: image, in: dir.path("objects"))
        let imagePath = dir.path("image.sqfs")
        let layer = try OverlayTranslation.translate(image, options: .init(layout: layout))
        try SquashfsWriter.write(layer, to: imagePath)

        let loop = try mounts.attachLoop(imagePath)
        try mounts.mount("squashfs", loop, dir.path("lower"), options: "ro")
        let separator = layout == .dataOnly ? "::" : ":"
        try mounts.mount(
            "overlay", "overlay", dir.path("merged"),
            options: "ro,metacopy=on,redirect_dir=follow,lowerdir=\(dir.path("lower"))\(separator)\(objects.root)")
        let problems = try compareKernelView(of: image, at: dir.path("merged"), layout: layout) { inode in
            inode.externalObject?.payload.flatMap { objects.patterned[$0.bytes] }
        }
        #expect(problems.isEmpty, "\(model.lastPathComponent) \(layout): \(problems.joined(separator: "\n"))")
        #expect(!objects.patterned.isEmpty || image.inodes.allSatisfy { $0.externalObject == nil })

        mounts.tearDown()
        #expect(!TestMounts.isMounted(dir.path("merged")))
        #expect(!TestMounts.isMounted(dir.path("lower")))
        #expect(!TestMounts.loopAttached(to: imagePath))
    }
}

@Suite(
    "Kernel truth: an ingested tree through the overlay mount", .serialized,
    .enabled(if: HostCapabilities.canMountSquashfsOverlay, "\(HostCapabilities.mountSkipReason)"),
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3 is needed to build the test tree"
    ))
struct IngestMountTests {
    @Test(
        "ingest, build and mount: the mount shows the tree, and every file reads as its source",
        arguments: OverlayLayout.allCases)
    func ingestedTreeMounts(layout: OverlayLayout) throws {
        let dir = try TemporaryDirectory()
        let mounts = TestMounts()
        defer {
            mounts.tearDown()
            dir.cleanup()
        }
        let script = TestPaths.packageRoot.appendingPathComponent("Tests/ObjectStoreTests/make_tree.py").path
        let made = try run("/usr/bin/python3", [script, "create", dir.path("tree")])
        #expect(made.status == 0, "\(made.stderrText)")
        let store = try ObjectStore(path: dir.path("objects"), create: true)
        let image = try Ingest.ingest(directory: dir.path("tree"), store: store).image
        // Through a dump and back, as `--dump-out` then `build MODEL.dump` does.
        let model = try DumpParser.parse(DumpWriter.render(image), input: "ingested.dump")
        try SquashfsWriter.write(
            try OverlayTranslation.translate(model, options: .init(layout: layout)), to: dir.path("i.sqfs"))
        let loop = try mounts.attachLoop(dir.path("i.sqfs"))
        try mounts.mount("squashfs", loop, dir.path("lower"), options: "ro")
        try mounts.mount(
            "overlay", "overlay", dir.path("merged"),
            options:
                "ro,metacopy=on,redirect_dir=follow,lowerdir=\(dir.path("lower"))\(layout == .dataOnly ? "::" : ":")\(store.path)"
        )
        // Contents: what the source file holds (objects are copies of it); the sparse file is
        // compared through its digest instead of 3 GiB of reads.
        let problems = try compareKernelView(of: model, at: dir.path("merged"), layout: layout) { inode in
            guard inode.type == .regular, inode.size <= 1 << 20 else { return nil }
            if let content = inode.inlineContent { return content }
            guard let digest = inode.externalObject?.digest else { return nil }
            return FileManager.default.contents(
                atPath: store.path + "/" + String(decoding: digest.objectPath, as: UTF8.self)
            ).map(Array.init)
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        let sparse = try #require(model.lookup(path: Array("/sparse".utf8)))
        #expect(
            try FsVerity.digest(ofFile: dir.path("merged") + "/sparse")
                == model.inode(of: sparse).externalObject?.digest)
        #expect(
            try FsVerity.digest(ofFile: dir.path("merged") + "/sparse")
                == FsVerity.digest(ofFile: dir.path("tree") + "/sparse"))
        mounts.tearDown()
        #expect(!TestMounts.isMounted(dir.path("merged")))
        #expect(!TestMounts.loopAttached(to: dir.path("i.sqfs")))
    }
}

/// Differences between what two mounts show: names, types, modes, owners, sizes (not of
/// directories), mtime seconds, link targets and xattrs.
func compareMounts(_ a: String, _ b: String) throws -> [String] {
    var problems: [String] = []
    var stack: [(DirectoryHandle, DirectoryHandle, String)] = [
        (try DirectoryHandle(path: a), try DirectoryHandle(path: b), "")
    ]
    while let (x, y, path) = stack.popLast() {
        let names = try x.entries()
        if names != (try y.entries()) { problems.append("\(path)/: listings differ") }
        for name in names {
            let shown = path + "/" + String(decoding: name, as: UTF8.self)
            guard let sy = try? y.status(name) else { continue }
            let sx = try x.status(name)
            if sx.mode != sy.mode || sx.uid != sy.uid || sx.gid != sy.gid || sx.mtimeSeconds != sy.mtimeSeconds
                || (!sx.isDirectory && sx.size != sy.size) || sx.rdev != sy.rdev
            {
                problems.append("\(shown): stat differs")
            }
            if sx.isSymlink, try x.readLink(name) != y.readLink(name) {
                problems.append("\(shown): link target differs")
            }
            let xa = try x.xattrs(name).map { Xattr(key: $0.key, value: $0.value) }.sorted {
                $0.key.lexicographicallyPrecedes($1.key)
            }
            let ya = try y.xattrs(name).map { Xattr(key: $0.key, value: $0.value) }.sorted {
                $0.key.lexicographicallyPrecedes($1.key)
            }
            if xa != ya { problems.append("\(shown): xattrs differ") }
            if sx.isDirectory { stack.append((try x.openDirectory(name), try y.openDirectory(name), shown)) }
            if problems.count > 30 { return problems }
        }
    }
    return problems
}

@Suite(
    "Kernel truth: composefs and the overlay option side by side", .serialized,
    .enabled(
        if: HostCapabilities.canMountSquashfsOverlay && HostCapabilities.kernelHasFilesystem("erofs"),
        "needs root, loop devices and the squashfs, erofs and overlay filesystems"))
struct ComposefsMountTests {
    @Test("cs9-x86_64-minimal: the composefs mount shows the model, and both stacks show the same tree")
    func sideBySide() throws {
        let image = try DumpFile.read(path: TestPaths.cs9.path)
        let dir = try TemporaryDirectory()
        let mounts = TestMounts()
        defer {
            mounts.tearDown()
            dir.cleanup()
        }
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        let objects = try ObjectsFixture(for: image, in: dir.path("objects"))
        // composefs: EROFS straight from the file, then overlay with the objects as a data-only layer.
        let cfs = dir.path("image.cfs")
        FileManager.default.createFile(atPath: cfs, contents: Data(try ComposefsImage.bytes(for: image)))
        try mounts.mount("erofs", cfs, dir.path("erofs"), options: "ro")
        try mounts.mount(
            "overlay", "composefs", dir.path("composefs"),
            options: "ro,metacopy=on,redirect_dir=follow,lowerdir=\(dir.path("erofs"))::\(objects.root)")
        let problems = try compareKernelView(
            of: image, at: dir.path("composefs"), layout: .dataOnly, allXattrNamespaces: true
        ) { inode in
            inode.externalObject?.payload.flatMap { objects.patterned[$0.bytes] }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        // The overlay option of the same model.
        try SquashfsWriter.write(try OverlayTranslation.translate(image), to: dir.path("image.sqfs"))
        let loop = try mounts.attachLoop(dir.path("image.sqfs"))
        try mounts.mount("squashfs", loop, dir.path("squashfs"), options: "ro")
        try mounts.mount(
            "overlay", "overlay", dir.path("overlay"),
            options: "ro,metacopy=on,redirect_dir=follow,lowerdir=\(dir.path("squashfs"))::\(objects.root)")
        let differences = try compareMounts(dir.path("composefs"), dir.path("overlay"))
        #expect(differences.isEmpty, "\(differences.joined(separator: "\n"))")
        mounts.tearDown()
        #expect(!TestMounts.isMounted(dir.path("composefs")) && !TestMounts.isMounted(dir.path("overlay")))
        #expect(!TestMounts.loopAttached(to: dir.path("image.sqfs")))
    }
}

@Suite(
    "Kernel truth: the mount driver", .serialized,
    .enabled(
        if: HostCapabilities.canMountSquashfsOverlay && HostCapabilities.kernelHasFilesystem("erofs"),
        "needs root, loop devices and the squashfs, erofs and overlay filesystems"))
struct MountDriverIntegrationTests {
    static let cs9 = TestPaths.cs9.path

    @Test(
        "mount and unmount cs9 as squashfs (both layouts) and as composefs: the kernel view is the model, and nothing is left",
        arguments: ["data-only", "legacy", "composefs"])
    func mountAndUnmount(kind: String) throws {
        let image = try DumpFile.read(path: Self.cs9)
        let fixture = try MountFixture()
        defer { fixture.tearDown() }
        let (dir, driver) = (fixture.dir, fixture.driver)
        let objects = try ObjectsFixture(for: image, in: dir.path("objects"))
        let layout: OverlayLayout = kind == "legacy" ? .legacy : .dataOnly
        let path: String
        if kind == "composefs" {
            path = dir.path("i.cfs")
            FileManager.default.createFile(atPath: path, contents: Data(try ComposefsImage.bytes(for: image)))
        } else {
            path = dir.path("i.sqfs")
            try SquashfsWriter.write(try OverlayTranslation.translate(image, options: .init(layout: layout)), to: path)
        }
        let record = try driver.mount(
            MountRequest(image: path, target: dir.path("mnt"), objects: [objects.root], layout: layout, verity: .off))
        #expect(record.kind == (kind == "composefs" ? .composefs : .squashfs))
        #expect(try driver.status().map(\.mounted) == [true])
        let problems = try compareKernelView(
            of: image, at: dir.path("mnt"), layout: layout, allXattrNamespaces: kind == "composefs"
        ) { inode in
            inode.externalObject?.payload.flatMap { objects.patterned[$0.bytes] }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        try driver.unmount(dir.path("mnt"))
        #expect(nothingLeft(under: dir.url.path).isEmpty, "\(nothingLeft(under: dir.url.path))")
        #expect(driver.records().isEmpty)
    }

    @Test("50 mount/unmount cycles and 8 concurrent mounts of different images leave nothing behind")
    func cyclesAndConcurrency() throws {
        let image = try DumpFile.read(path: TestPaths.fixture("special.dump").path)
        let fixture = try MountFixture()
        defer { fixture.tearDown() }
        let (dir, driver) = (fixture.dir, fixture.driver)
        let layer = try OverlayTranslation.translate(image)
        for i in 0..<8 {
            try SquashfsWriter.write(layer, to: dir.path("i\(i).sqfs"))
            try FileManager.default.createDirectory(atPath: dir.path("m\(i)"), withIntermediateDirectories: true)
        }
        for _ in 0..<50 {
            try driver.mount(
                MountRequest(
                    image: dir.path("i0.sqfs"), target: dir.path("m0"), objects: [dir.path("objects")], verity: .off))
            try driver.unmount(dir.path("m0"))
        }
        #expect(nothingLeft(under: dir.url.path).isEmpty)
        let failures = LockedList()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                let own = MountDriver(stateDirectory: dir.path("state"))
                try own.mount(
                    MountRequest(
                        image: dir.path("i\(i).sqfs"), target: dir.path("m\(i)"), objects: [dir.path("objects")],
                        verity: .off))
            } catch {
                failures.append("\(i): \(error)")
            }
        }
        #expect(failures.items.isEmpty, "\(failures.items)")
        #expect(try driver.status().filter(\.mounted).count == 8)
        #expect(Set(driver.records().compactMap(\.loopDevice)).count == 8)
        #expect(try driver.unmountAll().count == 8)
        #expect(nothingLeft(under: dir.url.path).isEmpty, "\(nothingLeft(under: dir.url.path))")
    }

    @Test(
        "kill -9 of `ovlcfs mount` at any moment, then `umount --all`, leaves nothing behind",
        .enabled(
            if: FileManager.default.isExecutableFile(
                atPath: TestPaths.productsDirectory.appendingPathComponent("ovlcfs").path)))
    func killDuringMount() throws {
        let binary = TestPaths.productsDirectory.appendingPathComponent("ovlcfs").path
        let image = try DumpFile.read(path: Self.cs9)
        let dir = try TemporaryDirectory()
        defer {
            _ = try? run(binary, ["umount", "--all", "--state-directory", dir.path("state")])
            dir.cleanup()
        }
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("mnt"), withIntermediateDirectories: true)
        try SquashfsWriter.write(try OverlayTranslation.translate(image), to: dir.path("i.sqfs"))
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<10 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "mount", dir.path("i.sqfs"), dir.path("mnt"), "--objects", dir.path("objects"),
                "--verity", "off", "--state-directory", dir.path("state"),
            ]
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: Double(Int.random(in: 0...40, using: &rng)) / 1000)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let cleanup = try run(binary, ["umount", "--all", "--state-directory", dir.path("state")])
            #expect(cleanup.status == 0, "\(cleanup.stderrText)")
            // Autoclear loop devices go once the killed process's descriptors are closed.
            Thread.sleep(forTimeInterval: 0.05)
            #expect(nothingLeft(under: dir.url.path).isEmpty, "\(nothingLeft(under: dir.url.path))")
        }
    }
}

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ item: String) {
        lock.lock()
        list.append(item)
        lock.unlock()
    }
    var items: [String] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
}

@Suite(
    "Kernel truth: verity disks", .serialized,
    .enabled(if: HostCapabilities.canMountSquashfsOverlay, "\(HostCapabilities.mountSkipReason)"))
struct VerityDiskMountTests {
    @Test(
        "a verity disk mounts after its userspace check and shows the model; tampering, a wrong root hash and --verity require are refused"
    )
    func verityDisk() throws {
        let image = try DumpFile.read(path: TestPaths.cs9.path)
        let fixture = try MountFixture()
        defer { fixture.tearDown() }
        let (dir, driver) = (fixture.dir, fixture.driver)
        let objects = try ObjectsFixture(for: image, in: dir.path("objects"))
        try SquashfsWriter.write(try OverlayTranslation.translate(image), to: dir.path("data.sqfs"))
        let disk = try VerityDisk.build(dataImage: dir.path("data.sqfs"), destination: dir.path("disk.raw"))
        let request = MountRequest(
            image: dir.path("disk.raw"), target: dir.path("mnt"), objects: [objects.root], verity: .auto)
        let record = try driver.mount(request)
        #expect(record.kind == .verityDisk)
        let problems = try compareKernelView(of: image, at: dir.path("mnt"), layout: .dataOnly) { inode in
            inode.externalObject?.payload.flatMap { objects.patterned[$0.bytes] }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        try driver.unmount(dir.path("mnt"))
        // --verity require names the missing kernel feature (this kernel has no device-mapper).
        if !FileManager.default.fileExists(atPath: "/dev/mapper/control") {
            var require = request
            require.verity = .require
            let error = try #require(throws: MountDriverError.self) { try driver.mount(require) }
            #expect(error.description.contains("device-mapper"))
        }
        // A wrong root hash is refused.
        var wrong = request
        wrong.rootHash = [UInt8](repeating: 0xAB, count: 32)
        #expect(throws: (any Error).self) { try driver.mount(wrong) }
        // A single flipped byte in the data partition is refused.
        let handle = try FileHandle(forUpdating: dir.url.appendingPathComponent("disk.raw"))
        try handle.seek(toOffset: disk.data.offset + 5000)
        let byte = try handle.read(upToCount: 1)![0]
        try handle.seek(toOffset: disk.data.offset + 5000)
        try handle.write(contentsOf: Data([byte ^ 0x80]))
        try handle.close()
        let tampered = try #require(throws: (any Error).self) { try driver.mount(request) }
        #expect("\(tampered)".contains("does not match the root hash"))
        #expect(nothingLeft(under: dir.url.path).isEmpty, "\(nothingLeft(under: dir.url.path))")
        #expect(driver.records().isEmpty)
    }
}
