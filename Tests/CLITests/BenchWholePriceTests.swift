import Foundation
import TestSupport
import Testing

/// The whole price of each stack (issue 16): mount latency, density with its kernel objects
/// and memory, CPU time, synthetic models and the sweep — checked against counts made
/// independently of ovlcfs (losetup, the mount table) and for cleanup on Ctrl-C.
@Suite(
    "bench: mount, density, CPU time, synthetic models, sweep", .serialized,
    .enabled(
        if: HostCapabilities.canMountSquashfsOverlay && HostCapabilities.kernelHasFilesystem("erofs"),
        "needs root, loop devices and the squashfs, erofs and overlay filesystems"))
struct BenchWholePriceTests {
    static let arms = "composefs,overlay-data-only-lz4"

    /// Loop devices attached now to files under `directory`, as losetup lists them (other
    /// suites attach loop devices of their own at the same time).
    func losetupCount(under directory: String) -> Int {
        ((try? run("/sbin/losetup", ["-a"]))?.stdoutText ?? "").split(separator: "\n").filter {
            $0.contains("(" + directory + "/")
        }.count
    }

    func mountCount(under directory: String) -> Int {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").filter {
            $0.split(separator: " ").dropFirst(4).first?.hasPrefix(directory) == true
        }
        .count
    }

    @Test("mount and density results carry every field; loop devices and mounts match losetup and the mount table")
    func densityCounts() throws {
        let dir = try TemporaryDirectory()
        defer {
            _ = try? run(ovlcfs, ["umount", "--all", "--state-directory", dir.path("state")])
            dir.cleanup()
        }
        let images = 4
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ovlcfs)
        process.arguments = [
            "bench", TestPaths.cs9.path, "--workloads", "mount,density", "--density", "\(images)", "--runs", "1",
            "--arms", Self.arms, "--work-dir", dir.path("work"), "--state-directory", dir.path("state"),
            "--json", dir.path("r.json"), "--quiet",
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Watch from outside while it runs: the most loop devices and mounts seen at once.
        var maxLoops = 0, maxMounts = 0
        while process.isRunning {
            maxLoops = max(maxLoops, losetupCount(under: dir.path("work")))
            maxMounts = max(maxMounts, mountCount(under: dir.path("work/mnt")))
            usleep(10_000)
        }
        #expect(process.terminationStatus == 0)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("r.json")))
        let object = try #require(report as? [String: Any])
        let density = try #require(object["density"] as? [[String: Any]])
        #expect(density.count == 2)
        for result in density {
            let arm = result["arm"] as? String
            let objects = try #require(result["kernelObjects"] as? [String: Double])
            let memory = try #require(result["memory"] as? [String: Double])
            for key in ["mountSeconds", "walkSeconds", "umountSeconds", "userSeconds", "systemSeconds"] {
                #expect((result[key] as? [Double])?.count == 1, "\(key) of \(arm ?? "?")")
            }
            #expect(objects["mounts"] == 1, "\(arm ?? "?") mounts per image")
            #expect(objects["loopDevices"] == (arm == "composefs" ? 0 : 1), "\(arm ?? "?") loops per image")
            #expect(objects["dmDevices"] == 0)
            // Present and finite; their size is not asserted here: other suites drop caches
            // while this one runs (the counters themselves are checked in BenchTests).
            for key in ["slabBytes", "pageCacheBytes", "slabTotalBytes"] {
                #expect(memory[key]?.isFinite == true, "\(key) of \(arm ?? "?")")
            }
        }
        // Independent counts: the overlay arm's images each held one loop device, all at once.
        #expect(maxLoops == images, "losetup saw \(maxLoops) loop devices at most")
        #expect(maxMounts >= images, "the mount table showed \(maxMounts) mounts at most")
        let results = try #require(object["results"] as? [[String: Any]])
        let mounts = results.filter { $0["workload"] as? String == "mount" }
        #expect(mounts.count == 4)
        for result in mounts {
            #expect((result["unmountSamples"] as? [Double])?.count == 1)
            // The kernel splits a thread's precise CPU time into user and system by tick
            // samples: a mount of a few milliseconds may show all of it on one side.
            let user = (result["userSeconds"] as? [Double])?.first ?? 0
            let system = (result["systemSeconds"] as? [Double])?.first ?? 0
            #expect(user + system > 0, "a mount costs CPU time")
        }
        #expect(nothingLeft(under: dir.path("work")).isEmpty)
    }

    @Test("Ctrl-C in the middle of a density run unmounts and detaches everything")
    func interruptedDensity() throws {
        let dir = try TemporaryDirectory()
        defer {
            _ = try? run(ovlcfs, ["umount", "--all", "--state-directory", dir.path("state")])
            dir.cleanup()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ovlcfs)
        process.arguments = [
            "bench", TestPaths.cs9.path, "--workloads", "density", "--density", "12", "--runs", "1",
            "--arms", "overlay-data-only-lz4", "--work-dir", dir.path("work"), "--state-directory",
            dir.path("state"), "--quiet",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var seen = 0
        for _ in 0..<3000 where process.isRunning {
            seen = mountCount(under: dir.path("work/mnt"))
            if seen >= 4 { break }
            usleep(5_000)
        }
        try #require(seen >= 4, "the density run never had 4 images mounted")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0, "an interrupted bench reports failure")
        #expect(nothingLeft(under: dir.path("work")).isEmpty)
        #expect(mountCount(under: dir.path("work")) == 0)
    }

    @Test("verified arms this kernel cannot run are skipped with the reason; the others run")
    func verifiedArmsSkipped() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try run(
            ovlcfs,
            [
                "bench", "synthetic:800", "--arms", "composefs,composefs-verity,overlay-disk-lz4", "--runs", "1",
                "--warmups", "0", "--workloads", "ls-lR", "--cache", "warm", "--work-dir", dir.path("work"),
                "--state-directory", dir.path("state"), "--json", dir.path("r.json"), "--quiet",
            ])
        #expect(result.status == 0, "\(result.stderrText)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("r.json")))
                as? [String: Any])
        let skipped = try #require(object["skipped"] as? [[String: String]])
        if HostCapabilities.hasFsVerity(dir.path("work"))
            && FileManager.default.fileExists(atPath: "/dev/mapper/control")
        {
            #expect(skipped.isEmpty)
        } else {
            #expect(Set(skipped.compactMap { $0["arm"] }) == ["composefs-verity", "overlay-disk-lz4"])
            #expect(
                skipped.allSatisfy {
                    ($0["reason"] ?? "").contains("fs-verity") || ($0["reason"] ?? "").contains("device-mapper")
                })
        }
        let arms = Set(((object["results"] as? [[String: Any]]) ?? []).compactMap { $0["arm"] as? String })
        #expect(arms.contains("composefs"))
        #expect(nothingLeft(under: dir.path("work")).isEmpty)
    }

    @Test("a sweep over synthetic models writes a ratio per size, and its line chart")
    func sweep() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try run(
            ovlcfs,
            [
                "bench", "synthetic:1500", "--sweep", "largest-dir=10,300", "--runs", "1", "--warmups", "0",
                "--cache", "warm", "--workloads", "ls-lR", "--arms", Self.arms, "--work-dir", dir.path("work"),
                "--state-directory", dir.path("state"), "--json", dir.path("s.json"), "--svg", dir.path("s.svg"),
                "--quiet",
            ])
        #expect(result.status == 0, "\(result.stderrText)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("s.json")))
                as? [String: Any])
        let points = try #require(object["points"] as? [[String: Any]])
        #expect(points.compactMap { $0["value"] as? Int } == [10, 300])
        for point in points {
            let report = try #require(point["report"] as? [String: Any])
            let value = try #require(point["value"] as? Int)
            #expect((report["ratios"] as? [Any])?.count == 1)
            // The same 1500 entries elsewhere, plus /usr/share/large of `value` entries.
            #expect(((report["system"] as? [String: Any])?["entries"] as? Int) == 1500 + value + 3)
            #expect(
                ((report["system"] as? [String: Any])?["source"] as? String) == "synthetic:\(1503 + value):\(value)")
        }
        let svg = try String(contentsOfFile: dir.path("s.svg"), encoding: .utf8)
        #expect(svg.contains("<polyline") && svg.contains("warm ls-lR"))
        #expect(nothingLeft(under: dir.path("work")).isEmpty)
    }
}
