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

            SOURCE is a directory (ingested, digests only), a composefs dump or a composefs \
            image; the objects are sparse stand-ins of the right sizes, kept in WORKDIR/objects. \
            Default SOURCE: this machine's /usr.

            Examples:
              sudo ovlcfs bench
              sudo ovlcfs bench cs9-x86_64-minimal.dump.gz --runs 5 --json r.json --markdown r.md --svg r.svg
              sudo ovlcfs bench /usr --workloads ls-lR,walk --cache cold --runs 10
            """
    )

    @Argument(help: ArgumentHelp("A directory, dump or composefs image (default: /usr).", valueName: "SOURCE"))
    var source: String = "/usr"

    @Option(help: "Measured runs per arm, workload and cache state.")
    var runs = 5

    @Option(help: "Warm-up runs before warm measurements.")
    var warmups = 1

    @Option(
        help: ArgumentHelp(
            "Comma-separated workloads: ls-lR, walk, stat-random, getxattr, read-random, read-all.", valueName: "LIST"))
    var workloads: String?

    @Option(
        help: ArgumentHelp(
            """
            Comma-separated arms (default: all). An overlay arm followed by +LEVER departs from \
            the defaults to measure one lever: +block-index, +grouped-order, +name-order, +loop512 \
            (e.g. overlay-data-only-none+loop512).
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

    @Option(help: ArgumentHelp("Where images, stand-in objects and mount points go.", valueName: "DIR"))
    var workDir = "/var/tmp/ovlcfs-bench"

    @Option(help: ArgumentHelp("Write all samples and statistics as JSON.", valueName: "FILE"))
    var json: String?

    @Option(help: ArgumentHelp("Write a Markdown report.", valueName: "FILE"))
    var markdown: String?

    @Option(help: ArgumentHelp("Write an SVG bar chart.", valueName: "FILE"))
    var svg: String?

    @Flag(help: "No progress output.")
    var quiet = false

    @OptionGroup var state: StateOptions

    func configurationValue() throws -> BenchConfiguration {
        var configuration = BenchConfiguration()
        configuration.runs = runs
        configuration.warmups = warmups
        configuration.randomFiles = randomFiles
        configuration.stateDirectory = state.stateDirectory
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
            configuration.arms = allArms
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
        if runs < 1 { throw ValidationError("--runs must be at least 1") }
        _ = try configurationValue()
    }

    func run() throws {
        try reportingErrors {
            guard geteuid() == 0 else {
                throw BenchError(
                    "bench mounts images, attaches loop devices and drops caches: run it as root (sudo ovlcfs bench …)")
            }
            let configuration = try configurationValue()
            let say: (String) -> Void = quiet ? { _ in } : { printError($0) }
            say("loading \(source)")
            let model = try loadBenchModel()
            let objects = workDir + "/objects"
            try FileQueries.createDirectories(objects)
            let made = try makeStandInObjects(for: model, in: objects)
            say("\(model.entryCount) entries; \(made) stand-in objects created in \(objects)")
            let runner = BenchRunner(
                model: model, objects: objects, workDirectory: workDir, configuration: configuration)
            let live = !quiet && FileIO.standardErrorIsTerminal
            runner.progress =
                quiet
                ? { _ in }
                : live
                    ? { line in
                        let out = BufferedOutput.standardError()
                        try? out.write("\r\u{1B}[K" + line)
                        try? out.flush()
                    } : { _ in }
            let signals = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { runner.cancellation.cancel() }
                source.resume()
                return source
            }
            defer { signals.forEach { $0.cancel() } }
            let report = try runner.run(source: source)
            if live { printError("") }
            let out = BufferedOutput.standardOutput()
            try out.write(report.text)
            try out.flush()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            if let json { try writeAtomically(Array(try encoder.encode(report)) + [0x0A], to: json) }
            if let markdown { try writeAtomically(Array(report.markdown.utf8), to: markdown) }
            if let svg { try writeAtomically(Array(report.svg.utf8), to: svg) }
        }
    }

    func loadBenchModel() throws -> Image {
        if (try? FileStatus(path: source))?.isDirectory == true {
            var options = IngestOptions(storeMode: .none)
            options.skipUnreadable = true
            return try Ingest.ingest(directory: source, store: nil, options: options).image
        }
        return try loadModel(source, options: DumpOptions()).0
    }
}

func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let writer = try AtomicFileWriter(destination: path)
    try writer.write(bytes)
    try writer.commit()
}
