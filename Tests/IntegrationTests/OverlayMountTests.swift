import ComposefsDump
import Foundation
import ImageModel
import LinuxSys
import OverlayTranslation
import SquashfsWriter
import Testing
import TestSupport

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
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
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
/// the model shows it (reference 02 §1). Returns the mismatches.
func compareKernelView(of image: Image, at mount: String, layout: OverlayLayout, objects: ObjectsFixture) throws -> [String] {
    var problems: [String] = []
    func problem(_ text: String) { if problems.count < 30 { problems.append(text) } }
    var inodeNumbers: [InodeID: [UInt64]] = [:]
    var whiteoutParents = Set<EntryID>()
    for entry in image.entryIDs where entry != .root && image.inode(of: entry).isWhiteout {
        whiteoutParents.insert(image.parent(of: entry))
    }
    let x = Array("x".utf8)
    for entry in image.depthFirstOrder {
        let relative = String(decoding: image.path(of: entry), as: UTF8.self)
        let path = entry == .root ? mount : mount + relative
        let id = image.inodeID(of: entry)
        let inode = image[inode: id]
        let status: FileStatus
        do { status = try FileStatus(path: path) } catch {
            problem("\(relative): \(error)")
            continue
        }
        var expectedXattrs = image.xattrs(of: inode).filter { SquashfsLosses.isStorable($0.key) }
        var expectedType = inode.type
        if inode.isWhiteout {
            expectedType = .regular
            expectedXattrs += [Xattr(key: Array("trusted.overlay.whiteout".utf8), value: []),
                               Xattr(key: Array("user.overlay.whiteout".utf8), value: [])]
        }
        if whiteoutParents.contains(entry) {
            expectedXattrs += [Xattr(key: Array("trusted.overlay.whiteouts".utf8), value: []),
                               Xattr(key: Array("user.overlay.whiteouts".utf8), value: []),
                               Xattr(key: Array("trusted.overlay.opaque".utf8), value: x),
                               Xattr(key: Array("user.overlay.opaque".utf8), value: x)]
        }
        if FileType(mode: status.mode) != expectedType { problem("\(relative): type \(String(status.mode, radix: 8)), model \(expectedType)") }
        if status.mode & 0o7777 != UInt32(inode.permissions) {
            problem("\(relative): permissions \(String(status.mode & 0o7777, radix: 8)), model \(String(inode.permissions, radix: 8))")
        }
        if status.uid != inode.uid || status.gid != inode.gid { problem("\(relative): owner \(status.uid):\(status.gid), model \(inode.uid):\(inode.gid)") }
        let mtime = min(max(inode.mtime.seconds, 0), Int64(UInt32.max))
        if status.mtimeSeconds != mtime { problem("\(relative): mtime \(status.mtimeSeconds), model \(mtime)") }
        switch expectedType {
        case .regular:
            let size = inode.isWhiteout ? 0 : inode.size
            if status.size != size { problem("\(relative): size \(status.size), model \(size)") }
            if status.nlink != UInt64(inode.isWhiteout ? 1 : inode.nlink) && !inode.isWhiteout {
                problem("\(relative): nlink \(status.nlink), model \(inode.nlink)")
            }
        case .symlink:
            let target = try FileQueries.readLink(path)
            if target != inode.symlinkTarget { problem("\(relative): link target \(String(decoding: target, as: UTF8.self))") }
        case .blockDevice, .charDevice:
            if status.rdev != inode.rdev { problem("\(relative): rdev \(status.rdev), model \(inode.rdev)") }
        case .directory:
            let isMergedRoot = entry == .root && layout == .legacy
            if !isMergedRoot && status.nlink != UInt64(image.nlink(of: id)) {
                problem("\(relative): nlink \(status.nlink), model \(image.nlink(of: id))")
            }
            let names = try FileQueries.directoryEntries(path)
            let modelNames = image.children(of: entry).map { Array(image.name(of: $0)) }
            if names != modelNames {
                problem("\(relative): lists \(names.count) names, model \(modelNames.count): extra \(Set(names).subtracting(modelNames).map { String(decoding: $0, as: UTF8.self) }.sorted().prefix(5))")
            }
        default:
            break
        }
        // Hard links: one inode number per model inode.
        let identity = [status.device, status.inode]
        if let seen = inodeNumbers[id], seen != identity { problem("\(relative): inode \(identity), its hard link has \(seen)") }
        inodeNumbers[id] = identity
        // xattrs, as a set.
        var actual: [Xattr] = []
        for name in try FileQueries.xattrNames(path) {
            actual.append(Xattr(key: name, value: try FileQueries.xattr(path, name: name)))
        }
        func sorted(_ list: [Xattr]) -> [Xattr] { list.sorted { $0.key.lexicographicallyPrecedes($1.key) } }
        if sorted(actual) != sorted(expectedXattrs) {
            problem("\(relative): xattrs \(actual.map { String(decoding: $0.key, as: UTF8.self) }.sorted()), model \(expectedXattrs.map { String(decoding: $0.key, as: UTF8.self) }.sorted())")
        }
        // Reads come from the objects.
        if let payload = inode.externalObject?.payload, let bytes = objects.patterned[payload.bytes], inode.size > 0 {
            let read = try FileQueries.readPrefix(path, count: bytes.count + 1)
            if read != bytes { problem("\(relative): read \(read.count) bytes that differ from the object") }
        }
    }
    // Hard links share (st_dev, st_ino); distinct model inodes never do.
    var owners: [[UInt64]: InodeID] = [:]
    for (id, number) in inodeNumbers {
        if let other = owners[number] {
            problem("\(image.displayPath(of: image.primaryEntry(of: id))) and \(image.displayPath(of: image.primaryEntry(of: other))) share inode number \(number)")
        }
        owners[number] = id
    }
    return problems
}

@Suite("Kernel truth: the overlay option mounted for real", .serialized,
       .enabled(if: HostCapabilities.canMountSquashfsOverlay, "\(HostCapabilities.mountSkipReason)"),
       .enabled(if: TestPaths.haveVectors, "../shared/vectors is missing"))
struct OverlayMountTests {
    static let models: [URL] = [
        TestPaths.composefsVectors.appendingPathComponent("special.dump"),
        TestPaths.composefsModels.appendingPathComponent("fedora.dump"),
        TestPaths.composefsVectors.appendingPathComponent("cs9-x86_64-minimal.dump.gz"),
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
        try mounts.mount("overlay", "overlay", dir.path("merged"),
                         options: "ro,metacopy=on,redirect_dir=follow,lowerdir=\(dir.path("lower"))\(separator)\(objects.root)")
        let problems = try compareKernelView(of: image, at: dir.path("merged"), layout: layout, objects: objects)
        #expect(problems.isEmpty, "\(model.lastPathComponent) \(layout): \(problems.joined(separator: "\n"))")
        #expect(!objects.patterned.isEmpty || image.inodes.allSatisfy { $0.externalObject == nil })

        mounts.tearDown()
        #expect(!TestMounts.isMounted(dir.path("merged")))
        #expect(!TestMounts.isMounted(dir.path("lower")))
        #expect(!TestMounts.loopAttached(to: imagePath))
    }
}
