import Foundation
import TestSupport
import Testing

/// Mounts for real use (issue 15): `mount -t ovlcfs` through the installed helper, fstab,
/// plain umount(8), writable upper layers and pinned image digests. Root only; the helper is
/// linked as /usr/sbin/mount.ovlcfs for the test and removed again.
@Suite("mount -t ovlcfs, writable mounts, pinned digests", .serialized)
struct ProductionMountTests {
    static let helper = "/usr/sbin/mount.ovlcfs"
    static var skip: String? {
        guard HostCapabilities.canMountSquashfsOverlay else { return HostCapabilities.mountSkipReason }
        if let existing = try? FileManager.default.destinationOfSymbolicLink(atPath: helper), existing != ovlcfs {
            return "\(helper) is another program (\(existing)); not replacing it"
        }
        if FileManager.default.fileExists(atPath: helper)
            && (try? FileManager.default.destinationOfSymbolicLink(atPath: helper)) == nil
        {
            return "\(helper) exists and is not ours"
        }
        return nil
    }

    /// A tree (files over and under the inline threshold, a directory to rename, one to
    /// delete) built into `i.sqfs`, `i.cfs` and the verity disk `i.raw` with its objects.
    func fixture() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        for (path, text) in [
            ("tree/etc/config", String(repeating: "setting=1\n", count: 20)), ("tree/etc/small", "tiny\n"),
            ("tree/data/a/file", String(repeating: "a", count: 5000)),
            ("tree/gone/x", String(repeating: "x", count: 300)),
            ("tree/bin/tool", String(repeating: "#!\n", count: 100)),
        ] {
            let url = URL(fileURLWithPath: dir.path(path))
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        for (output, extra) in [("i.sqfs", [String]()), ("i.cfs", ["--format", "composefs"]), ("i.raw", ["--disk"])] {
            let built = try run(
                ovlcfs,
                ["build", dir.path("tree"), "-o", dir.path(output), "--objects", dir.path("objects"), "--quiet"] + extra
            )
            try #require(built.status == 0, "\(built.stderrText)")
        }
        for name in ["mnt", "state", "upper", "work"] {
            try FileManager.default.createDirectory(atPath: dir.path(name), withIntermediateDirectories: true)
        }
        return dir
    }

    func cleanUp(_ dir: TemporaryDirectory) {
        for _ in 0..<3 where TestMounts.isMounted(dir.path("mnt")) { _ = try? run("/bin/umount", [dir.path("mnt")]) }
        _ = try? run(ovlcfs, ["umount", "--all", "--state-directory", dir.path("state")])
        dir.cleanup()
    }

    /// Runs `body` with the helper installed where mount(8) looks, removed afterwards.
    func withHelper(_ body: () throws -> Void) throws {
        let installed = !FileManager.default.fileExists(atPath: Self.helper)
        if installed { try FileManager.default.createSymbolicLink(atPath: Self.helper, withDestinationPath: ovlcfs) }
        defer { if installed { try? FileManager.default.removeItem(atPath: Self.helper) } }
        try body()
    }

    /// Runs a command with the test's state directory for the helper.
    func runWithState(_ dir: TemporaryDirectory, _ executable: String, _ arguments: [String]) throws -> ProcessResult {
        setenv("OVLCFS_STATE_DIRECTORY", dir.path("state"), 1)
        defer { unsetenv("OVLCFS_STATE_DIRECTORY") }
        return try run(executable, arguments)
    }

    func walk(_ path: String, seconds: Bool) throws -> [Substring] {
        let result = try run(
            "/usr/bin/python3", [TestPaths.fixture("walk_tree.py").path, path] + (seconds ? ["--seconds"] : []))
        return result.stdoutText.split(separator: "\n").filter { !$0.hasPrefix("/ ") }
    }

    func records(_ dir: TemporaryDirectory) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: dir.path("state/mounts"))) ?? []
    }

    @Test(
        "mount -t ovlcfs of a .sqfs, a .cfs and a verity disk shows the tree; plain umount leaves no loop, mount or record"
    )
    func mountHelper() throws {
        if let skip = Self.skip {
            print("skipped: \(skip)")
            return
        }
        let dir = try fixture()
        defer { cleanUp(dir) }
        try withHelper {
            for (image, seconds) in [("i.sqfs", true), ("i.cfs", false), ("i.raw", true)] {
                let mount = try runWithState(
                    dir, "/bin/mount",
                    ["-t", "ovlcfs", dir.path(image), dir.path("mnt"), "-o", "objects=\(dir.path("objects"))"])
                try #require(mount.status == 0, "\(image): \(mount.stderrText)")
                #expect(
                    try walk(dir.path("mnt"), seconds: seconds) == walk(dir.path("tree"), seconds: seconds), "\(image)")
                #expect(records(dir).count == 1)
                let umount = try run("/bin/umount", [dir.path("mnt")])
                #expect(umount.status == 0, "\(umount.stderrText)")
                #expect(nothingLeft(under: dir.url.path).isEmpty, "\(image): \(nothingLeft(under: dir.url.path))")
                // The record a plain umount leaves is dropped by the next ovlcfs command.
                _ = try run(ovlcfs, ["status", "--state-directory", dir.path("state")])
                #expect(records(dir).isEmpty, "\(image): \(records(dir))")
            }
            let unknown = try runWithState(
                dir, "/bin/mount",
                ["-t", "ovlcfs", dir.path("i.sqfs"), dir.path("mnt"), "-o", "objects=\(dir.path("objects")),bogus"])
            #expect(unknown.status != 0)
            #expect(unknown.stderrText.contains("unknown option 'bogus'"), "\(unknown.stderrText)")
            #expect(!TestMounts.isMounted(dir.path("mnt")))
            // An fstab line.
            let fstab = dir.path("fstab")
            try "\(dir.path("i.sqfs")) \(dir.path("mnt")) ovlcfs objects=\(dir.path("objects")),nofail,x-test=1 0 0\n"
                .write(
                    toFile: fstab, atomically: true, encoding: .utf8)
            let fromFstab = try runWithState(dir, "/bin/mount", ["--fstab", fstab, dir.path("mnt")])
            #expect(fromFstab.status == 0, "\(fromFstab.stderrText)")
            #expect(try String(contentsOfFile: dir.path("mnt/etc/small"), encoding: .utf8) == "tiny\n")
            #expect(try run("/bin/umount", [dir.path("mnt")]).status == 0)
            #expect(nothingLeft(under: dir.url.path).isEmpty)
        }
    }

    func sha256(_ path: String) throws -> String {
        try run("/usr/bin/sha256sum", [path]).stdoutText.split(separator: " ").first.map(String.init) ?? ""
    }

    @Test("writable: edits, deletes, creates and renames land in the upper directory; image and objects never change")
    func writable() throws {
        if let skip = Self.skip {
            print("skipped: \(skip)")
            return
        }
        let dir = try fixture()
        defer { cleanUp(dir) }
        let objects = try FileManager.default.subpathsOfDirectory(atPath: dir.path("objects")).filter { $0.count == 65 }
        let before = try objects.map { try sha256(dir.path("objects/" + $0)) }
        let imageBefore = try sha256(dir.path("i.sqfs"))
        let writable = [
            "mount", dir.path("i.sqfs"), dir.path("mnt"), "--objects", dir.path("objects"), "--verity", "off",
            "--state-directory", dir.path("state"), "--upperdir", dir.path("upper"), "--workdir", dir.path("work"),
        ]
        let mount = try run(ovlcfs, writable)
        try #require(mount.status == 0, "\(mount.stderrText)")
        let mnt = dir.path("mnt")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: mnt + "/data/a/file"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("appended\n".utf8))
        try handle.close()
        try FileManager.default.removeItem(atPath: mnt + "/etc/config")
        try FileManager.default.removeItem(atPath: mnt + "/gone")
        try Data("new\n".utf8).write(to: URL(fileURLWithPath: mnt + "/etc/new"))
        try FileManager.default.moveItem(atPath: mnt + "/data", toPath: mnt + "/renamed")
        func check(_ label: String) throws {
            #expect(
                try String(contentsOfFile: mnt + "/renamed/a/file", encoding: .utf8).hasSuffix("appended\n"), "\(label)"
            )
            #expect(!FileManager.default.fileExists(atPath: mnt + "/etc/config"), "\(label)")
            #expect(!FileManager.default.fileExists(atPath: mnt + "/gone"), "\(label)")
            #expect(!FileManager.default.fileExists(atPath: mnt + "/data"), "\(label)")
            #expect(try String(contentsOfFile: mnt + "/etc/new", encoding: .utf8) == "new\n", "\(label)")
        }
        try check("while mounted")
        #expect(try run(ovlcfs, ["umount", mnt, "--state-directory", dir.path("state")]).status == 0)
        #expect(try objects.map { try sha256(dir.path("objects/" + $0)) } == before, "an object was written")
        #expect(try sha256(dir.path("i.sqfs")) == imageBefore, "the image was written")
        #expect(try run(ovlcfs, writable).status == 0)
        try check("mounted again with the upper")
        #expect(try run(ovlcfs, ["umount", mnt, "--state-directory", dir.path("state")]).status == 0)
        let plain = try run(
            ovlcfs,
            [
                "mount", dir.path("i.sqfs"), mnt, "--objects", dir.path("objects"), "--verity", "off",
                "--state-directory", dir.path("state"),
            ])
        #expect(plain.status == 0, "\(plain.stderrText)")
        #expect(
            try walk(mnt, seconds: true) == walk(dir.path("tree"), seconds: true),
            "without the upper: the image as built")
        #expect(try run(ovlcfs, ["umount", mnt, "--state-directory", dir.path("state")]).status == 0)
        // Refusals: an upper inside the objects store, a workdir elsewhere than the upper's filesystem.
        try FileManager.default.createDirectory(atPath: dir.path("objects/upper"), withIntermediateDirectories: true)
        var inside = writable
        inside[inside.firstIndex(of: dir.path("upper"))!] = dir.path("objects/upper")
        let refused = try run(ovlcfs, inside)
        #expect(refused.status != 0 && refused.stderrText.contains("overlap"), "\(refused.stderrText)")
        var otherFS = writable
        otherFS[otherFS.firstIndex(of: dir.path("work"))!] = "/dev/shm"
        let elsewhere = try run(ovlcfs, otherFS)
        #expect(elsewhere.status != 0 && elsewhere.stderrText.contains("another filesystem"), "\(elsewhere.stderrText)")
        #expect(nothingLeft(under: dir.url.path).isEmpty)
    }

    @Test("digest: the right one mounts, a wrong one mounts nothing")
    func digest() throws {
        if let skip = Self.skip {
            print("skipped: \(skip)")
            return
        }
        let dir = try fixture()
        defer { cleanUp(dir) }
        for image in ["i.sqfs", "i.cfs", "i.raw"] {
            let digest = try run(ovlcfs, ["digest", "--compact", dir.path(image)]).stdoutText.trimmingCharacters(
                in: .whitespacesAndNewlines)
            let base = [
                "mount", dir.path(image), dir.path("mnt"), "--objects", dir.path("objects"), "--verity", "off",
                "--state-directory", dir.path("state"),
            ]
            let wrong = try run(ovlcfs, base + ["--digest", String(repeating: "0", count: 64)])
            #expect(wrong.status != 0 && wrong.stderrText.contains("not the 0000"), "\(image): \(wrong.stderrText)")
            #expect(nothingLeft(under: dir.url.path).isEmpty)
            let right = try run(ovlcfs, base + ["--digest", digest])
            #expect(right.status == 0, "\(image): \(right.stderrText)")
            #expect(try String(contentsOfFile: dir.path("mnt/etc/small"), encoding: .utf8) == "tiny\n")
            #expect(try run(ovlcfs, ["umount", dir.path("mnt"), "--state-directory", dir.path("state")]).status == 0)
        }
        #expect(nothingLeft(under: dir.url.path).isEmpty)
    }

    @Test("mount.ovlcfs options: what libmount passes is taken, privilege and loop options refused, -f plans only")
    func helperOptions() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("mnt"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        let example = try run(ovlcfs, ["inspect", "--example", "--dump", "-o", dir.path("m.dump")])
        try #require(example.status == 0)
        try #require(try run(ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("i.sqfs")]).status == 0)
        let helper = dir.path("mount.ovlcfs")
        try FileManager.default.createSymbolicLink(atPath: helper, withDestinationPath: ovlcfs)
        let base = [dir.path("i.sqfs"), dir.path("mnt"), "-f", "-o"]
        let objects = "objects=\(dir.path("objects"))"
        let fake = try run(helper, base + ["rw,\(objects),nosuid,nodev,noatime,_netdev,x-systemd.automount,verity=off"])
        #expect(fake.status == 0, "\(fake.stderrText)")
        #expect(fake.stdoutText.contains("overlay lowerdir+=LOWER"), "\(fake.stdoutText)")
        for (options, message) in [
            ("\(objects),loop", "option 'loop' is not supported"),
            ("\(objects),user", "option 'user' is not supported"),
            ("\(objects),frobnicate", "unknown option 'frobnicate'"), ("verity", "objects=DIR is required"),
            ("\(objects),digest=12", "digest= takes 64 hex digits"),
        ] {
            let refused = try run(helper, base + [options])
            #expect(refused.status == 1, "\(options): \(refused.status)")
            #expect(refused.stderrText.contains(message), "\(options): \(refused.stderrText)")
        }
        let sloppy = try run(helper, base + ["\(objects),frobnicate", "-s"])
        #expect(sloppy.status == 0, "\(sloppy.stderrText)")
        let help = try run(helper, ["--help"])
        #expect(help.status == 0 && help.stdoutText.contains("objects=DIR"))
    }
}
