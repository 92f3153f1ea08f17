import ArgumentParser
import ComposefsDump
import DiskImage
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read an image model, validate it and print a summary, JSON counts or the canonical dump.",
        discussion: """
            MODEL is a composefs dump file — plain text, gzip-compressed (detected by content, \
            whatever the name), or `-` for standard input — or a squashfs image written by \
            `ovlcfs build`, or a composefs image (ours or mkcomposefs's), read back into the \
            model. Every rejection names the input, \
            the line and the reason, e.g. `model.dump:17: xattr key is empty`.

            The reader is stricter than mkcomposefs by default: it refuses malformed digests, \
            numbers that overflow their field, duplicate paths, missing parents, `.`/`..`/empty \
            path components, payloads outside the objects store and raw control bytes. \
            --strict adds what mkcomposefs checks under CFS_PARSE_STRICT.

            Examples:
              ovlcfs inspect --example
              ovlcfs inspect cs9-x86_64-minimal.dump.gz --json
              zcat model.dump.gz | ovlcfs inspect - --dump > canonical.dump
              ovlcfs inspect model.dump --dump -o canonical.dump
            """
    )

    @Argument(
        help: ArgumentHelp(
            "The model: a composefs dump (plain or .gz), - for standard input, an ovlcfs or composefs image, or a container image (oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, tar:FILE; digests only).",
            valueName: "MODEL"))
    var model: String?

    @Flag(help: "Inspect the built-in example model instead of a file.")
    var example = false

    @Flag(help: "Print the counts as a JSON object.")
    var json = false

    @Flag(help: "Print the canonical dump of the model.")
    var dump = false

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("With --dump: write it to FILE (atomically) instead of standard output.", valueName: "FILE"))
    var output: String?

    @Flag(
        help: "Also apply mkcomposefs's CFS_PARSE_STRICT checks (trailing newline, symlink sizes, rdev on non-devices)."
    )
    var strict = false

    @Flag(help: "Resolve '.', '..' and repeated '/' in paths instead of rejecting them.")
    var normalizePaths = false

    @Option(
        help: ArgumentHelp(
            "A container image index's platform to read (default linux/amd64).", valueName: "OS/ARCH[/VARIANT]"))
    var platform: String?

    func validate() throws {
        if example == (model != nil) {
            throw ValidationError("Give exactly one of MODEL or --example.")
        }
        if json && dump { throw ValidationError("--json and --dump are exclusive.") }
        if output != nil && !dump { throw ValidationError("--output needs --dump.") }
    }

    func run() throws {
        try reportingErrors {
            let options = DumpOptions(
                mode: strict ? .strict : .lenient, normalizePaths: normalizePaths, jobs: defaultDumpJobs)
            let image: Image
            var kind = ModelKind.dump
            if example {
                image = try DumpParser.parse(Array(ExampleModel.dump.utf8), input: "<example>", options: options)
            } else {
                (image, kind) = try loadModel(model!, options: options, platform: try parsePlatform(platform))
            }
            if dump {
                try DumpFile.write(image, to: output ?? "-")
                return
            }
            let summary = ImageSummary(image)
            let out = BufferedOutput.standardOutput()
            if let model, !json, kind == .verityDisk {
                let disk = try VerityDisk.open(model)
                for part in [disk.data, disk.hash] {
                    try out.write(
                        "partition \(PartitionType.name(part.type)) \(part.name): uuid \(part.uuid), LBA \(part.firstLBA)–\(part.lastLBA) (\(formatBytes(part.size)))\n"
                    )
                }
                try out.write("root hash (from the partition UUIDs): \(disk.rootHashHex)\n")
            }
            if json {
                try out.writeJSON(summary)
            } else {
                try out.write(summary.text(name: example ? "built-in example" : model!))
            }
            try out.flush()
        }
    }
}

extension ImageSummary {
    func text(name: String) -> String {
        var lines = ["model: \(name)"]
        lines.append("entries:      \(entries) (\(entries - hardLinks) inodes, \(hardLinks) extra hard-link paths)")
        let types = FileType.allCases.map { "\($0.jsonName) \(byType[$0.jsonName] ?? 0)" }.joined(separator: ", ")
        lines.append("by type:      \(types)")
        lines.append(
            "regular:      \(inlineFiles) inline, \(externalFiles) external (\(filesWithDigest) with fs-verity digest)")
        lines.append("objects:      \(objects) distinct payloads")
        lines.append("file bytes:   \(fileBytes) (\(formatBytes(fileBytes)))")
        lines.append("xattrs:       \(xattrs) (\(distinctXattrSets) distinct sets)")
        lines.append("whiteouts:    \(whiteouts)")
        return lines.joined(separator: "\n") + "\n"
    }
}

func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// Runs `body`; a failure prints `ovlcfs: <what went wrong>` on standard error and exits 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("ovlcfs: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
