import Foundation
import TestSupport
import Testing

@Suite(
    "mount --dry-run and status --features",
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct MountPlanCLITests {
    @Test("mount --dry-run --json prints the plan's steps with their kernel objects and touches nothing")
    func dryRun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        for name in ["mnt", "objects"] {
            try FileManager.default.createDirectory(atPath: dir.path(name), withIntermediateDirectories: true)
        }
        #expect(try run(ovlcfs, ["inspect", "--example", "--dump", "-o", dir.path("m.dump")]).status == 0)
        #expect(try run(ovlcfs, ["build", dir.path("m.dump"), "-o", dir.path("i.sqfs")]).status == 0)
        let result = try run(
            ovlcfs,
            [
                "mount", dir.path("i.sqfs"), dir.path("mnt"), "--objects", dir.path("objects"), "--dry-run", "--json",
                "--state-directory", dir.path("state"),
            ])
        #expect(result.status == 0, "\(result.stderrText)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        let steps = try #require(plan["steps"] as? [[String: Any]])
        #expect(
            steps.map { $0["action"] as? String } == [
                "attach-loop", "mount-lower", "mount-overlay", "write-record", "attach",
            ])
        #expect((steps[2]["options"] as? [String])?.contains("datadir+=\(dir.path("objects"))") == true)
        #expect(plan["features"] is [String: Any])
        #expect(!FileManager.default.fileExists(atPath: dir.path("state")))
        #expect(nothingLeft(under: dir.url.path).isEmpty)
        let text = try run(
            ovlcfs, ["mount", dir.path("i.sqfs"), dir.path("mnt"), "--objects", dir.path("objects"), "--dry-run"])
        #expect(text.stdoutText.contains("1. loop device (image)"), "\(text.stdoutText)")
    }

    @Test("status --features lists each probe and what it changes")
    func features() throws {
        let result = try run(ovlcfs, ["status", "--features", "--objects", "/tmp", "--json"])
        #expect(result.status == 0, "\(result.stderrText)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        let effects = try #require(report["effects"] as? [[String: Any]])
        #expect(effects.count == 5)
        #expect(effects.allSatisfy { ($0["effect"] as? String)?.isEmpty == false })
    }
}
