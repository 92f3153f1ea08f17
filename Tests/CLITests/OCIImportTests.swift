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
        case deepPath, hugeSparse, hugeXattrs, doubleGzip
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
        let crafted: [Damage: String] = [
            .dotDot: "dotdot", .symlinkThenFile: "symlink", .deepPath: "deep", .hugeSparse: "sparse",
            .hugeXattrs: "xattrs", .doubleGzip: "double",
        ]
        let dir = try image(crafted[damage])
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
        let layer = "layer 1/1 (sha256:\(layers[0].prefix(12)))"
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
        case .deepPath:
            expected = "\(layer): entry 'a/a/a/"
        case .hugeSparse:
            expected = "\(layer): entry 'huge': size 9223372036854775807 is larger than"
        case .hugeXattrs:
            expected = "\(layer): entry 'f0': xattr 'user.big': key or value too long"
        case .doubleGzip:
            expected = "\(layer): open the archive: Unrecognized archive format"
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

@Suite("OCI images in: platforms and compression")
struct OCIPlatformTests {
    @Test("an empty layer is no entries; a docker-archive config named '...' is just a name")
    func oddButValid() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        for kind in ["empty", "dockerdots"] {
            let made = try run("/usr/bin/python3", [OCIImportTests.makeImage, dir.url.path, kind])
            try #require(made.status == 0, "\(made.stderrText)")
        }
        let empty = try run(ovlcfs, ["inspect", "oci:" + dir.path("layout"), "--dump"])
        #expect(empty.status == 0, "\(empty.stderrText)")
        #expect(empty.stdoutText.split(separator: "\n").count == 1)
        let docker = try run(ovlcfs, ["inspect", "docker-archive:" + dir.path("docker.tar"), "--dump"])
        #expect(docker.status == 0, "\(docker.stderrText)")
        #expect(docker.stdoutText.contains("/f 7 100644"))
    }

    @Test("an image index: linux/amd64 by default, --platform picks another, an absent one is refused with the choices")
    func platforms() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let made = try run("/usr/bin/python3", [OCIImportTests.makeImage, dir.url.path, "multi"])
        try #require(made.status == 0, "\(made.stderrText)")
        for (platform, expected) in [(nil, "amd64"), ("linux/arm64", "arm64"), ("linux/arm64/v8", "arm64")] {
            let result = try run(
                ovlcfs,
                ["inspect", "oci:" + dir.path("layout") + ":multi", "--dump"]
                    + (platform.map { ["--platform", $0] } ?? []))
            #expect(result.status == 0, "\(result.stderrText)")
            #expect(
                result.stdoutText.contains("/arch \(expected.count + 1) 100644"),
                "\(platform ?? "default"): \(result.stdoutText)")
        }
        let absent = try run(
            ovlcfs,
            [
                "build", "oci:" + dir.path("layout"), "-o", dir.path("x.sqfs"), "--store-mode", "none", "--platform",
                "linux/s390x",
            ])
        #expect(absent.status != 0)
        #expect(
            absent.stderrText.contains("platform linux/s390x") && absent.stderrText.contains("linux/arm64/v8"),
            "\(absent.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("x.sqfs")))
    }

    @Test("tar: a rootfs tarball gives the same model plain, gzip, zstd and xz compressed")
    func compressions() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("tree/etc"), withIntermediateDirectories: true)
        try Data(repeating: 0x41, count: 100_000).write(to: URL(fileURLWithPath: dir.path("tree/etc/big")))
        try Data("small\n".utf8).write(to: URL(fileURLWithPath: dir.path("tree/etc/small")))
        let tar = try run("/bin/tar", ["--format=posix", "-C", dir.path("tree"), "-cf", dir.path("rootfs.tar"), "."])
        try #require(tar.status == 0)
        var dumps: [String] = []
        for (tool, suffix) in [(nil, ""), ("/bin/gzip", ".gz"), ("/usr/bin/zstd", ".zst"), ("/usr/bin/xz", ".xz")] {
            if let tool {
                guard FileManager.default.isExecutableFile(atPath: tool) else {
                    print("skipped \(suffix): no \(tool)")
                    continue
                }
                let compressed = try run(tool, ["-k", "-q", dir.path("rootfs.tar")])
                try #require(compressed.status == 0, "\(compressed.stderrText)")
            }
            let result = try run(ovlcfs, ["inspect", "tar:" + dir.path("rootfs.tar" + suffix), "--dump"])
            #expect(result.status == 0, "\(suffix): \(result.stderrText)")
            dumps.append(result.stdoutText)
        }
        #expect(dumps.count >= 3)
        #expect(Set(dumps).count == 1)
        #expect(dumps[0].contains("/etc/big 100000 100644"))
    }
}
