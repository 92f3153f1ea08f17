import ComposefsDump
import Foundation
import ImageModel
import LinuxSys
import ObjectStore
import OverlayTranslation
import SystemPackage
import TestSupport
import Testing
import Verity

let treeScript = TestPaths.packageRoot.appendingPathComponent("Tests/ObjectStoreTests/make_tree.py").path

func makeTree(in dir: TemporaryDirectory) throws -> String {
    let root = dir.path("tree")
    let result = try run("/usr/bin/python3", [treeScript, "create", root])
    guard result.status == 0 else { throw TestFailure("make_tree.py: \(result.stderrText)") }
    return root
}

/// The independent listing of a tree: hex path → record.
func listTree(_ root: String) throws -> [String: [String: Any]] {
    let result = try run("/usr/bin/python3", [treeScript, "list", root])
    guard result.status == 0 else { throw TestFailure("make_tree.py list: \(result.stderrText)") }
    return try JSONSerialization.jsonObject(with: Data(result.stdout)) as! [String: [String: Any]]
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite(
    "Ingest a directory tree", .serialized,
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3 is needed to build the test tree"
    ))
struct IngestTests {
    @Test(
        "the model shows the tree as lstat/listxattr do, and every object holds its file's bytes",
        arguments: [StoreMode.copy, .hardlink, .none])
    func ingestMatchesTree(mode: StoreMode) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let root = try makeTree(in: dir)
        let store = mode == .none ? nil : try ObjectStore(path: dir.path("objects"), create: true)
        let result = try Ingest.ingest(directory: root, store: store, options: IngestOptions(storeMode: mode))
        let image = result.image
        let listing = try listTree(root)
        #expect(image.entryCount == listing.count)
        var inodeOf: [[Int]: InodeID] = [:]
        for entry in image.entryIDs {
            let path = image.path(of: entry)
            guard let record = listing[hex(path)] else {
                Issue.record("\(image.displayPath(of: entry)) is not in the tree")
                continue
            }
            let inode = image.inode(of: entry)
            let shown = image.displayPath(of: entry)
            #expect(inode.mode == UInt32(record["mode"] as! Int), "\(shown)")
            #expect(
                inode.uid == UInt32(record["uid"] as! Int) && inode.gid == UInt32(record["gid"] as! Int), "\(shown)")
            let mtime = (record["mtime"] as! NSNumber).int64Value
            #expect(
                inode.mtime == Timestamp(seconds: mtime / 1_000_000_000, nanoseconds: UInt32(mtime % 1_000_000_000)),
                "\(shown)")
            if inode.type == .regular || inode.type == .symlink {
                #expect(inode.size == UInt64(record["size"] as! Int), "\(shown)")
            }
            if inode.type == .charDevice { #expect(inode.rdev == UInt64(record["rdev"] as! Int), "\(shown)") }
            if let target = record["target"] as? String {
                #expect(hex(inode.symlinkTarget ?? []) == target, "\(shown)")
            }
            let xattrs = Dictionary(
                uniqueKeysWithValues: image.xattrs(of: inode).map {
                    (String(decoding: $0.key, as: UTF8.self), hex($0.value))
                })
            #expect(xattrs == record["xattrs"] as! [String: String], "\(shown)")
            let identity = record["ino"] as! [Int]
            if let seen = inodeOf[identity] {
                #expect(seen == image.inodeID(of: entry), "\(shown) should be a hard link")
            }
            inodeOf[identity] = image.inodeID(of: entry)
            // Content: inline for 1…64 bytes, otherwise an object named by its fs-verity digest.
            if inode.type == .regular && inode.size > 64 {
                let object = try #require(inode.externalObject, "\(shown)")
                #expect(object.payload == object.digest.map { .object($0) })
                if let store, let digest = object.digest {
                    let objectPath = store.path + "/" + String(decoding: digest.objectPath, as: UTF8.self)
                    #expect(try FsVerity.digest(ofFile: objectPath) == digest, "\(shown)")
                    #expect(try FileStatus(path: objectPath).size == inode.size)
                }
            } else if inode.type == .regular {
                #expect(inode.inlineContent?.count == Int(inode.size), "\(shown)")
            }
        }
        // The primary path of a hard-link group is its first path in byte order.
        let link = try #require(image.lookup(path: Array("/a-first-link".utf8)))
        #expect(image.isPrimary(link))
        if let store {
            #expect(try store.verify().isClean)
            #expect(try store.verify(model: image).isClean)
            // big (×3 paths, one inode; a same-content copy), sparse, three 65…100-byte files
            #expect(result.objectsAdded == 5)
        }
        // The dump round-trips.
        #expect(try DumpParser.parse(DumpWriter.render(image), input: "ingested") == image)
    }

    @Test("a file that changes while it is hashed is refused, never recorded with a wrong digest")
    func changingFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let root = dir.path("tree")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/grows", contents: Data(repeating: 1, count: 10_000))
        var options = IngestOptions(storeMode: .copy)
        options.beforeHashing = { path in
            if let handle = FileHandle(forWritingAtPath: path) {
                handle.seekToEndOfFile()
                handle.write(Data([2]))
                try? handle.close()
            }
        }
        let store = try ObjectStore(path: dir.path("objects"), create: true)
        let error = try #require(throws: StoreError.self) {
            try Ingest.ingest(directory: root, store: store, options: options)
        }
        #expect(error.path.hasSuffix("/grows"))
        #expect(error.reason.contains("changed during ingest"))
        #expect(try store.verify().checked == 0)
        // No temporary file is left behind either.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.path("objects")).sorted() == [
                ".ovlcfs-store.json", ".ovlcfs-tmp",
            ])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("objects/.ovlcfs-tmp")) == [".lock"])
    }

    @Test(
        "hardlink mode refuses a store on another filesystem with a clear message",
        .enabled(if: FileManager.default.fileExists(atPath: "/dev/shm"), "no /dev/shm"))
    func hardlinkAcrossFilesystems() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let root = dir.path("tree")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/file", contents: Data(repeating: 1, count: 1000))
        let storePath = "/dev/shm/ovlcfs-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: storePath) }
        guard try FileStatus(path: "/dev/shm").device != FileStatus(path: root).device else { return }
        let store = try ObjectStore(path: storePath, create: true)
        let error = try #require(throws: StoreError.self) {
            try Ingest.ingest(directory: root, store: store, options: IngestOptions(storeMode: .hardlink))
        }
        #expect(error.reason.contains("same filesystem"))
    }

    @Test("the legacy layout hides exactly the store's private names")
    func privateNames() {
        #expect(OverlayTranslation.storePrivateNames == [ObjectStore.metadataName, ObjectStore.temporaryDirectoryName])
    }

    @Test("verify reports missing, wrong-size and wrong-digest objects by path")
    func verifyFindsDamage() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let root = dir.path("tree")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for i in 0..<3 {
            FileManager.default.createFile(atPath: root + "/f\(i)", contents: Data(repeating: UInt8(i), count: 5000))
        }
        let store = try ObjectStore(path: dir.path("objects"), create: true)
        let image = try Ingest.ingest(directory: root, store: store).image
        let objects = image.inodes.compactMap { $0.externalObject?.digest }.sorted()
        func objectPath(_ d: Digest) -> String { store.path + "/" + String(decoding: d.objectPath, as: UTF8.self) }
        try FileManager.default.removeItem(atPath: objectPath(objects[0]))
        try Data(repeating: 9, count: 5000).write(to: URL(fileURLWithPath: objectPath(objects[1])))
        try Data(repeating: 9, count: 10).write(to: URL(fileURLWithPath: objectPath(objects[2])))
        let report = try store.verify(model: image)
        #expect(report.missing == [objectPath(objects[0])])
        #expect(report.wrongDigest.count == 1 && report.wrongDigest[0].hasPrefix(objectPath(objects[1])))
        #expect(report.wrongSize.count == 1 && report.wrongSize[0].hasPrefix(objectPath(objects[2])))
        let whole = try store.verify()
        #expect(whole.wrongDigest.count == 2)
    }
}
