import ArgumentParser
import Bench
import ComposefsDump
import DiskImage
import ErofsWriter
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys
import ObjectStore
import OverlayTranslation
import SquashfsWriter
import Verity

extension OverlayLayout: ExpressibleByArgument {}
extension SquashfsOptions.Compression: ExpressibleByArgument {}
extension StoreMode: ExpressibleByArgument {}
extension SquashfsOptions.InodeOrder: ExpressibleByArgument {}
extension SquashfsOptions.DirectoryIndex: ExpressibleByArgument {}

/// What `build` writes.
enum ImageFormat: String, ExpressibleByArgument, Codable {
    /// The overlay option: a squashfs of metacopy stubs.
    case squashfs
    /// A composefs (EROFS) image, byte-identical to mkcomposefs 1.0.8's.
    case composefs
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate a model into the overlay option: a squashfs of metacopy stubs.",
        discussion: """
            Every regular file whose content is an external object becomes a sparse stub of \
            the object's exact size carrying trusted.overlay.metacopy (with the fs-verity \
            digest when the model has one) and trusted.overlay.redirect=/PAYLOAD. Mount the \
            image as the upper lower layer of a read-only overlayfs, with the objects store \
            as a data-only layer (--layout data-only, kernel 6.5+), or as an ordinary lower \
            layer (--layout legacy: the root hides 00…ff with whiteouts).

            The output is deterministic (same model and options, same bytes) and written to \
            a temporary file renamed into place when complete. What squashfs cannot hold \
            (nanosecond mtimes, mtimes outside 1970…2106, xattrs outside user/trusted/security \
            such as POSIX ACLs, device numbers above 32 bits) is reported as a warning; \
            --strict refuses instead.

            MODEL may also be a directory tree (an unpacked root filesystem): it is ingested \
            first, as mkcomposefs --digest-store does — every file of more than 64 bytes is \
            hashed (fs-verity SHA-256) and copied (--store-mode copy), hard-linked \
            (hardlink) or only hashed (none) into the objects store OBJECTS/xx/<62 hex>; \
            smaller files become inline content.

            MODEL may also be a container image, in skopeo's syntax: oci:DIR[:TAG] (an OCI \
            image layout), oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] (docker or \
            podman save) or tar:FILE (one root filesystem tarball, plain, gzip or zstd). Every \
            blob is checked against its digest and every layer against its diff_id; layers apply \
            as the OCI spec says (whiteouts, opaque directories), and file contents stream from \
            the layers into the objects store (--objects; --store-mode copy or none), nothing \
            unpacked on disk. A multi-platform image is read for linux/amd64 unless --platform.

            Examples:
              ovlcfs build rootfs.dump.gz -o rootfs.sqfs
              ovlcfs build /srv/rootfs -o rootfs.sqfs --objects /srv/objects --dump-out rootfs.dump
              ovlcfs build oci:./alpine:3.20 -o alpine.sqfs --objects /srv/objects
              ovlcfs build docker-archive:app.tar -o app.cfs --format composefs --objects /srv/objects
              ovlcfs build rootfs.dump -o rootfs.cfs --format composefs --print-digest
              ovlcfs build rootfs.dump -o rootfs.raw --disk      (GPT: usr + usr-verity partitions)
              ovlcfs build rootfs.dump -o rootfs.sqfs --layout legacy --compression gzip
              ovlcfs build rootfs.dump -o rootfs.sqfs --metadata-compression none --json
            """
    )

    @Argument(
        help: ArgumentHelp(
            "The model: a directory tree, a composefs dump (plain, .gz or - for standard input), an ovlcfs image, or a container image (oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, tar:FILE).",
            valueName: "MODEL"))
    var model: String

    @Option(help: ArgumentHelp("Objects store to ingest a directory into (created if missing).", valueName: "OBJECTS"))
    var objects: String?

    @Option(help: "How a directory's files go into the store: copy (default), hardlink or none (digests only).")
    var storeMode: StoreMode?

    @Option(help: ArgumentHelp("Also write the ingested model as a composefs dump.", valueName: "MODEL.dump"))
    var dumpOut: String?

    @Option(
        help: ArgumentHelp(
            "An image index's platform to import (default linux/amd64).", valueName: "OS/ARCH[/VARIANT]"))
    var platform: String?

    @Option(
        help: ArgumentHelp(
            "Threads for hashing and copying a directory, or for reading a dump's lines (default: one per core). The image is the same for any number.",
            valueName: "N"))
    var jobs: Int?

    @Flag(help: "Ingest: descend into directories on other filesystems.")
    var crossDevices = false

    @Flag(help: "Ingest: warn about unreadable entries and leave them out instead of failing.")
    var skipUnreadable = false

    @Flag(help: "No progress output.")
    var quiet = false

    @Option(name: .shortAndLong, help: ArgumentHelp("The image to write.", valueName: "IMAGE"))
    var output: String

    @Option(help: "squashfs (the overlay option) or composefs (EROFS, as mkcomposefs writes it).")
    var format: ImageFormat = .squashfs

    @Option(help: ArgumentHelp("composefs: lowest format version (0 or 1).", valueName: "N"))
    var minVersion: Int?

    @Option(
        help: ArgumentHelp(
            "composefs: highest format version; 1 is chosen only if the model has a whiteout.", valueName: "N"))
    var maxVersion: Int?

    @Flag(help: "composefs: print the image's fs-verity digest (as mkcomposefs --print-digest).")
    var printDigest = false

    @Flag(
        help:
            "squashfs: write a GPT disk image with the squashfs partition and its dm-verity hash partition; prints the root hash."
    )
    var disk = false

    @Option(help: ArgumentHelp("--disk: dm-verity salt as hex (default: 32 random bytes).", valueName: "HEX"))
    var salt: String?

    @Option(help: "How the objects are stacked: data-only (kernel 6.5+) or legacy.")
    var layout: OverlayLayout = .dataOnly

    @OptionGroup(title: "squashfs options") var squashfs: SquashfsOptionGroup

    @Flag(help: "Refuse the model if squashfs cannot hold all of it, instead of warning.")
    var strict = false

    @Flag(help: "Print a JSON summary of what was written.")
    var json = false

    @Flag(help: "Read the dump with mkcomposefs's CFS_PARSE_STRICT checks too.")
    var strictDump = false

    func saltBytes() throws -> [UInt8]? {
        guard let salt else { return nil }
        guard let bytes = Hex.decode(salt, maxBytes: 256) else {
            throw ValidationError("--salt takes an even number of hex digits (at most 256 bytes)")
        }
        return bytes
    }

    func validate() throws {
        _ = try squashfs.options()
        _ = try saltBytes()
        if disk && format == .composefs { throw ValidationError("--disk applies to squashfs images.") }
        if let jobs, !(1...DumpOptions.maxJobs).contains(jobs) {
            throw ValidationError("--jobs must be between 1 and \(DumpOptions.maxJobs).")
        }
        // Options that would do nothing in this combination are refused, not ignored.
        if salt != nil && !disk { throw ValidationError("--salt applies to --disk.") }
        if format == .composefs && (layout != .dataOnly || squashfs.compressionLevel != nil || strict) {
            throw ValidationError("--layout, --compression-level and --strict apply to squashfs images.")
        }
        if format == .squashfs && (minVersion != nil || maxVersion != nil || printDigest) {
            throw ValidationError("--min-version, --max-version and --print-digest apply to --format composefs.")
        }
    }

    /// mkcomposefs's rule: if either version flag is given, the other defaults to 0.
    var versionRange: (Int, Int) {
        if minVersion == nil && maxVersion == nil { return (0, 1) }
        return (minVersion ?? 0, maxVersion ?? 0)
    }

    func run() throws {
        try reportingErrors {
            let started = ContinuousClock.now
            let options = try squashfs.options()
            var clock = PhaseClock()
            let image: Image
            if let reference = imageReference(model) {
                let directoryOnly = [
                    jobs.map { _ in "--jobs" }, crossDevices ? "--cross-devices" : nil,
                    skipUnreadable ? "--skip-unreadable" : nil,
                ]
                if let option = directoryOnly.compactMap({ $0 }).first {
                    throw ValidationError("\(option) applies when MODEL is a directory to ingest, not to \(reference).")
                }
                image = try importImage(
                    reference, objects: objects, storeMode: storeMode ?? .copy, platform: try parsePlatform(platform),
                    quiet: quiet)
                if let dumpOut { try DumpFile.write(image, to: dumpOut) }
            } else if (try? FileStatus(path: model))?.isDirectory == true {
                image = try ingest()
                if let dumpOut { try DumpFile.write(image, to: dumpOut) }
            } else {
                let ingestOnly = [
                    platform.map { _ in "--platform" },
                    objects.map { _ in "--objects" }, storeMode.map { _ in "--store-mode" },
                    dumpOut.map { _ in "--dump-out" },
                    crossDevices ? "--cross-devices" : nil,
                    skipUnreadable ? "--skip-unreadable" : nil,
                ]
                if let option = ingestOnly.compactMap({ $0 }).first {
                    throw ValidationError("\(option) applies when MODEL is a directory to ingest; \(model) is not one.")
                }
                image = try loadModel(
                    model, options: DumpOptions(mode: strictDump ? .strict : .lenient, jobs: jobs ?? defaultDumpJobs)
                ).0
            }
            clock.lap("read")
            if format == .composefs {
                try writeComposefs(consume image, clock: &clock, started: started)
                return
            }
            let losses = SquashfsLosses(checking: image)
            if strict && losses.losesData { throw SquashfsLossError(losses: losses) }
            // The model is handed over: the translation rewrites it in place.
            let result = try ImagePipeline.write(
                consume image,
                as: .squashfs(layout: layout, options: options, disk: disk ? .init(salt: try saltBytes()) : nil),
                to: output, jobs: jobs ?? defaultDumpJobs
            ) { clock.lap($0) }
            let rootHash = result.rootHash
            let seconds = elapsedSeconds(since: started)
            if !losses.isEmpty {
                printError(
                    "ovlcfs: warning: the squashfs image does not hold everything in \(model)\(strict ? "" : " (--strict refuses what a mount would show differently)"):"
                )
                for line in losses.lines { printError("  " + line) }
            }
            let out = BufferedOutput.standardOutput()
            if json {
                let summary = BuildSummary(
                    image: output, format: "squashfs", layout: layout, compression: options.compression,
                    uncompressedTables: options.uncompressedTables.sorted().map(\.rawValue),
                    blockSize: options.blockSize,
                    bytes: result.bytes, entries: result.entries, inodes: result.inodes, stubs: result.stubs,
                    seconds: seconds, phases: clock.laps, losses: losses.items, rootHash: rootHash)
                try out.writeJSON(summary)
            } else {
                try out.write(
                    "wrote \(output): \(disk ? "verity disk (squashfs + dm-verity)" : "squashfs"), \(layout.rawValue) layout, \(result.entries) entries "
                        + "(\(result.stubs) stubs), \(formatBytes(result.bytes)) in \(String(format: "%.2f", seconds)) s\n"
                )
                if let rootHash { try out.write("root hash: \(rootHash)\n") }
            }
            try out.flush()
        }
    }
}

extension Build {
    /// Writes the composefs image (atomically) and reports it.
    func writeComposefs(_ image: consuming Image, clock: inout PhaseClock, started: ContinuousClock.Instant) throws {
        let (low, high) = versionRange
        let written = try ImagePipeline.write(
            consume image, as: .composefs(minVersion: low, maxVersion: high, digest: printDigest || json),
            to: output,
            jobs: jobs ?? defaultDumpJobs
        ) { clock.lap($0) }
        let version = written.composefsVersion ?? 0, digest = written.digest
        let bytes = written.bytes
        let out = BufferedOutput.standardOutput()
        if json {
            let summary = ComposefsSummary(
                image: output, format: "composefs", version: version, bytes: Int(bytes),
                entries: written.entries, digest: digest?.hex ?? "",
                seconds: elapsedSeconds(since: started), phases: clock.laps)
            try out.writeJSON(summary)
        } else if let digest, printDigest {
            try out.write("\(digest.hex)\n")
        } else {
            try out.write(
                "wrote \(output): composefs version \(version), \(written.entries) entries, "
                    + "\(formatBytes(bytes)) in \(String(format: "%.2f", elapsedSeconds(since: started))) s\n")
        }
        try out.flush()
    }

    /// Ingests the directory `model` into the objects store.
    func ingest() throws -> Image {
        let storeMode = self.storeMode ?? .copy
        if storeMode != .none && objects == nil {
            throw ValidationError(
                "building from a directory needs --objects OBJECTS (or --store-mode none for digests only).")
        }
        let store = try objects.map { path in
            try ObjectStore(path: path, create: storeMode != .none) {
                printError("ovlcfs: waiting for ovlcfs gc on \(path) to finish…")
            }
        }
        var options = IngestOptions(storeMode: storeMode, crossDevices: crossDevices, skipUnreadable: skipUnreadable)
        if let jobs { options.workers = max(1, jobs) }
        let showProgress = !quiet && FileIO.standardErrorIsTerminal
        if showProgress { options.progress = { printProgress($0) } }
        let result = try Ingest.ingest(directory: model, store: store, options: options)
        if showProgress { printError("") }
        if !result.skipped.isEmpty {
            printError(
                "ovlcfs: warning: \(result.skipped.count) unreadable entr\(result.skipped.count == 1 ? "y" : "ies") left out (--skip-unreadable):"
            )
            for line in result.skipped.prefix(5) { printError("  " + line) }
        }
        if !quiet {
            printError(
                "ingested \(model): \(result.filesHashed) files hashed (\(formatBytes(result.bytesHashed))), "
                    + "\(result.objectsAdded) objects added, \(result.objectsPresent) already present")
        }
        return result.image
    }
}

/// One progress line, redrawn in place on a terminal.
func printProgress(_ progress: IngestProgress) {
    let rate = progress.seconds > 0 ? Double(progress.bytesHashed) / progress.seconds : 0
    var line =
        "\r\u{1B}[Kingest: \(progress.filesHashed)/\(progress.filesFound)\(progress.walkDone ? "" : "+") files, "
        + "\(formatBytes(progress.bytesHashed)) of \(formatBytes(progress.bytesFound)), \(formatBytes(UInt64(rate)))/s"
    if progress.walkDone && rate > 0 {
        line += String(format: ", ETA %.0f s", Double(progress.bytesFound - progress.bytesHashed) / rate)
    }
    let out = BufferedOutput.standardError()
    try? out.write(line)
    try? out.flush()
}

struct ComposefsSummary: Codable {
    var image: String
    var format: String
    var version: Int
    var bytes: Int
    var entries: Int
    /// fs-verity digest of the image (what mount.composefs -o digest= expects).
    var digest: String
    var seconds: Double
    var phases: [String: Double]
}

struct BuildSummary: Codable {
    var image: String
    var format: String
    var layout: OverlayLayout
    var compression: SquashfsOptions.Compression
    var uncompressedTables: [String]
    var blockSize: Int
    var bytes: UInt64
    var entries: Int
    var inodes: Int
    var stubs: Int
    var seconds: Double
    /// Seconds per phase: read, translate, write.
    var phases: [String: Double]
    var losses: [SquashfsLosses.Item]
    /// --disk: the dm-verity root hash.
    var rootHash: String?
}

/// Durations of consecutive phases of a command.
struct PhaseClock {
    private var last = ContinuousClock.now
    private(set) var laps: [String: Double] = [:]

    mutating func lap(_ name: String) {
        laps[name] = elapsedSeconds(since: last)
        last = ContinuousClock.now
    }
}
