import Bench
import ComposefsDump
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys
import MountDriver
import OverlayTranslation
import SquashfsWriter
import TestSupport
import Testing

@Suite("Bench statistics")
struct StatisticsTests {
    @Test("mean, sample σ, median, min and max: known answers")
    func summary() {
        let s = Summary([2, 4, 4, 4, 5, 5, 7, 9])
        #expect(s.mean == 5)
        #expect(abs(s.stddev - 2.138089935299395) < 1e-12)
        #expect(s.median == 4.5)
        #expect(s.min == 2 && s.max == 9 && s.runs == 8)
        #expect(Summary([3, 1, 2]).median == 2)
        #expect(Summary([7]).stddev == 0)
    }

    @Test("the bootstrap ratio interval is reproducible, contains the ratio, and narrows with agreement")
    func bootstrap() {
        let a = [2.0, 2.1, 1.9, 2.05, 1.95, 2.0, 2.2, 1.8, 2.0, 2.1]
        let b = [1.0, 1.05, 0.95, 1.0, 1.02, 0.98, 1.1, 0.9, 1.0, 1.0]
        let r = Statistics.ratio(a, b)
        #expect(r == Statistics.ratio(a, b))
        #expect(r.value == 2.0)
        #expect(r.low <= r.value && r.value <= r.high)
        #expect(r.low > 1.8 && r.high < 2.3)
        // Known answer: an independent Python replica of the scheme (SplitMix64 from 0x5EED,
        // index = next() mod n, 2000 resamples, 2.5/97.5 percentiles) gives these bounds.
        #expect(abs(r.low - 1.9306930693069306) < 1e-9)
        #expect(abs(r.high - 2.1) < 1e-9)
        let same = Statistics.ratio([1, 1, 1], [1, 1, 1])
        #expect(same.low == 1 && same.high == 1)
    }
}

func sampleReport() -> BenchReport {
    var report = BenchReport(
        system: .init(
            kernel: "6.18", cpu: "test", cores: 2, memoryBytes: 1, date: "2026-11-27T00:00:00Z",
            source: "/x/model.dump", entries: 10, fileBytes: 100, runs: 3, warmups: 1, randomFiles: 5))
    for (arm, scale) in [("composefs", 1.0), ("overlay-data-only-zstd", 1.5)] {
        for workload in Workload.allCases {
            for cache in CacheState.allCases {
                let samples = [0.9, 1.0, 1.2].map { $0 * scale * (cache == .cold ? 3 : 1) }
                let s = Summary(samples)
                report.results.append(
                    .init(
                        arm: arm, workload: workload, cache: cache, samples: samples, median: s.median,
                        mean: s.mean, stddev: s.stddev, min: s.min, max: s.max, runs: s.runs))
                if arm != "composefs" {
                    report.ratios.append(
                        .init(arm: arm, workload: workload, cache: cache, ratio: 1.5, low: 1.4, high: 1.6))
                }
            }
        }
    }
    return report
}

@Suite("Bench subprocesses and lever arms")
struct SubprocessTests {
    @Test("exit statuses, a signal, and a missing program")
    func statuses() throws {
        #expect(try Subprocess.runQuietly("/bin/true", []) == 0)
        #expect(try Subprocess.runQuietly("/bin/sh", ["-c", "exit 7"]) == 7)
        #expect(try Subprocess.runQuietly("/bin/sh", ["-c", "echo noise; echo noise >&2; kill -9 $$"]) == 128 + 9)
        #expect(throws: IOError.self) { try Subprocess.runQuietly("/nonexistent/ovlcfs-test", []) }
    }

    @Test("arm names with levers parse; unknown or repeated levers do not")
    func leverArms() throws {
        let arm = try #require(Arm.named("overlay-data-only-none+block-index+loop512"))
        #expect(
            arm.kind
                == .squashfs(layout: .dataOnly, compression: .gzip, rawMetadata: true, levers: [.blockIndex, .loop512]))
        #expect(Arm.named("overlay-legacy-zstd") == .overlay(.legacy, .zstd))
        #expect(Arm.named("overlay-data-only-lz4") == .overlay(.dataOnly, .lz4))
        #expect(Arm.named("composefs+loop512") == nil)
        #expect(Arm.named("overlay-data-only-none+loop512+loop512") == nil)
        #expect(Arm.named("overlay-data-only-none+fast") == nil)
    }
}

@Suite("Synthetic models")
struct SyntheticModelTests {
    @Test("the same parameters give the same model; the shape is as documented")
    func shape() throws {
        let spec = try #require(try SyntheticModel.parse("synthetic:20000:3000"))
        #expect(spec == SyntheticModel(entries: 20000, largestDirectory: 3000))
        let a = try spec.image(), b = try spec.image()
        #expect(a.entryCount == 20000)
        #expect(DumpWriter.render(a) == DumpWriter.render(b))
        let summary = ImageSummary(a)
        let symlinks = Double(summary.byType["symlink"] ?? 0) / 20000
        let regular = Double(summary.byType["regular"] ?? 0) / 20000
        #expect(symlinks > 0.07 && symlinks < 0.13, "\(symlinks) symlinks")
        #expect(regular > 0.72 && regular < 0.86, "\(regular) regular files")
        let labelled = a.entryIDs.allSatisfy { entry in
            a.xattrs(of: a.inode(of: entry)).contains { String(decoding: $0.key, as: UTF8.self) == "security.selinux" }
        }
        #expect(labelled)
        let large = try #require(a.lookup(path: Array("/usr/share/large".utf8)))
        #expect(a.children(of: large).count == 3000)
        let sizes = a.entryIDs.filter { a.inode(of: $0).type == .directory && $0 != large }.map {
            a.children(of: $0).count
        }
        #expect(sizes.max()! <= 312)
        #expect(try SyntheticModel.parse("synthetic:20000:1").map { try $0.image() } != nil)
        #expect(try SyntheticModel(entries: 20000, seed: 2).image().entryCount == 20000)
        #expect(DumpWriter.render(try SyntheticModel(entries: 20000, seed: 2).image()) != DumpWriter.render(a))
    }

    @Test(
        "malformed synthetic sources are refused",
        arguments: [
            "synthetic:", "synthetic:x", "synthetic:1", "synthetic:10:10", "synthetic:10:7", "synthetic:3:1",
            "synthetic:10:0", "synthetic:10:2:3",
            "synthetic:99999999999",
        ])
    func refused(source: String) {
        #expect(throws: BenchError.self) { try SyntheticModel.parse(source) }
    }
}

@Suite("Kernel counters")
struct KernelCounterTests {
    @Test(
        "slabinfo and meminfo parse into the caches and fields density reads",
        .enabled(if: geteuid() == 0, "/proc/slabinfo is readable by root only"))
    func counters() throws {
        let slab = try SystemCounters.slabBytes()
        #expect((slab["dentry"] ?? 0) > 0)
        let memory = try SystemCounters.memoryInfo()
        #expect((memory["MemTotal"] ?? 0) > 1 << 26)
        #expect(memory["Cached"] != nil && memory["Buffers"] != nil && memory["Slab"] != nil)
        #expect(try SystemCounters.mounts() > 0)
        #expect(try SystemCounters.attachedLoopDevices().allSatisfy { $0.hasPrefix("loop") })
        #expect(try SystemCounters.deviceMapperDevices().allSatisfy { $0.hasPrefix("dm-") })
    }

    @Test("CPU time of a child comes from wait4, of this thread from getrusage")
    func cpuTime() throws {
        let (status, cpu) = try Subprocess.runMeasured(
            "/bin/sh", ["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"])
        #expect(status == 0)
        #expect(cpu.user + cpu.system > 0.001)
        let before = CPUTime.thisThread()
        var x: UInt64 = 1
        for i in 0..<20_000_000 { x = x &* 6_364_136_223_846_793_005 &+ UInt64(i) }
        #expect(x != 0)
        let used = CPUTime.thisThread() - before
        #expect(used.user > 0.001)
    }
}

@Suite("Stand-ins for the verified arms")
struct VerifiedStandInTests {
    @Test(
        "every external file points at a zero-filled object named by its fs-verity digest, as fsverity computes it",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/fsverity"), "fsverity is not installed"))
    func digests() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let model = try SyntheticModel(entries: 300).image()
        let (image, _) = try makeVerifiedStandIns(for: model, in: dir.path("objects"))
        #expect(image.entryCount == model.entryCount)
        var checked = 0
        for entry in image.entryIDs {
            let inode = image.inode(of: entry), original = model.inode(of: entry)
            #expect(inode.type == original.type && inode.size == original.size)
            guard let object = inode.externalObject, let digest = object.digest else { continue }
            #expect(object.payload == .object(digest))
            guard checked < 12 else { continue }
            let path = dir.path("objects/" + String(decoding: digest.objectPath, as: UTF8.self))
            #expect(try FileStatus(path: path).size == inode.size)
            let printed = try run("/usr/bin/fsverity", ["digest", "--compact", path]).stdoutText
            #expect(printed.trimmingCharacters(in: .whitespacesAndNewlines) == digest.hex)
            checked += 1
        }
        #expect(checked == 12)
    }
}

@Suite("Bench reports")
struct ReportTests {
    @Test("JSON has results, ratios, images and system with the documented names")
    func json() throws {
        let data = try JSONEncoder().encode(sampleReport())
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys).isSuperset(of: ["results", "ratios", "images", "system"]))
        let first = try #require((object["results"] as? [[String: Any]])?.first)
        #expect(Set(first.keys).isSuperset(of: ["arm", "workload", "cache", "samples", "median", "mean", "stddev"]))
        #expect(first["workload"] as? String == "ls-lR" && first["cache"] as? String == "cold")
    }

    @Test("the text and Markdown tables show medians and ratios")
    func tables() {
        let report = sampleReport()
        #expect(report.text.contains("1.50× [1.40–1.60]"))
        #expect(report.markdown.contains("| ls-lR | 3.000 | 4.500 1.50× [1.40–1.60] |"))
    }

    @Test(
        "the SVG chart renders to a non-blank PNG",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/rsvg-convert"),
            "rsvg-convert is not installed (apt: librsvg2-bin)"))
    func svgRenders() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try sampleReport().svg.write(toFile: dir.path("r.svg"), atomically: true, encoding: .utf8)
        let result = try run("/usr/bin/rsvg-convert", [dir.path("r.svg"), "-o", dir.path("r.png")])
        #expect(result.status == 0, "\(result.stderrText)")
        let png = try Data(contentsOf: dir.url.appendingPathComponent("r.png"))
        #expect(png.count > 10_000)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        // Width and height from the IHDR chunk.
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width >= 700 && height >= 500)
    }
}

@Suite(
    "Bench on real mounts", .serialized,
    .enabled(
        if: HostCapabilities.canMountSquashfsOverlay && HostCapabilities.kernelHasFilesystem("erofs"),
        "needs root, loop devices and the squashfs, erofs and overlay filesystems"))
struct BenchRunTests {
    /// Bytes of `file` in the page cache (util-linux fincore).
    func cachedBytes(_ file: String) throws -> Int {
        let result = try run("/usr/bin/fincore", ["--bytes", "--noheadings", "--output", "RES", file])
        return Int(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test(
        "cold runs start cold (the image is out of the page cache and is read back in); warm runs find it cached",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/fincore"), "fincore (util-linux) is missing"))
    func coldIsCold() throws {
        let model = try DumpFile.read(path: TestPaths.fixture("config.dump.gz").path)
        let fixture = try MountFixture()
        defer { fixture.tearDown() }
        let (dir, driver) = (fixture.dir, fixture.driver)
        _ = try makeStandInObjects(for: model, in: dir.path("objects"))
        let image = dir.path("i.sqfs")
        try SquashfsWriter.write(
            try OverlayTranslation.translate(model, options: .init()), to: image,
            options: SquashfsOptions(compression: .gzip, uncompressedTables: Set(SquashfsOptions.Table.allCases)))
        try driver.mount(
            MountRequest(image: image, target: dir.path("mnt"), objects: [dir.path("objects")], verity: .off))
        let size = Int(try FileStatus(path: image).size)
        let runner = WorkloadRunner(sample: try TreeSample.list(dir.path("mnt")))
        _ = try runner.run(.lsLR, at: dir.path("mnt"))
        // Warm: the walk leaves the metadata of the image in the page cache, and a second run keeps it there.
        let warm = try cachedBytes(image)
        #expect(warm > size / 2, "after a run only \(warm) of \(size) bytes are cached")
        _ = try runner.run(.lsLR, at: dir.path("mnt"))
        #expect(try cachedBytes(image) >= warm)
        // Cold: right after the drop nothing of the image is cached; the run reads it back in.
        try dropCaches()
        #expect(try cachedBytes(image) < size / 20, "drop_caches left the image cached")
        _ = try runner.run(.lsLR, at: dir.path("mnt"))
        #expect(try cachedBytes(image) > size / 2, "a cold run did not read the image")
    }

    @Test("a short bench completes, reports every arm × workload × cache, and unmounts everything")
    func shortBench() throws {
        let model = try DumpFile.read(path: TestPaths.fixture("special.dump").path)
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        var configuration = BenchConfiguration()
        configuration.runs = 2
        configuration.stateDirectory = dir.path("state")
        let runner = BenchRunner(
            model: model, objects: dir.path("objects"), workDirectory: dir.path("work"), configuration: configuration)
        let report = try runner.run(source: "special.dump")
        #expect(report.results.count == 5 * Workload.defaults.count * 2)
        #expect(report.ratios.count == 4 * Workload.defaults.count * 2)
        #expect(report.results.allSatisfy { $0.samples.count == 2 && $0.median > 0 })
        #expect(report.results.allSatisfy { $0.userSeconds.count == 2 && $0.systemSeconds.count == 2 })
        #expect(report.results.filter { $0.workload == .mount }.allSatisfy { $0.unmountSamples?.count == 2 })
        #expect(report.results.filter { $0.workload != .mount }.allSatisfy { $0.unmountSamples == nil })
        #expect(report.images.count == 5)
        #expect(report.skipped.map(\.arm) == ["overlay-disk-*"])
        #expect(nothingLeft(under: dir.url.path).isEmpty)
        #expect(MountDriver(stateDirectory: dir.path("state")).records().isEmpty)
    }
}
