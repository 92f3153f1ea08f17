import Foundation
import TestSupport
import Testing

/// Inputs an attacker would hand a root tool (issue 12): each must end in a clear error and
/// touch nothing outside the command's outputs, store and work directory.
@Suite(
    "hostile inputs to the command line",
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct HostileInputTests {
    static let root = "/ 4096 40755 2 0 0 0 0.0 - - -\n"

    /// Replaces every occurrence of `old` by `new` (same length) in a file's bytes.
    func patch(_ path: String, _ old: String, _ new: String) throws -> Int {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let (o, n) = (Array(old.utf8), Array(new.utf8))
        precondition(o.count == n.count)
        var count = 0, i = 0
        while i + o.count <= bytes.count {
            if bytes[i] == o[0] && Array(bytes[i..<i + o.count]) == o {
                bytes.replaceSubrange(i..<i + o.count, with: n)
                count += 1
                i += o.count
            } else {
                i += 1
            }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return count
    }

    @Test(
        "#1 an image whose redirect climbs out of the store is refused by every reader; nothing outside is hashed",
        arguments: [["--format", "composefs"], ["--compression", "none"]])
    func traversalPayload(format: [String]) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try (Self.root + "/f 5 100644 1 0 0 0 0.0 zz/zz/zz/zz/victim - -\n").write(
            toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        let built = try run(ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("evil.img")] + format)
        #expect(built.status == 0, "\(built.stderrText)")
        #expect(try patch(dir.path("evil.img"), "zz/zz/zz/zz/", "../../../../") >= 1)
        try FileManager.default.createDirectory(atPath: dir.path("store/a/b/c"), withIntermediateDirectories: true)
        try "secret".write(toFile: dir.path("victim"), atomically: true, encoding: .utf8)
        for arguments in [
            ["inspect", dir.path("evil.img")], ["verify", "--objects", dir.path("store"), dir.path("evil.img")],
            ["build", dir.path("evil.img"), "-o", dir.path("again.sqfs")],
        ] {
            let result = try run(ovlcfs, arguments)
            #expect(result.status != 0, "\(arguments) accepted a payload out of the store")
            #expect(result.stderrText.contains("'..'"), "\(arguments): \(result.stderrText)")
            #expect(!result.stdoutText.contains("checked"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path("again.sqfs")))
        #expect(try String(contentsOfFile: dir.path("victim"), encoding: .utf8) == "secret")
    }

    @Test("#2 an output that is a device, a FIFO or a symlink is refused and left as it was")
    func specialOutputs() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try (Self.root + "/f 3 100644 1 0 0 0 0.0 - abc -\n").write(
            toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        try "keep".write(toFile: dir.path("target"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir.path("link"), withDestinationPath: dir.path("target"))
        #expect(mkfifo(dir.path("fifo"), 0o644) == 0)
        for (output, extra) in [
            ("/dev/null", [String]()), (dir.path("link"), []), (dir.path("fifo"), []),
            (dir.path("link"), ["--format", "composefs"]),
        ] {
            let result = try run(ovlcfs, ["build", dir.path("m.dump"), "-o", output] + extra)
            #expect(result.status != 0, "wrote over \(output)")
            #expect(result.stderrText.contains("replaces only regular files"), "\(result.stderrText)")
        }
        let dumpOut = try run(ovlcfs, ["inspect", dir.path("m.dump"), "--dump", "-o", dir.path("link")])
        #expect(dumpOut.status != 0)
        var st = stat()
        #expect(lstat("/dev/null", &st) == 0 && st.st_mode & S_IFMT == S_IFCHR)
        #expect(lstat(dir.path("link"), &st) == 0 && st.st_mode & S_IFMT == S_IFLNK)
        #expect(try String(contentsOfFile: dir.path("target"), encoding: .utf8) == "keep")
        #expect(lstat(dir.path("fifo"), &st) == 0 && st.st_mode & S_IFMT == S_IFIFO)
    }

    @Test("#8 a line without a newline is refused once it passes the line limit, not buffered without end")
    func endlessLine() throws {
        let result = try run(ovlcfs, ["inspect", "-"], input: [UInt8](repeating: UInt8(ascii: "a"), count: 3 << 20))
        #expect(result.status != 0)
        #expect(result.stderrText.contains("longer than 262144 bytes"), "\(result.stderrText)")
        let zero = try run(ovlcfs, ["inspect", "/dev/zero"])
        #expect(zero.status != 0)
    }

    @Test("#14 a gzip dump cut short is an error, never a model of what was read")
    func truncatedGzip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var dump = Self.root
        for i in 0..<500 { dump += "/file\(i) 3 100644 1 0 0 0 0.0 - abc -\n" }
        try dump.write(toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        #expect(try run("/bin/gzip", ["-k", dir.path("m.dump")]).status == 0)
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir.path("m.dump.gz")))
        for cut in [4, 8, whole.count / 2] {
            try whole.prefix(whole.count - cut).write(to: URL(fileURLWithPath: dir.path("cut.gz")))
            let result = try run(ovlcfs, ["inspect", dir.path("cut.gz")])
            #expect(result.status != 0, "a gzip stream missing its last \(cut) bytes was accepted")
            #expect(result.stderrText.contains("cut.gz"))
        }
    }

    @Test("#15 a dump through a pipe or /dev/stdin is read whole (sniffing consumes nothing)")
    func pipes() throws {
        var dump = Self.root
        for i in 0..<50 { dump += "/f\(i) 3 100644 1 0 0 0 0.0 - abc -\n" }
        for path in ["-", "/dev/stdin"] {
            let result = try run(ovlcfs, ["inspect", path, "--json"], input: Array(dump.utf8))
            #expect(result.status == 0, "\(path): \(result.stderrText)")
            #expect(result.stdoutText.contains("\"entries\" : 51"), "\(result.stdoutText)")
        }
    }

    @Test("#16 what the tool writes it reads back: pre-1970 mtimes, and './' payloads are refused on reading too")
    func writesWhatItReads() throws {
        let dump =
            Self.root
            + "/old 0 100644 1 0 0 0 -315619200.5 - - -\n/oldest 0 100644 1 0 0 0 -9223372036854775808.0 - - -\n"
        let result = try run(ovlcfs, ["inspect", "-", "--dump"], input: Array(dump.utf8))
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == dump)
        for payload in ["./ab/cd", "ab//cd", "ab/./cd"] {
            let bad = try run(
                ovlcfs, ["inspect", "-"], input: Array((Self.root + "/f 5 100644 1 0 0 0 0.0 \(payload) - -\n").utf8))
            #expect(bad.status != 0, "accepted payload \(payload)")
            #expect(bad.stderrText.contains("<stdin>:2:"), "\(bad.stderrText)")
        }
    }

    @Test("#11 a FIFO as a model or image, and FIFOs or symlinks in a store, never hang or get hashed")
    func fifosAndSymlinks() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(mkfifo(dir.path("fifo"), 0o644) == 0)
        for name in ["empty-store", "mnt", "o"] {
            try FileManager.default.createDirectory(atPath: dir.path(name), withIntermediateDirectories: true)
        }
        let verifyFifo = try run(ovlcfs, ["verify", "--objects", dir.path("empty-store"), dir.path("fifo")])
        #expect(verifyFifo.status != 0)
        #expect(verifyFifo.stderrText.contains("no files"), "\(verifyFifo.stderrText)")
        let mount = try run(
            ovlcfs,
            [
                "mount", dir.path("fifo"), dir.path("mnt"), "--objects", dir.path("o"), "--state-directory",
                dir.path("state"),
            ])
        #expect(mount.status != 0)
        #expect(
            mount.stderrText.contains("not a regular file") || mount.stderrText.contains("root"), "\(mount.stderrText)")
        // A store with a FIFO and a symlink (to a secret) under object names, and junk.
        let digest = String(repeating: "ab", count: 32)
        let fan = dir.path("store/ab")
        try FileManager.default.createDirectory(atPath: fan, withIntermediateDirectories: true)
        try "secret".write(toFile: dir.path("secret"), atomically: true, encoding: .utf8)
        #expect(mkfifo(fan + "/" + String(digest.dropFirst(2)), 0o644) == 0)
        let linkName = "ab" + String(repeating: "cd", count: 31)
        try FileManager.default.createSymbolicLink(
            atPath: fan + "/" + String(linkName.dropFirst(2)), withDestinationPath: dir.path("secret"))
        try "junk".write(toFile: fan + "/not-an-object", atomically: true, encoding: .utf8)
        let verify = try run(ovlcfs, ["verify", "--objects", dir.path("store"), "--json"])
        #expect(verify.status != 0)
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(verify.stdout)) as? [String: Any], "\(verify.stderrText)")
        #expect(json["checked"] as? Int == 0)
        #expect((json["foreign"] as? [String])?.count == 1)
        #expect((json["unreadable"] as? [String])?.count == 2)
        // The secret's digest is never printed.
        let secretDigest = try run(ovlcfs, ["digest", "--compact", dir.path("secret")])
        let printed = secretDigest.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(printed.count == 64)
        #expect(!verify.stdoutText.contains(printed) && !verify.stderrText.contains(printed))
    }

    @Test("kill -9 at any moment of a build leaves no temporary file next to the output (5 moments)")
    func killedBuild() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var dump = Self.root
        for d in 0..<200 {
            dump += "/d\(d) 4096 40755 2 0 0 0 0.0 - - -\n"
            for f in 0..<400 { dump += "/d\(d)/f\(f) 3 100644 1 0 0 0 0.0 - abc -\n" }
        }
        try dump.write(toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        for (round, delay) in [0.05, 0.2, 0.4, 0.8, 1.5].enumerated() {
            for format in ["squashfs", "composefs"] {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: ovlcfs)
                process.arguments = [
                    "build", dir.path("m.dump"), "-o", dir.path("out-\(round).img"), "--format", format,
                ]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                Thread.sleep(forTimeInterval: delay)
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let left = try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter {
                    $0.hasPrefix(".")
                }
                #expect(left.isEmpty, "after kill -9 at \(delay) s: \(left)")
            }
        }
    }

    @Test(
        "an ingest leaves nothing in the store's staging directory; abandoned staging files of dead processes are removed"
    )
    func stagingLeftovers() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("tree/sub"), withIntermediateDirectories: true)
        for i in 0..<20 {
            try String(repeating: "x\(i)", count: 100).write(
                toFile: dir.path("tree/sub/f\(i)"), atomically: true, encoding: .utf8)
        }
        let first = try run(
            ovlcfs, ["build", dir.path("tree"), "-o", dir.path("a.sqfs"), "--objects", dir.path("store"), "--quiet"])
        #expect(first.status == 0, "\(first.stderrText)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("store/.ovlcfs-tmp")) == [".lock"])
        // A named staging file of a process that no longer exists (pid 2^22 + 1 is above pid_max).
        FileManager.default.createFile(
            atPath: dir.path("store/.ovlcfs-tmp/.tmp-4194305-abc"), contents: Data("partial".utf8))
        let second = try run(
            ovlcfs, ["build", dir.path("tree"), "-o", dir.path("b.sqfs"), "--objects", dir.path("store"), "--quiet"])
        #expect(second.status == 0, "\(second.stderrText)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("store/.ovlcfs-tmp")) == [".lock"])
        let verify = try run(ovlcfs, ["verify", "--objects", dir.path("store")])
        #expect(verify.status == 0, "\(verify.stdoutText)")
        #expect(verify.stdoutText.contains("20 objects checked"), "\(verify.stdoutText)")
    }

    @Test("an argument that is not UTF-8 is refused, not turned into another file name")
    func nonUTF8Argument() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try (Self.root).write(toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        // posix_spawn with raw bytes: Process would have to go through a Swift String.
        let output = dir.url.path + "/out-\u{FFFD}.sqfs"
        var pid: pid_t = 0
        let argv: [[CChar]] = [
            Array(ovlcfs.utf8CString), Array("build".utf8CString), Array(dir.path("m.dump").utf8CString),
            Array("-o".utf8CString),
            (dir.url.path + "/out-").utf8.map { CChar(bitPattern: $0) } + [CChar(bitPattern: 0xFF)]
                + Array(".sqfs".utf8CString),
        ]
        var pointers = argv.map { strdup($0) } + [nil]
        defer { for p in pointers { free(p) } }
        #expect(posix_spawn(&pid, ovlcfs, nil, nil, &pointers, environ) == 0)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect((status >> 8) & 0xFF == 2)
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["m.dump"])
    }

    @Test(
        "a full filesystem is named as such (ENOSPC), and the output is not left half-written",
        .enabled(if: HostCapabilities.isRoot, "needs root to mount a small tmpfs"))
    func noSpace() throws {
        // The filesystem fills at different points: at once, in the inode tables, or while
        // the xattr tables (about 2 MB here) are spilled or written into the image (each
        // image takes 2.9 MiB).
        for size in ["64k", "1m", "2m", "2800k"] {
            try noSpace(size: size)
        }
    }

    private func noSpace(size: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("small"), withIntermediateDirectories: true)
        let mount = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "none", dir.path("small")])
        try #require(mount.status == 0)
        defer { _ = try? run("/bin/umount", [dir.path("small")]) }
        var dump = Self.root
        // Each file its own digest: the squashfs xattr tables are then written on their own
        // thread (into a scratch file on the same full filesystem).
        for i in 0..<20_000 {
            let digest = String(repeating: "0", count: 56) + String(format: "%08x", i)
            dump += "/file-\(i) 3 100644 1 0 0 0 0.0 - - \(digest)\n"
        }
        try dump.write(toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        for options in [
            ["--compression", "none"], ["--compression", "none", "--jobs", "1"], ["--format", "composefs"],
        ] {
            let result = try run(ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("small/out.img")] + options)
            let format = "\(options.joined(separator: " ")), \(size)"
            #expect(result.status != 0)
            #expect(result.stderrText.contains("No space left on device"), "\(format): \(result.stderrText)")
            #expect(result.stderrText.contains("small/out.img"), "names the output, \(format): \(result.stderrText)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("small")).isEmpty)
        }
    }

    @Test(
        "#7 a tree whose xattrs exceed the formats' budget is refused by name (five 60 KB xattrs on tmpfs)",
        .enabled(
            if: HostCapabilities.isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/setfattr"),
            "needs root (tmpfs) and setfattr"))
    func hugeXattrs() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("tree"), withIntermediateDirectories: true)
        try #require(try run("/bin/mount", ["-t", "tmpfs", "none", dir.path("tree")]).status == 0)
        defer { _ = try? run("/bin/umount", [dir.path("tree")]) }
        FileManager.default.createFile(atPath: dir.path("tree/big"), contents: Data("x".utf8))
        for i in 0..<5 {
            let set = try run(
                "/usr/bin/setfattr",
                ["-n", "user.k\(i)", "-v", "0x" + String(repeating: "ab", count: 60_000), dir.path("tree/big")])
            try #require(set.status == 0, "\(set.stderrText)")
        }
        for format in ["squashfs", "composefs"] {
            let result = try run(
                ovlcfs,
                [
                    "build", dir.path("tree"), "-o", dir.path("out.img"), "--store-mode", "none", "--format", format,
                    "--quiet",
                ])
            #expect(result.status != 0)
            #expect(
                result.stderrText.contains("/big") && result.stderrText.contains("per-inode maximum"),
                "\(result.stderrText)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path("out.img")))
    }

    @Test(
        "#9 a verity disk made sparse to 8 GiB is inspected through its partition offsets, in bounded memory",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "prlimit is missing"))
    func sparseDisk() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try (Self.root + "/f 3 100644 1 0 0 0 0.0 - abc -\n").write(
            toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        #expect(try run(ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("d.raw"), "--disk"]).status == 0)
        #expect(truncate(dir.path("d.raw"), 8 << 30) == 0)
        // 1 GiB of address space: reading the disk whole (or copying its partition) could not fit.
        let result = try run("/usr/bin/prlimit", ["--as=1073741824", "--", ovlcfs, "inspect", dir.path("d.raw")])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText.contains("entries:      2"), "\(result.stdoutText)")
    }

    @Test(
        "#13 a directory with more subdirectories than the descriptor limit ingests (one descriptor per level, not per directory)",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "prlimit is missing"))
    func manySubdirectories() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        for i in 0..<600 {
            try FileManager.default.createDirectory(atPath: dir.path("tree/d\(i)/e"), withIntermediateDirectories: true)
        }
        try FileManager.default.createDirectory(atPath: dir.path("files"), withIntermediateDirectories: true)
        let result = try run(
            "/usr/bin/prlimit",
            [
                "--nofile=128", "--", ovlcfs, "build", dir.path("tree"), "-o", dir.path("out.sqfs"), "--store-mode",
                "none", "--quiet",
            ])
        #expect(result.status == 0, "\(result.stderrText)")
        let inspect = try run(ovlcfs, ["inspect", dir.path("out.sqfs"), "--json"])
        #expect(inspect.stdoutText.contains("\"entries\" : 1201"), "\(inspect.stdoutText)")
        // Files in flight stay within the limit too: 2000 files hashed by 16 workers under 256 descriptors,
        // and a 1000-deep chain with a pending sibling at every level.
        for i in 0..<2000 {
            FileManager.default.createFile(
                atPath: dir.path("files/f\(i)"), contents: Data(repeating: UInt8(i % 251), count: 8192))
        }
        var deep = dir.path("chain")
        for _ in 0..<1000 {
            try FileManager.default.createDirectory(atPath: deep + "/a", withIntermediateDirectories: true)
            deep += "/z"
        }
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        for tree in ["files", "chain"] {
            let limited = try run(
                "/usr/bin/prlimit",
                [
                    "--nofile=256:256", "--", ovlcfs, "build", dir.path(tree), "-o", dir.path(tree + ".sqfs"),
                    "--objects", dir.path("store"), "--jobs", "16", "--quiet",
                ])
            #expect(limited.status == 0, "\(tree): \(limited.stderrText)")
        }
    }

    @Test("an objects store inside the ingested tree is left out; options that would do nothing are refused")
    func storeInsideTreeAndIdleOptions() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("tree/etc"), withIntermediateDirectories: true)
        try String(repeating: "config ", count: 40).write(
            toFile: dir.path("tree/etc/conf"), atomically: true, encoding: .utf8)
        let first = try run(
            ovlcfs,
            [
                "build", dir.path("tree"), "-o", dir.path("a.sqfs"), "--objects", dir.path("tree/store"), "--dump-out",
                dir.path("a.dump"),
            ])
        #expect(first.status == 0, "\(first.stderrText)")
        let dump = try String(contentsOfFile: dir.path("a.dump"), encoding: .utf8)
        #expect(!dump.contains("/store"), "\(dump)")
        #expect(dump.contains("/etc/conf"))
        for (arguments, option) in [
            (["--salt", "00"], "--salt"), (["--store-mode", "hardlink"], "--store-mode"),
            (["--objects", dir.path("o")], "--objects"),
        ] {
            let result = try run(ovlcfs, ["build", dir.path("a.dump"), "-o", dir.path("b.sqfs")] + arguments)
            #expect(result.status != 0, "\(arguments) was accepted")
            #expect(result.stderrText.contains(option), "\(result.stderrText)")
        }
    }
}
