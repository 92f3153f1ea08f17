import Foundation
import TestSupport
import Testing

/// `oci:`, `oci-archive:`, `docker-archive:` and `tar:` sources (issue 14), against images made
/// by real tools: GNU tar, Python's tarfile, umoci and skopeo. Needs root (the test image has
/// device nodes, owners and security.capability) and umoci/skopeo/setfattr.
@Suite("OCI images in", .serialized)
struct OCIImportTests {
    static let makeImage = TestPaths.fixture("make_oci_image.py").path
    static let walkTree = TestPaths.fixture("walk_tree.py").path
    static let tools = ["/usr/bin/umoci", "/usr/bin/skopeo", "/usr/bin/setfattr", "/usr/bin/fsverity"]
    static var missing: String? {
        if !HostCapabilities.isRoot { return "needs root: the test image has device nodes, owners and capabilities" }
        if let tool = tools.first(where: { !FileManager.default.isExecutableFile(atPath: $0) }) {
            return "needs \(tool) (scripts/setup installs it)"
        }
        return nil
    }

    /// A directory with the three-layer test image at `layout` (tag `test`).
    func image(_ hostile: String? = nil) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        let made = try run("/usr/bin/python3", [Self.makeImage, dir.url.path] + (hostile.map { [$0] } ?? []))
        try #require(made.status == 0, "\(made.stderrText)")
        return dir
    }

    /// A dump with every directory's size zeroed (directory ingest records what the filesystem
    /// reports for a directory, which no image keeps) and the root's own line left out.
    func comparable(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").dropFirst().map { line in
            var fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            if fields.count > 2, fields[2].hasPrefix("4") { fields[1] = "0" }
            return fields.joined(separator: " ")
        }
    }

    @Test("oci:, oci-archive: and docker-archive: give the model of umoci unpack's rootfs, dump line for dump line")
    func sameModelAsUmoci() throws {
        if let missing = Self.missing {
            print("skipped: \(missing)")
            return
        }
        let dir = try image()
        defer { dir.cleanup() }
        let unpack = try run("/usr/bin/umoci", ["unpack", "--image", dir.path("layout") + ":test", dir.path("bundle")])
        try #require(unpack.status == 0, "\(unpack.stderrText)")
        let ingest = try run(
            ovlcfs,
            [
                "build", dir.path("bundle/rootfs"), "-o", dir.path("dir.sqfs"), "--store-mode", "none", "--dump-out",
                dir.path("dir.dump"), "--quiet",
            ])
        try #require(ingest.status == 0, "\(ingest.stderrText)")
        let expected = try comparable(dir.path("dir.dump"))
        #expect(expected.count == 28)

        let archive = try run("/bin/tar", ["-C", dir.path("layout"), "-cf", dir.path("image.oci.tar"), "."])
        try #require(archive.status == 0)
        let docker = try run(
            "/usr/bin/skopeo",
            [
                "copy", "--quiet", "oci:" + dir.path("layout") + ":test",
                "docker-archive:" + dir.path("image.docker.tar") + ":example/test:1",
            ])
        try #require(docker.status == 0, "\(docker.stderrText)")
        let sources = [
            "oci:\(dir.path("layout")):test", "oci:\(dir.path("layout"))",
            "oci-archive:\(dir.path("image.oci.tar")):test", "docker-archive:\(dir.path("image.docker.tar"))",
            "docker-archive:\(dir.path("image.docker.tar")):example/test:1",
        ]
        for (index, source) in sources.enumerated() {
            let built = try run(
                ovlcfs,
                [
                    "build", source, "-o", dir.path("oci\(index).sqfs"), "--objects", dir.path("objects"),
                    "--dump-out", dir.path("oci\(index).dump"), "--quiet",
                ])
            try #require(built.status == 0, "\(source): \(built.stderrText)")
            #expect(try comparable(dir.path("oci\(index).dump")) == expected, "\(source)")
        }
        // Every object is named by the digest fsverity(1) computes.
        let objects = try FileManager.default.subpathsOfDirectory(atPath: dir.path("objects")).filter {
            $0.count == 65 && $0.dropFirst(2).first == "/"
        }
        #expect(objects.count == 12)
        for object in objects {
            let digest = try run("/usr/bin/fsverity", ["digest", "--compact", dir.path("objects/" + object)])
            #expect(
                digest.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                    == object.replacingOccurrences(of: "/", with: ""))
        }
    }

    /// What a hostile or damaged image does to the layout in `dir`.
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case oneByte, missingBlob, missingConfig, truncatedGzip, dotDot, symlinkThenFile
        var testDescription: String { rawValue }
    }

    @Test(
        "a damaged or hostile image is refused, naming the blob or entry; no output, nothing outside the store",
        arguments: Damage.allCases)
    func refused(_ damage: Damage) throws {
        if let missing = Self.missing {
            print("skipped: \(missing)")
            return
        }
        let dir = try image(damage == .dotDot ? "dotdot" : damage == .symlinkThenFile ? "symlink" : nil)
        defer { dir.cleanup() }
        let blobs = dir.path("layout/blobs/sha256")
        let index =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: dir.path("layout/index.json")))) as! [String: Any]
        let manifestDigest = ((index["manifests"] as! [[String: Any]])[0]["digest"] as! String).dropFirst(7)
        let manifest =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(blobs)/\(manifestDigest)")))
            as! [String: Any]
        let layers = (manifest["layers"] as! [[String: Any]]).map { String(($0["digest"] as! String).dropFirst(7)) }
        let expected: String
        switch damage {
        case .oneByte:
            // The gzip header's mtime: the stream still decompresses, only the digest tells.
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: "\(blobs)/\(layers[1])"))
            try handle.seek(toOffset: 4)
            try handle.write(contentsOf: Data([0x01]))
            try handle.close()
            expected = "layer 2/3 (sha256:\(layers[1].prefix(12))) fails verification"
        case .missingBlob:
            try FileManager.default.removeItem(atPath: "\(blobs)/\(layers[0])")
            expected = "missing layer 1 blob sha256:\(layers[0])"
        case .missingConfig:
            var edited = manifest
            var config = manifest["config"] as! [String: Any]
            config["digest"] = "sha256:" + String(repeating: "ab", count: 32)
            edited["config"] = config
            let bytes = try JSONSerialization.data(withJSONObject: edited)
            let digest = try run("/usr/bin/sha256sum", [], input: [UInt8](bytes)).stdoutText.prefix(64)
            try bytes.write(to: URL(fileURLWithPath: "\(blobs)/\(digest)"))
            var descriptor = (index["manifests"] as! [[String: Any]])[0]
            descriptor["digest"] = "sha256:\(digest)"
            descriptor["size"] = bytes.count
            try JSONSerialization.data(withJSONObject: ["schemaVersion": 2, "manifests": [descriptor]]).write(
                to: URL(fileURLWithPath: dir.path("layout/index.json")))
            expected = "missing config sha256:" + String(repeating: "ab", count: 32)
        case .truncatedGzip:
            let path = "\(blobs)/\(layers[0])"
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
            try FileHandle(forUpdating: URL(fileURLWithPath: path)).truncate(atOffset: UInt64(size / 2))
            expected = "layer 1/3 (sha256:\(layers[0].prefix(12)))"
        case .dotDot:
            expected = "entry '../escaped': its path has a '..' component"
        case .symlinkThenFile:
            expected = "entry 'etc2/planted': its parent etc2 is a symlink, not a directory"
        }
        let before = try FileManager.default.subpathsOfDirectory(atPath: dir.url.path).sorted()
        let result = try run(
            ovlcfs,
            [
                "build", "oci:" + dir.path("layout"), "-o", dir.path("out.sqfs"), "--objects", dir.path("objects"),
                "--dump-out", dir.path("out.dump"),
            ])
        #expect(result.status != 0)
        #expect(result.stderrText.contains(expected), "\(result.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("out.sqfs")))
        #expect(!FileManager.default.fileExists(atPath: dir.path("out.dump")))
        #expect(
            !FileManager.default.fileExists(atPath: "/tmp/planted")
                && !FileManager.default.fileExists(atPath: "/tmp/escaped"))
        let after = try FileManager.default.subpathsOfDirectory(atPath: dir.url.path).sorted()
        #expect(after.filter { !$0.hasPrefix("objects") } == before, "written outside the store")
    }

    @Test("a mounted OCI import (squashfs and composefs) shows what umoci unpack shows")
    func mountedLikeUmoci() throws {
        if let missing = Self.missing
            ?? (HostCapabilities.canMountSquashfsOverlay ? nil : HostCapabilities.mountSkipReason)
        {
            print("skipped: \(missing)")
            return
        }
        let dir = try image()
        defer {
            _ = try? run(ovlcfs, ["umount", "--all", "--state-directory", dir.path("state")])
            dir.cleanup()
        }
        let unpack = try run("/usr/bin/umoci", ["unpack", "--image", dir.path("layout") + ":test", dir.path("bundle")])
        try #require(unpack.status == 0, "\(unpack.stderrText)")
        for (format, file, seconds) in [("squashfs", "i.sqfs", true), ("composefs", "i.cfs", false)] {
            let built = try run(
                ovlcfs,
                [
                    "build", "oci:" + dir.path("layout"), "-o", dir.path(file), "--format", format, "--objects",
                    dir.path("objects"), "--quiet",
                ])
            try #require(built.status == 0, "\(built.stderrText)")
            try FileManager.default.createDirectory(
                atPath: dir.path("mnt-" + format), withIntermediateDirectories: true)
            let mount = try run(
                ovlcfs,
                [
                    "mount", dir.path(file), dir.path("mnt-" + format), "--objects", dir.path("objects"), "--verity",
                    "off", "--state-directory", dir.path("state"),
                ])
            try #require(mount.status == 0, "\(mount.stderrText)")
            let flags = seconds ? ["--seconds"] : []
            let mounted = try run("/usr/bin/python3", [Self.walkTree, dir.path("mnt-" + format)] + flags)
            let unpacked = try run("/usr/bin/python3", [Self.walkTree, dir.path("bundle/rootfs")] + flags)
            #expect(mounted.status == 0 && unpacked.status == 0)
            // The root's own metadata aside.
            let lines = { (text: String) in text.split(separator: "\n").filter { !$0.hasPrefix("/ ") } }
            #expect(lines(mounted.stdoutText) == lines(unpacked.stdoutText), "\(format)")
            #expect(lines(mounted.stdoutText).count == 28)
            let umount = try run(ovlcfs, ["umount", dir.path("mnt-" + format), "--state-directory", dir.path("state")])
            #expect(umount.status == 0, "\(umount.stderrText)")
        }
        #expect(nothingLeft(under: dir.url.path).isEmpty)
    }
}
