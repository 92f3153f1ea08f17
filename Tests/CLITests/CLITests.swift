import Foundation
import TestSupport
import Testing

let ovlcfs = TestPaths.productsDirectory.appendingPathComponent("ovlcfs").path

@Suite(
    "ovlcfs command line",
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct CLITests {
    @Test("--help teaches: every command has an example")
    func help() throws {
        let root = try run(ovlcfs, ["--help"])
        #expect(root.status == 0)
        #expect(root.stdoutText.contains("inspect"))
        let inspect = try run(ovlcfs, ["inspect", "--help"])
        #expect(inspect.status == 0)
        #expect(inspect.stdoutText.contains("Examples:"))
        #expect(inspect.stdoutText.contains("--json"))
    }

    @Test("inspect --example prints a summary")
    func example() throws {
        let result = try run(ovlcfs, ["inspect", "--example"])
        #expect(result.status == 0)
        #expect(result.stdoutText.contains("entries:      15 (14 inodes, 1 extra hard-link paths)"))
    }

    @Test("inspect --json on cs9-x86_64-minimal matches counts taken from the text itself")
    func cs9Counts() throws {
        let url = TestPaths.cs9
        let result = try run(ovlcfs, ["inspect", url.path, "--json"])
        #expect(result.status == 0, "\(result.stderrText)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        let byType = try #require(json["byType"] as? [String: Int])

        // Independent count: one line per entry, classified by its MODE field.
        let lines = try readVector(url).split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        var types: [String: Int] = [:]
        var hardLinks = 0, inline = 0, bytes: UInt64 = 0, xattrs = 0
        var payloads = Set<String>()
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            let mode = String(fields[2])
            if mode.hasPrefix("@") {
                hardLinks += 1
                continue
            }
            let type: String =
                switch Int(mode, radix: 8)! & 0o170000 {
                case 0o040000: "directory"
                case 0o100000: "regular"
                case 0o120000: "symlink"
                case 0o060000: "blockDevice"
                case 0o020000: "charDevice"
                case 0o010000: "fifo"
                default: "socket"
                }
            types[type, default: 0] += 1
            xattrs += fields.count - 11
            if type == "regular" {
                bytes += UInt64(fields[1])!
                if fields[9] != "-" || fields[1] == "0" && fields[8] == "-" { inline += 1 }
                if fields[8] != "-" { payloads.insert(String(fields[8])) }
            }
        }
        #expect(json["entries"] as? Int == lines.count)
        #expect(json["hardLinks"] as? Int == hardLinks)
        for (type, count) in types { #expect(byType[type] == count, "\(type)") }
        #expect(byType.values.reduce(0, +) + hardLinks == lines.count)
        #expect(json["inlineFiles"] as? Int == inline)
        #expect(json["objects"] as? Int == payloads.count)
        #expect((json["fileBytes"] as? NSNumber)?.uint64Value == bytes)
        #expect(json["xattrs"] as? Int == xattrs)
        #expect(lines.count == 22010)
    }

    @Test("inspect --dump reads standard input and prints the canonical dump")
    func dumpFromStdin() throws {
        let input = "/ 4096 40755 9 0 0 0 0.0 - - -\n/b 0 100644 1 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n"
        let result = try run(ovlcfs, ["inspect", "-", "--dump"], input: Array(input.utf8))
        #expect(result.status == 0)
        #expect(
            result.stdoutText
                == "/ 4096 40755 2 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n/b 0 100644 1 0 0 0 0.0 - - -\n")
    }

    @Test("bad input: exit status 1, the message names file:line and reason, no output file is left")
    func badInput() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try "/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - - =v\n".write(
            toFile: dir.path("bad.dump"), atomically: true, encoding: .utf8)
        let result = try run(ovlcfs, ["inspect", dir.path("bad.dump"), "--dump", "-o", dir.path("out.dump")])
        #expect(result.status == 1)
        #expect(result.stderrText == "ovlcfs: \(dir.path("bad.dump")):2: xattr key is empty\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["bad.dump"])
    }

    @Test(
        "argument mistakes are reported before any work",
        arguments: [
            ["inspect"], ["inspect", "--example", "x.dump"], ["inspect", "--example", "--json", "--dump"],
            ["inspect", "--example", "-o", "x"],
        ])
    func usageErrors(arguments: [String]) throws {
        let result = try run(ovlcfs, arguments)
        #expect(result.status == 64)
        #expect(result.stderrText.contains("Error:"))
    }
}

@Suite(
    "ovlcfs build",
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct BuildCLITests {
    @Test("build --json describes the image, and inspect reads it back into the same dump")
    func buildAndInspect() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try run(ovlcfs, ["inspect", "--example", "--dump"]).stdout
        try Data(model).write(to: dir.url.appendingPathComponent("m.dump"))
        let build = try run(
            ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("m.sqfs"), "--json", "--compression", "lz4"])
        #expect(build.status == 0, "\(build.stderrText)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(build.stdout)) as? [String: Any])
        #expect(json["entries"] as? Int == 15)
        #expect(json["stubs"] as? Int == 2)
        #expect(json["layout"] as? String == "data-only")
        #expect(json["compression"] as? String == "lz4")
        #expect((json["bytes"] as? Int ?? 0) % 4096 == 0)
        // The example has a nanosecond mtime: reported as a warning, with its path.
        #expect(build.stderrText.contains("1 mtime(s) with nanoseconds"))
        #expect(build.stderrText.contains("/etc/motd"))
        let back = try run(ovlcfs, ["inspect", dir.path("m.sqfs"), "--dump"])
        #expect(back.status == 0)
        #expect(
            back.stdoutText.contains(
                "/etc/motd 100000 100644 1 0 0 0 1700000000.0 f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b - f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b user.comment=hello\\x20world\n"
            ))
        #expect(back.stdoutText.contains("/etc/removed 0 20000 1 0 0 0 1700000000.0 - - -\n"))
    }

    @Test("--strict refuses a model squashfs cannot hold, and leaves no file")
    func strictRefuses() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try run(
            ovlcfs, ["build", "-", "-o", dir.path("x.sqfs"), "--strict"],
            input: Array(
                "/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.5 - - - system.posix_acl_access=x\n".utf8))
        #expect(result.status == 1)
        #expect(result.stderrText.contains("nanoseconds"))
        #expect(result.stderrText.contains("POSIX ACLs"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }

    @Test(
        "bad payloads and bad options are refused before anything is written",
        arguments: [
            (
                ["build", "-", "-o", "OUT"], "/ 4096 40755 2 0 0 0 0.0 - - -\n/f 9 100644 1 0 0 0 0.0 /abs - -\n", 1,
                "is absolute"
            ),
            (
                ["build", "-", "-o", "OUT"], "/ 4096 40755 2 0 0 0 0.0 - - -\n/f 9 100644 1 0 0 0 0.0 a/../../b - -\n",
                1, "'..' component"
            ),
            (["build", "-", "-o", "OUT", "--block-size", "1000"], "", 64, "block size 1000"),
            (["build", "-", "-o", "OUT", "--uncompressed-tables", "inodes,bogus"], "", 64, "unknown table 'bogus'"),
            (["build", "-", "-o", "OUT", "--compression", "lzo"], "", 64, "lzo"),
        ])
    func refusals(arguments: [String], input: String, status: Int32, message: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try run(ovlcfs, arguments.map { $0 == "OUT" ? dir.path("x.sqfs") : $0 }, input: Array(input.utf8))
        #expect(result.status == status)
        #expect(result.stderrText.contains(message), "\(result.stderrText)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }
}

@Suite(
    "ovlcfs ingest", .serialized,
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct IngestCLITests {
    @Test("kill -9 during ingest leaves no partial object under its name; verify finds nothing wrong")
    func killDuringIngest() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let tree = dir.path("tree")
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: 9)
        for i in 0..<24 {
            var bytes = [UInt8](repeating: 0, count: 8 << 20)
            for j in stride(from: 0, to: bytes.count, by: 8) {
                let word = rng.next()
                for k in 0..<8 { bytes[j + k] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(k))) }
            }
            FileManager.default.createFile(atPath: tree + "/f\(i)", contents: Data(bytes))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ovlcfs)
        process.arguments = ["build", tree, "-o", dir.path("i.sqfs"), "--objects", dir.path("objects"), "--quiet"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill once the store exists (a loaded machine can take longer than a fixed delay to
        // get there), while the 192 MiB are still being hashed.
        for _ in 0..<1000 where !FileManager.default.fileExists(atPath: dir.path("objects/.ovlcfs-store.json")) {
            Thread.sleep(forTimeInterval: 0.01)
        }
        Thread.sleep(forTimeInterval: 0.05)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "ingest finished before it could be killed")
        #expect(!FileManager.default.fileExists(atPath: dir.path("i.sqfs")))
        let verify = try run(ovlcfs, ["verify", "--objects", dir.path("objects")])
        #expect(verify.status == 0, "\(verify.stdoutText)\(verify.stderrText)")
        #expect(verify.stdoutText.contains("0 missing, 0 wrong size, 0 wrong digest"))
        // A second run completes, and every object is whole.
        let again = try run(
            ovlcfs, ["build", tree, "-o", dir.path("i.sqfs"), "--objects", dir.path("objects"), "--quiet"])
        #expect(again.status == 0, "\(again.stderrText)")
        let full = try run(ovlcfs, ["verify", "--objects", dir.path("objects")])
        #expect(full.stdoutText.contains("24 objects checked, 0 missing"))
    }
}

@Suite(
    "ovlcfs bench without root",
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"),
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") && getuid() == 0,
        "needs root to drop to nobody with setpriv"))
struct BenchCLITests {
    @Test("without root, bench says so and exits non-zero before touching anything")
    func refusesWithoutRoot() throws {
        let work = "/tmp/ovlcfs-bench-nonroot-\(UUID().uuidString)"
        let result = try run(
            "/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", ovlcfs, "bench", "--work-dir", work, "--runs", "1"])
        #expect(result.status == 1)
        #expect(result.stderrText.contains("run it as root"))
        #expect(!FileManager.default.fileExists(atPath: work))
    }
}

@Suite(
    "ovlcfs ingest as an unprivileged user", .serialized,
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"),
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") && getuid() == 0,
        "needs root to drop to nobody with setpriv"))
struct UnreadableIngestTests {
    /// A world-readable tree with one file and one directory only root can read.
    func tree() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.url.path)
        let tree = dir.path("tree")
        try FileManager.default.createDirectory(atPath: tree + "/closed", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: tree + "/open", contents: Data(repeating: 1, count: 5000))
        FileManager.default.createFile(atPath: tree + "/secret", contents: Data(repeating: 2, count: 5000))
        FileManager.default.createFile(atPath: tree + "/closed/inside", contents: Data(repeating: 3, count: 10))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tree + "/secret")
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: tree + "/closed")
        return dir
    }

    func asNobody(_ arguments: [String]) throws -> ProcessResult {
        try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ovlcfs] + arguments)
    }

    @Test("an unreadable entry is an error naming its path")
    func unreadableIsAnError() throws {
        let dir = try tree()
        defer { dir.cleanup() }
        let result = try asNobody([
            "build", dir.path("tree"), "-o", dir.path("i.sqfs"), "--store-mode", "none", "--quiet",
        ])
        #expect(result.status == 1)
        #expect(result.stderrText.contains(dir.path("tree")), "\(result.stderrText)")
        #expect(result.stderrText.contains("Permission denied"), "\(result.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: dir.path("i.sqfs")))
    }

    @Test("with --skip-unreadable it is a warning with a count, and the rest is built")
    func skipUnreadable() throws {
        let dir = try tree()
        defer { dir.cleanup() }
        let result = try asNobody([
            "build", dir.path("tree"), "-o", dir.path("i.sqfs"), "--store-mode", "none",
            "--skip-unreadable", "--dump-out", dir.path("m.dump"),
        ])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stderrText.contains("unreadable entr"), "\(result.stderrText)")
        let dump = try String(contentsOfFile: dir.path("m.dump"), encoding: .utf8)
        #expect(dump.contains("/open 5000 "))
        #expect(!dump.contains("/secret "))
    }
}

@Suite(
    "ovlcfs mount --check-objects",
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct CheckObjectsTests {
    @Test("objects the image names but the store lacks are listed, and nothing is mounted")
    func missingObjects() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try run(ovlcfs, ["inspect", "--example", "--dump"]).stdout
        try Data(model).write(to: dir.url.appendingPathComponent("m.dump"))
        #expect(try run(ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("m.sqfs")]).status == 0)
        try FileManager.default.createDirectory(atPath: dir.path("objects/f5"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path("mnt"), withIntermediateDirectories: true)
        // One object present with the right size, the other missing.
        FileManager.default.createFile(
            atPath: dir.path("objects/f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b"),
            contents: Data(count: 100_000))
        let result = try run(
            ovlcfs,
            [
                "mount", dir.path("m.sqfs"), dir.path("mnt"), "--objects", dir.path("objects"), "--check-objects",
                "--state-directory", dir.path("state"),
            ])
        #expect(result.status == 1)
        #expect(
            result.stderrText.contains(
                "missing object: ba/bc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e"))
        #expect(!result.stderrText.contains("missing object: f5/"))
        #expect(result.stderrText.contains("1 object(s) the image names are missing"))
        #expect(!TestMounts.isMounted(dir.path("mnt")))
    }
}
