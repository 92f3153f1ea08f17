import Foundation
import TestSupport
import Testing

let fuzzer = TestPaths.productsDirectory.appendingPathComponent("ovlcfs-fuzz").path

/// Short runs of the reader fuzzer (scripts/fuzz runs the long ones), and of its writers target
/// (mutated dumps written both ways on one thread and two, then read back): in a process of
/// its own, so a trap or a crash shows as a signal here instead of taking the test runner down.
@Suite(
    "reader fuzzing, short runs",
    .enabled(if: FileManager.default.isExecutableFile(atPath: fuzzer), "ovlcfs-fuzz was not built"))
struct FuzzRunTests {
    @Test(
        "seeded mutations of every reader: no trap, no crash, every case under 2 s and 512 MiB",
        arguments: [
            ("dump", 2000), ("writers", 400), ("cfs", 3000), ("sqfs", 3000), ("gpt", 600), ("layer", 1000),
        ])
    func short(reader: String, cases: Int) throws {
        let result = try run(fuzzer, [reader, String(cases), "20261130"])
        #expect(
            result.status == 0,
            "\(reader): status \(result.status)\n\(result.stdoutText)\(result.stderrText.suffix(2000))")
        #expect(result.stdoutText.contains("fuzz \(reader): \(cases) cases"), "\(result.stdoutText)")
        #expect(result.stdoutText.contains(", 0 over 2 s"))
        // Both outcomes occur, or the mutations test nothing.
        #expect(
            !result.stdoutText.contains(" 0 refused") && !result.stdoutText.contains(" 0 accepted"),
            "\(result.stdoutText)")
    }

    @Test("a run leaves nothing in TMPDIR: its work directory and case file are removed")
    func cleansUp() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fuzzer)
        process.arguments = ["dump", "20", "1"]
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": dir.path("") + "/"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }
}
