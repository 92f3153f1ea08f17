import ArgumentParser
import Bench
import ComposefsDump
import Dispatch
import Foundation
import ImageModel
import LinuxSys
import ObjectStore
import SquashfsWriter

extension Workload: ExpressibleByArgument {}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "A/B benchmark: the overlay option vs composefs on the same model, cold and warm.",
        discussion: """
            Builds every arm from one model — composefs (EROFS, as mkcomposefs writes it) and the \
            overlay option (squashfs) in data-only and legacy layouts with metadata uncompressed \
            and compressed — mounts them all through the driver, and runs each workload on \
            every arm in turn (A B A B …, the starting arm rotating), cold (sync + drop caches \
            right before each run) and warm (after warm-up runs). Reports medians, mean ± σ, \
            min–max and each arm's ratio to composefs with a 95 % bootstrap interval. Every \
            arm is unmounted at the end, also on failure or Ctrl-C. Needs root.

            Workloads over a mounted tree: ls-lR, walk, stat-random, getxattr, read-random, \
            read-all. mount: the latency of mounting each image with its objects and of \
            unmounting it (ovlcfs umount, until its loop devices are gone). density: N images \
            (--density, distinct copies) mounted at once, each walked with ls -lR, unmounted; \
            with the kernel objects (mounts, loop and dm devices) and the memory (inode and \
            dentry slabs, page cache) each image costs, from a dropped-caches baseline. Every \
            result has CPU time, user and system apart. Default: every workload but density.

            SOURCE is a directory (ingested, digests only), a composefs dump, a composefs image, \
            an OCI image (oci:DIR …) or synthetic:ENTRIES[:LARGEST_DIR], a generated model of \
            realistic shape with one directory of LARGEST_DIR entries. The objects are sparse \
            stand-ins of the right sizes, kept in WORKDIR/objects; for a directory, --objects \
            hardlink stores hard links to its real files instead (same filesystem as WORKDIR), \
            so reads read real data. Default SOURCE: this machine's /usr.

            --sweep largest-dir=100,1000,10000,30000 runs the walk workloads (ls-lR, walk, \
            stat-random unless --workloads says otherwise) over synthetic models of ENTRIES \
            entries (SOURCE: synthetic:ENTRIES, default synthetic:20000) plus one directory of \
            each size, and charts each arm's ratio to composefs against that size (--svg). Its \
            defaults: 3 runs and the arms composefs, overlay-data-only-none and \
            overlay-data-only-lz4 (about 6 minutes here).

            Examples:
              sudo ovlcfs bench
              sudo ovlcfs bench cs9-x86_64-minimal.dump.gz --runs 5 --json r.json --markdown r.md --svg r.svg
              sudo ovlcfs bench /usr --workloads ls-lR,walk --cache cold --runs 10
              sudo ovlcfs bench cs9-x86_64-minimal.dump.gz --workloads mount,density --runs 3 --json r.json
              sudo ovlcfs bench --sweep largest-dir=100,1000,10000,30000 --svg sweep.svg
            """
    )

    @Argument(
        help: ArgumentHelp(
            "A directory, dump, composefs image, OCI image or synthetic:ENTRIES[:LARGEST_DIR] (default: /usr).",
            valueName: "SOURCE"))
    var source: String?

    @Option(help: "Measured runs per arm, workload and cache state (default 5; 3 with --sweep).")
    var runs: Int?

    @Option(help: "Warm-up runs before warm measurements.")
    var warmups = 1

    @Option(
        help: ArgumentHelp(
            "Comma-separated workloads: ls-lR, walk, stat-random, getxattr, read-random, read-all, mount, density.",
            valueName: "LIST"))
    var workloads: String?

    @Option(
        help: ArgumentHelp(
            """
            Comma-separated arms (default: composefs and overlay-{data-only,legacy}-{none,lz4}). An \
            overlay arm followed by +LEVER departs from the defaults to measure one lever: \
            +block-index, +grouped-order, +name-order, +loop512 (e.g. overlay-data-only-none+loop512). \
            Verified arms: composefs-verity (the image with fs-verity, its digest pinned) and \
            overlay-disk-<compressor> (the GPT disk through dm-verity), both with verity=require on \
            objects named by their own fs-verity digests; they need fs-verity on WORKDIR's \
            filesystem and device-mapper, and are skipped with the reason otherwise \
            (scripts/vm-bench.sh runs them in a 6.12 VM).
            """, valueName: "LIST"))
    var arms: String?

    /// Which cache states to measure.
    enum CacheStates: String, ExpressibleByArgument, CaseIterable {
        case cold, warm, both
    }

    @Option(help: "cold, warm or both.")
    var cache: CacheStates = .both

    @Option(help: "Compressor of the compressed overlay arms.")
    var compression: SquashfsOptions.Compression = .lz4

    @Option(help: "Files read by read-random.")
    var randomFiles = 200

    @Option(help: ArgumentHelp("density: images mounted at once.", valueName: "N"))
    var density = 50

    /// Where the objects come from.
    enum ObjectsSource: String, ExpressibleByArgument, CaseIterable {
        case sparse, hardlink
    }

    @Option(help: "sparse stand-ins (default), or hardlink: hard links to a directory SOURCE's real files.")
    var objects: ObjectsSource = .sparse

    @Option(
        help: ArgumentHelp(
            "Run the walk workloads over synthetic models with these largest directories.",
            valueName: "largest-dir=N,N,…"))
    var sweep: String?

    @Option(help: ArgumentHelp("Where images, stand-in objects and mount points go.", valueName: "DIR"))
    var workDir = "/var/tmp/ovlcfs-bench"

    @Option(help: ArgumentHelp("Write all samples and statistics as JSON.", valueName: "FILE"))
    var json: String?

    @Option(help: ArgumentHelp("Write a Markdown report.", valueName: "FILE"))
    var markdown: String?

    @Option(help: ArgumentHelp("Write an SVG bar chart.", valueName: "FILE"))
    var svg: String?

    @Option(help: ArgumentHelp("A line printed with the report (where or how it was measured).", valueName: "TEXT"))
    var note: String?

    @Flag(help: "No progress output.")
    var quiet = false

    @OptionGroup var state: StateOptions

    func configurationValue() throws -> BenchConfiguration {
        var configuration = BenchConfiguration()
        configuration.runs = runs ?? (sweep == nil ? 5 : 3)
        configuration.warmups = warmups
        configuration.randomFiles = randomFiles
        configuration.stateDirectory = state.stateDirectory
        configuration.density = density
        configuration.note = note
        let allArms = Arm.defaults(compression: compression)
        if let arms {
            configuration.arms = try arms.split(separator: ",").map { name in
                guard let arm = Arm.named(String(name)) else {
                    throw ValidationError(
                        "unknown arm '\(name)'; arms: \(allArms.map(\.name).joined(separator: ", ")), "
                            + "and overlay arms with levers: +\(Lever.allCases.map(\.rawValue).joined(separator: ", +"))"
                    )
                }
                return arm
            }
            if !configuration.arms.contains(.composefs) { configuration.arms.insert(.composefs, at: 0) }
        } else {
            // A sweep's default: composefs and the data-only overlay option, raw and compressed.
            configuration.arms = sweep == nil ? allArms : Array(allArms.prefix(3))
        }
        if let workloads {
            configuration.workloads = try workloads.split(separator: ",").map {
                guard let workload = Workload(rawValue: String($0)) else {
                    throw ValidationError("unknown workload '\($0)'")
                }
                return workload
            }
        }
        switch cache {
        case .both: configuration.caches = [.cold, .warm]
        case .cold: configuration.caches = [.cold]
        case .warm: configuration.caches = [.warm]
        }
        return configuration
    }

    func validate() throws {
        if let runs, runs < 1 { throw ValidationError("--runs must be at least 1") }
        if density < 1 || density > 1000 { throw ValidationError("--density must be from 1 to 1000") }
        if sweep != nil {
            _ = try sweepValues()
            if let source, !source.hasPrefix("synthetic:") {
                throw ValidationError("--sweep runs over synthetic models: SOURCE must be synthetic:ENTRIES")
            }
        }
        _ = try configurationValue()
    }

    /// `--sweep largest-dir=N,N,…`
    func sweepValues() throws -> [Int] {
        guard let sweep else { return [] }
        let parts = sweep.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, parts[0] == "largest-dir" else {
            throw ValidationError("--sweep takes largest-dir=N,N,… (e.g. largest-dir=100,1000,10000,30000)")
        }
        let values = try parts[1].split(separator: ",").map {
            guard let value = Int($0), value > 0, value <= 1_000_000 else {
                throw ValidationError("--sweep: '\($0)' is not a directory size from 1 to 1000000")
            }
            return value
        }
        guard !values.isEmpty else { throw ValidationError("--sweep: no sizes given") }
        return values
    }

    func run() throws {
        try reportingErrors {
            guard geteuid() == 0 else {
                throw BenchError(
                    "bench mounts images, attaches loop devices and drops caches: run it as root (sudo ovlcfs bench …)")
            }
            let cancellation = BenchRunner.Cancellation()
            let signals = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { cancellation.cancel() }
                source.resume()
                return source
            }
            defer { signals.forEach { $0.cancel() } }
            if sweep != nil { try runSweep(cancellation) } else { try runOne(cancellation) }
        }
    }

    func runOne(_ cancellation: BenchRunner.Cancellation) throws {
        let source = self.source ?? "/usr"
        let report = try measure(source: source, configuration: try configurationValue(), cancellation)
        try writeOutputs(report, text: report.text, markdown: report.markdown, svg: report.svg)
    }

    func runSweep(_ cancellation: BenchRunner.Cancellation) throws {
        let base = try SyntheticModel.parse(source ?? "synthetic:20000")!
        var configuration = try configurationValue()
        if workloads == nil { configuration.workloads = [.lsLR, .walk, .statRandom] }
        var sweepReport = SweepReport(parameter: "largest directory (entries)")
        for value in try sweepValues() {
            // The same ENTRIES elsewhere in the tree at every point, plus the large directory.
            let model = SyntheticModel(entries: base.entries + value + 3, largestDirectory: value, seed: base.seed)
            let report = try measure(source: model.name, configuration: configuration, cancellation)
            sweepReport.points.append(.init(value: value, report: report))
        }
        try writeOutputs(sweepReport, text: sweepReport.text, markdown: sweepReport.markdown, svg: sweepReport.svg)
    }

    /// Prints the text table and writes the `--json`, `--markdown` and `--svg` files asked for.
    func writeOutputs(
        _ report: some Encodable, text: String, markdown markdownText: @autoclosure () -> String,
        svg svgText: @autoclosure () -> String
    ) throws {
        let out = BufferedOutput.standardOutput()
        try out.write(text)
        try out.flush()
        if let json { try writeAtomically(try jsonBytes(report), to: json) }
        if let markdown { try writeAtomically(Array(markdownText().utf8), to: markdown) }
        if let svg { try writeAtomically(Array(svgText().utf8), to: svg) }
    }

    /// Loads the model, puts its objects in place, and runs the benchmark on it.
    func measure(source: String, configuration: BenchConfiguration, _ cancellation: BenchRunner.Cancellation) throws
        -> BenchReport
    {
        let say: (String) -> Void = quiet ? { _ in } : { printError($0) }
        say("loading \(source)")
        let verified = configuration.arms.contains(where: \.isVerified)
        let (model, objects, label, verity) = try loadBenchModel(source, verified: verified)
        let runner = BenchRunner(model: model, objects: objects, workDirectory: workDir, configuration: configuration)
        runner.cancellation = cancellation
        runner.objectsHaveVerity = verity
        let live = !quiet && FileIO.standardErrorIsTerminal
        runner.progress =
            live
            ? { line in
                let out = BufferedOutput.standardError()
                try? out.write("\r\u{1B}[K" + line)
                try? out.flush()
            } : { _ in }
        var report = try runner.run(source: source)
        report.system.objects = label
        if live { printError("") }
        return report
    }

    /// The model, the objects directory, how its objects were made, and whether every object
    /// has fs-verity. With `verified` arms the stand-ins are named by their own fs-verity
    /// digests (the model's are replaced), with fs-verity enabled where the filesystem can.
    func loadBenchModel(_ source: String, verified: Bool) throws -> (Image, String, String, Bool) {
        let say: (String) -> Void = quiet ? { _ in } : { printError($0) }
        let isDirectory = (try? FileStatus(path: source))?.isDirectory == true
        if objects == .hardlink {
            guard isDirectory else { throw ValidationError("--objects hardlink needs a directory SOURCE") }
            guard !verified else {
                throw ValidationError(
                    "the verified arms need stand-ins named by their fs-verity digests: leave out --objects hardlink")
            }
            let path = workDir + "/objects-hardlinked"
            let store = try ObjectStore(path: path, create: true) { say("waiting for ovlcfs gc on \(path)…") }
            var options = IngestOptions(storeMode: .hardlink)
            options.skipUnreadable = true
            let result = try Ingest.ingest(directory: source, store: store, options: options)
            say("\(result.image.entryCount) entries; \(result.objectsAdded) objects hard-linked into \(path)")
            return (result.image, path, "hard links to the files of \(source)", false)
        }
        let model: Image
        if isDirectory {
            var options = IngestOptions(storeMode: .none)
            options.skipUnreadable = true
            model = try Ingest.ingest(directory: source, store: nil, options: options).image
        } else {
            model = try loadModel(source, options: DumpOptions(jobs: defaultDumpJobs)).0
        }
        if verified {
            let objects = workDir + "/objects-verity"
            try FileQueries.createDirectories(objects)
            let (image, verity) = try makeVerifiedStandIns(for: model, in: objects)
            say("\(image.entryCount) entries; stand-ins named by their fs-verity digests in \(objects)")
            return (
                image, objects,
                "sparse stand-ins of the right sizes, named by their own fs-verity digests"
                    + (verity ? ", fs-verity enabled" : ""), verity
            )
        }
        let objects = workDir + "/objects"
        try FileQueries.createDirectories(objects)
        let made = try makeStandInObjects(for: model, in: objects)
        say("\(model.entryCount) entries; \(made) stand-in objects created in \(objects)")
        return (model, objects, "sparse stand-ins of the right sizes", false)
    }
}

func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let writer = try AtomicFileWriter(destination: path)
    try writer.write(bytes)
    try writer.commit()
}
