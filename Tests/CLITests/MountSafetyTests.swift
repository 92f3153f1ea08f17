import Foundation
import TestSupport
import Testing

/// Real mounts, as root: concurrent mounts of one target, targets through symlinks, foreign
/// mounts (issue 12 #3, #4). Everything is undone, also when a check fails.
@Suite(
    "mount safety on the real kernel", .serialized,
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: ovlcfs) && HostCapabilities.canMountSquashfsOverlay,
        "needs root, /dev/loop-control and the squashfs and overlay filesystems"))
struct MountSafetyTests {
    /// A small squashfs image, an objects directory, a mount point and a state directory.
    func fixture() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        for name in ["objects", "mnt"] {
            try FileManager.default.createDirectory(atPath: dir.path(name), withIntermediateDirectories: true)
        }
        let built = try run(ovlcfs, ["inspect", "--example", "--dump", "-o", dir.path("m.dump")])
        #expect(built.status == 0, "\(built.stderrText)")
        let image = try run(ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("i.sqfs")])
        #expect(image.status == 0, "\(image.stderrText)")
        return dir
    }

    func mountArguments(_ dir: TemporaryDirectory, target: String) -> [String] {
        [
            "mount", dir.path("i.sqfs"), target, "--objects", dir.path("objects"), "--verity", "off",
            "--state-directory", dir.path("state"),
        ]
    }

    func cleanUp(_ dir: TemporaryDirectory) {
        _ = try? run(ovlcfs, ["umount", "--all", "--state-directory", dir.path("state")])
        for _ in 0..<3 where TestMounts.isMounted(dir.path("mnt")) { _ = try? run("/bin/umount", [dir.path("mnt")]) }
        dir.cleanup()
    }

    @Test("two mounts of one target at the same time: exactly one wins, and umount leaves nothing (10 rounds)")
    func concurrentMounts() throws {
        let dir = try fixture()
        defer { cleanUp(dir) }
        for round in 0..<10 {
            let results = try [0, 1].map { _ -> Process in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: ovlcfs)
                process.arguments = mountArguments(dir, target: dir.path("mnt"))
                process.standardError = FileHandle.nullDevice
                process.standardOutput = FileHandle.nullDevice
                return process
            }
            for process in results { try process.run() }
            for process in results { process.waitUntilExit() }
            let wins = results.filter { $0.terminationStatus == 0 }.count
            #expect(wins == 1, "round \(round): \(wins) mounts succeeded")
            let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            #expect(
                mountinfo.split(separator: "\n").filter {
                    $0.split(separator: " ").dropFirst(4).first.map(String.init) == dir.path("mnt")
                }.count == 1)
            let umount = try run(ovlcfs, ["umount", dir.path("mnt"), "--state-directory", dir.path("state")])
            #expect(umount.status == 0, "\(umount.stderrText)")
            #expect(nothingLeft(under: dir.url.path).isEmpty, "round \(round): \(nothingLeft(under: dir.url.path))")
        }
    }

    @Test("a target through a symlinked directory mounts and unmounts completely")
    func symlinkedTarget() throws {
        let dir = try fixture()
        defer { cleanUp(dir) }
        try FileManager.default.createSymbolicLink(atPath: dir.path("via"), withDestinationPath: dir.url.path)
        let mount = try run(ovlcfs, mountArguments(dir, target: dir.path("via/mnt")))
        #expect(mount.status == 0, "\(mount.stderrText)")
        #expect(TestMounts.isMounted(dir.path("mnt")))
        let umount = try run(ovlcfs, ["umount", dir.path("via/mnt"), "--state-directory", dir.path("state")])
        #expect(umount.status == 0, "\(umount.stderrText)")
        #expect(nothingLeft(under: dir.url.path).isEmpty, "\(nothingLeft(under: dir.url.path))")
    }

    @Test("someone else's mount is never unmounted: without a record, or in place of a recorded one")
    func foreignMounts() throws {
        let dir = try fixture()
        defer { cleanUp(dir) }
        let tmpfs = try run("/bin/mount", ["-t", "tmpfs", "none", dir.path("mnt")])
        try #require(tmpfs.status == 0, "\(tmpfs.stderrText)")
        let refused = try run(ovlcfs, ["umount", dir.path("mnt"), "--state-directory", dir.path("state")])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("not by ovlcfs"), "\(refused.stderrText)")
        #expect(TestMounts.isMounted(dir.path("mnt")))
        _ = try run("/bin/umount", [dir.path("mnt")])
        // Mounted by ovlcfs, then unmounted behind its back and replaced by a tmpfs.
        #expect(try run(ovlcfs, mountArguments(dir, target: dir.path("mnt"))).status == 0)
        #expect(try run("/bin/umount", [dir.path("mnt")]).status == 0)
        #expect(try run("/bin/mount", ["-t", "tmpfs", "none", dir.path("mnt")]).status == 0)
        let status = try run(ovlcfs, ["status", "--state-directory", dir.path("state")])
        #expect(status.stdoutText.contains("STALE"), "\(status.stdoutText)")
        let all = try run(ovlcfs, ["umount", "--all", "--state-directory", dir.path("state")])
        #expect(all.status != 0)
        #expect(TestMounts.isMounted(dir.path("mnt")), "umount --all unmounted a foreign tmpfs")
        _ = try run("/bin/umount", [dir.path("mnt")])
        let after = try run(ovlcfs, ["status", "--state-directory", dir.path("state")])
        #expect(after.stdoutText.contains("no ovlcfs mounts"), "\(after.stdoutText)")
    }

    @Test("kill -9 at any moment of a mount, then umount --all: nothing mounted, attached or recorded (12 moments)")
    func killedMounts() throws {
        let dir = try fixture()
        defer { cleanUp(dir) }
        for round in 0..<12 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ovlcfs)
            process.arguments = mountArguments(dir, target: dir.path("mnt"))
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: Double(round) * 0.004)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            _ = try run(ovlcfs, ["umount", "--all", "--state-directory", dir.path("state")])
            #expect(nothingLeft(under: dir.url.path).isEmpty, "round \(round): \(nothingLeft(under: dir.url.path))")
            let status = try run(ovlcfs, ["status", "--state-directory", dir.path("state")])
            #expect(status.stdoutText.contains("no ovlcfs mounts"), "round \(round): \(status.stdoutText)")
        }
    }

    @Test("a tmpfs mounted over an ovlcfs mount: umount refuses and keeps the record; after it goes, umount works")
    func coveredMount() throws {
        let dir = try fixture()
        defer { cleanUp(dir) }
        #expect(try run(ovlcfs, mountArguments(dir, target: dir.path("mnt"))).status == 0)
        #expect(try run("/bin/mount", ["-t", "tmpfs", "none", dir.path("mnt")]).status == 0)
        let refused = try run(ovlcfs, ["umount", dir.path("mnt"), "--state-directory", dir.path("state")])
        #expect(refused.status != 0)
        #expect(refused.stderrText.contains("mounted over"), "\(refused.stderrText)")
        let status = try run(ovlcfs, ["status", "--state-directory", dir.path("state")])
        #expect(status.stdoutText.contains("\tmounted"), "\(status.stdoutText)")
        #expect(try run("/bin/umount", [dir.path("mnt")]).status == 0)
        let umount = try run(ovlcfs, ["umount", dir.path("mnt"), "--state-directory", dir.path("state")])
        #expect(umount.status == 0, "\(umount.stderrText)")
        #expect(nothingLeft(under: dir.url.path).isEmpty, "\(nothingLeft(under: dir.url.path))")
    }

    @Test("a parent directory swapped for a symlink never redirects umount to another mount")
    func swappedParent() throws {
        let dir = try fixture()
        defer {
            _ = try? run("/bin/umount", [dir.path("victim/mnt")])
            _ = try? run("/bin/umount", [dir.path("a.old/mnt")])
            cleanUp(dir)
        }
        for path in ["a/mnt", "victim/mnt"] {
            try FileManager.default.createDirectory(atPath: dir.path(path), withIntermediateDirectories: true)
        }
        #expect(try run(ovlcfs, mountArguments(dir, target: dir.path("a/mnt"))).status == 0)
        #expect(try run("/bin/mount", ["-t", "tmpfs", "none", dir.path("victim/mnt")]).status == 0)
        try FileManager.default.moveItem(atPath: dir.path("a"), toPath: dir.path("a.old"))
        try FileManager.default.createSymbolicLink(atPath: dir.path("a"), withDestinationPath: dir.path("victim"))
        let result = try run(ovlcfs, ["umount", dir.path("a/mnt"), "--state-directory", dir.path("state")])
        #expect(result.status != 0)
        #expect(TestMounts.isMounted(dir.path("victim/mnt")), "the tmpfs behind the symlink was unmounted")
    }
}
