// ovlcfs-fuzz: seeded mutation fuzzing of every reader ovlcfs points at untrusted input
// (issue 12). Each case is a seed input with random byte mutations, fed to the reader the
// command-line tool uses, then (when accepted) to the model validator and the way back out.
// A case may be refused — with an error — but never trap, crash, take longer than the
// per-case limit or grow memory past the limit.
//
//   ovlcfs-fuzz READER [ITERATIONS] [SEED]     READER: dump, writers, cfs, sqfs, gpt, layer or all
//
// `writers` hunts the other way: mutated dumps that parse are written as both image kinds on
// one thread and two (the same bytes), and read back (the model, less the reported losses).
//
// Every case is written to $TMPDIR/ovlcfs-fuzz-<reader>.case before it runs, so a case that
// kills the process is left behind to reproduce. Prints one summary line per reader and
// exits 1 when a case was slow or memory went past the limit (a crash exits by its signal).
import Bench
import ComposefsDump
import DiskImage
import ErofsWriter
import Foundation
import ImageModel
import LinuxSys
import OCIImage
import ObjectStore
import OverlayTranslation
import SquashfsWriter
import TestSupport

let maxCaseSeconds = 2.0
let maxResidentBytes = 512 << 20

/// A dump's image, or the error reading it.
func parseOutcome(_ bytes: [UInt8], _ options: DumpOptions) -> Result<Image, DumpError> {
    do {
        return .success(try DumpParser.parse(bytes, input: "fuzz", options: options))
    } catch {
        return .failure(error)
    }
}

/// A small model with every kind of entry the formats know.
func seedModel() throws -> Image {
    var dump = "/ 4096 40755 2 0 0 0 1700000000.0 - - - security.selinux=system_u:object_r:root_t:s0\n"
    dump += "/etc 4096 40755 2 0 0 0 1700000000.5 - - - user.a=1 trusted.overlay.opaque=y\n"
    dump += "/etc/hosts 12 100644 1 0 0 0 1.0 - 127.0.0.1\\x20x\\n -\n"
    dump += "/etc/link 0 @100644 1 0 0 0 0.0 /etc/hosts - -\n"
    for i in 0..<40 {
        let hex = String(format: "%02x", i) + String(repeating: "ab", count: 31)
        dump +=
            "/etc/f\(i) \(5000 + i) 100644 1 \(i) \(i) 0 \(i).\(i) \(hex.prefix(2))/\(hex.dropFirst(2)) - \(hex) user.k=v\(i % 3)\n"
    }
    dump += "/s 6 120777 1 0 0 0 0.0 target - -\n"
    dump += "/dev 4096 40755 2 0 0 0 0.0 - - -\n"
    dump +=
        "/dev/null 0 20666 1 0 0 259 0.0 - - -\n/dev/wh 0 20000 1 0 0 0 0.0 - - -\n/dev/fifo 0 10644 1 0 0 0 0.0 - - -\n"
    dump +=
        "/usr 4096 40755 2 0 0 0 0.0 - - -\n/usr/deep 4096 40755 2 0 0 0 0.0 - - -\n/usr/deep/er 4096 40755 2 0 0 0 0.0 - - -\n"
    return try DumpParser.parse(Array(dump.utf8), input: "seed")
}

/// A dump for the writers: xattr sets mixing what squashfs stores with what it cannot (ACLs),
/// on plain files and on stubs; overlay keys the translation escapes; hard links, devices,
/// inline content, and what each format loses (nanoseconds, an empty file's digest).
/// `stubs` more stubs, each its own digest (over 1,024 sets: the tables' own thread).
func writerSeed(stubs: Int) -> [UInt8] {
    var dump = "/ 4096 40755 3 0 0 0 1700000000.0 - - - security.selinux=system_u:object_r:root_t:s0\n"
    dump += "/a 4096 40755 2 0 0 0 5.25 - - - user.a=1 trusted.overlay.opaque=y system.posix_acl_default=x\n"
    dump += "/a/acl 3 100644 1 0 0 0 0.0 - abc - user.keep=1 system.posix_acl_access=\\x02\\x00\n"
    dump += "/a/only-acl 3 100644 1 0 0 0 0.0 - abc - system.posix_acl_access=x\n"
    dump += "/a/link 0 @100644 2 0 0 0 0.0 /a/stub - -\n"
    let digest = String(repeating: "5a", count: 32)
    dump +=
        "/a/stub 70000 100644 2 7 7 0 9.5 \(digest.prefix(2))/\(digest.dropFirst(2)) - \(digest) system.posix_acl_access=x user.s=1 trusted.overlay.x=y\n"
    dump += "/a/empty 0 100644 1 0 0 0 0.0 - - \(digest)\n"
    dump += "/a/sym 3 120777 1 0 0 0 0.0 abc - -\n"
    dump += "/a/dev 0 20644 1 0 0 1025 0.0 - - - security.ima=x\n"
    dump += "/a/fifo 0 10644 1 0 0 0 0.0 - - -\n"
    // A whiteout, in a directory with overlay markers of its own (escaped, then read back).
    dump += "/w 4096 40755 2 0 0 0 0.0 - - - trusted.overlay.opaque=y user.overlay.opaque=y"
    dump += " trusted.overlay.whiteouts=\n"
    dump += "/w/gone 0 20000 1 0 0 0 0.0 - - -\n"
    dump += "/b 4096 40755 2 0 0 0 0.0 - - -\n"
    for i in 0..<stubs {
        let hex = String(format: "%08x", i) + String(repeating: "c3", count: 28)
        let acl = i % 7 == 0 ? " system.posix_acl_access=x" : ""
        dump += "/b/s\(i) \(i) 100644 1 0 0 0 0.0 - - \(hex) user.k=\(i % 5)\(acl)\n"
    }
    return Array(dump.utf8)
}

/// Line-level mutations of a dump, so that most cases still parse and reach the writers: a
/// field from the same column of another line, an xattr of another line added, an xattr
/// dropped, a line repeated under another name, a line removed (never the root's).
func mutateLines(_ seed: [UInt8], count: Int, using rng: inout SplitMix64) -> [UInt8] {
    var lines = seed.split(separator: 0x0A).map {
        $0.split(separator: 0x20, omittingEmptySubsequences: false).map { Array($0) }
    }
    for _ in 0..<count where lines.count > 1 {
        let l = Int.random(in: 1..<lines.count, using: &rng)
        let other = lines.randomElement(using: &rng)!
        switch Int.random(in: 0..<5, using: &rng) {
        case 0:
            let column = Int.random(in: 0..<min(lines[l].count, other.count), using: &rng)
            lines[l][column] = other[column]
        case 1:
            if other.count > 11 { lines[l].append(other[Int.random(in: 11..<other.count, using: &rng)]) }
        case 2:
            if lines[l].count > 11 { lines[l].remove(at: Int.random(in: 11..<lines[l].count, using: &rng)) }
        case 3:
            var copy = lines[l]
            copy[0] += Array("~\(Int.random(in: 0..<100, using: &rng))".utf8)
            lines.insert(copy, at: l + 1)
        default:
            lines.remove(at: l)
        }
    }
    return Array(lines.map { $0.joined(separator: [0x20]) }.joined(separator: [0x0A])) + [0x0A]
}

/// One case of the writers target: the dump is read on one thread and on three (the same
/// model or error), its squashfs loss report is checked against a count of its own, and —
/// when it is a valid model — it is written as both image kinds on one thread and two (the
/// same bytes), which read back as the model, less what each format reports it loses and what
/// the translation cannot carry back. A writer may refuse a model a format cannot hold, by
/// name; any other failure, and any difference, stops the fuzzer.
func writersCase(_ bytes: [UInt8], in work: String) throws {
    let sequential = parseOutcome(bytes, DumpOptions())
    guard sequential == parseOutcome(bytes, DumpOptions(jobs: 3, partSize: 97)) else {
        fatalError("parallel and sequential reads disagree")
    }
    let image = try sequential.get()
    try image.validate()
    let losses = SquashfsLosses(checking: image)
    checkLossCounts(losses, of: image)
    let one = work + "/one.sqfs", two = work + "/two.sqfs"
    var single: [UInt8] = [], double: [UInt8] = []
    do {
        try SquashfsWriter.write(try OverlayTranslation.translate(image), to: one, jobs: 1)
        try SquashfsWriter.write(try OverlayTranslation.translate(image), to: two, jobs: 2)
        try ComposefsImage.write(image, jobs: 1) { single += $0 }
        try ComposefsImage.write(image, jobs: 2) { double += $0 }
    } catch let error where error is TranslationError || error is SquashfsLimitError || error is ComposefsError {
        throw error
    } catch {
        fatalError("writing a valid model failed: \(error)")
    }
    guard FileManager.default.contentsEqual(atPath: one, andPath: two) else {
        fatalError("squashfs images differ between one thread and two")
    }
    guard single == double else { fatalError("composefs images differ between one thread and two") }
    do {
        let back = try OverlayTranslation.untranslate(try SquashfsReader.read(path: one).0)
        let model = try expectedAfterUntranslate(image, options: .init())
        guard try normalized(back) == normalized(try expectedAfterRoundTrip(model, losses: losses)) else {
            fatalError("the squashfs image reads back as another model:\n\(losses.lines)")
        }
        let (read, header) = try ComposefsReader.read(single)
        let expected = try expectedAfterUntranslate(image, options: .composefs(version: header.formatVersion))
        guard try comparable(read) == comparable(expected) else {
            fatalError("the composefs image reads back as another model")
        }
    } catch {
        fatalError("an image just written does not read back: \(error)")
    }
}

/// The squashfs loss report against a count of its own, inode by inode (the round trip
/// applies each reported kind to every inode, so a count that is off would pass there).
func checkLossCounts(_ losses: SquashfsLosses, of image: Image) {
    var expected: [SquashfsLosses.Kind: Int] = [:]
    for index in 0..<image.inodeCount {
        let inode = image[inode: InodeID(index)]
        var kinds: [SquashfsLosses.Kind] = []
        if inode.mtime.nanoseconds != 0 { kinds.append(.nanosecondMtime) }
        if inode.mtime.seconds < 0 || inode.mtime.seconds > Int64(UInt32.max) { kinds.append(.mtimeOutOfRange) }
        if image.xattrs(of: inode).contains(where: { !SquashfsLosses.isStorable($0.key) }) {
            kinds.append(.unsupportedXattr)
        }
        switch inode.type {
        case .blockDevice, .charDevice, .fifo, .socket:
            if inode.size != 0 { kinds.append(.specialFileSize) }
        case .regular:
            if inode.size == 0, let object = inode.externalObject, object.payload != nil || object.digest != nil {
                kinds.append(.emptyFileObject)
            }
        case .directory, .symlink: break
        }
        for kind in kinds { expected[kind, default: 0] += 1 }
    }
    for kind in SquashfsLosses.Kind.allCases where kind != .hardLinkPrimary {
        guard losses.count(kind) == expected[kind, default: 0] else {
            fatalError("the loss report counts \(losses.count(kind)) \(kind), not \(expected[kind, default: 0])")
        }
    }
}

/// The first lines of the embedded cs9 model, for real-world dump text.
func cs9Prefix() -> [UInt8] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "../../Examples/cs9-x86_64-minimal.dump.gz")
    guard let reader = try? InputReader(path: url.standardizedFileURL.path), let bytes = try? reader.readAll() else {
        return []
    }
    return Array(bytes.split(separator: 0x0A, omittingEmptySubsequences: false).prefix(400).joined(separator: [0x0A]))
        + [0x0A]
}

/// Random byte-level mutations: overwrite, interesting values, insert, delete, duplicate or
/// truncate a run, within `range` (offsets past it are left alone).
func mutate(_ bytes: inout [UInt8], count: Int, range: Range<Int>? = nil, using rng: inout SplitMix64) {
    let interesting: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x2F, 0x2E, 0x5C]
    for _ in 0..<count {
        guard !bytes.isEmpty else {
            bytes = [UInt8.random(in: 0...255, using: &rng)]
            continue
        }
        let low = min(max(0, range?.lowerBound ?? 0), bytes.count)
        let window = low..<max(low, min(bytes.count, range?.upperBound ?? bytes.count))
        guard !window.isEmpty else { return }
        let at = Int.random(in: window, using: &rng)
        switch Int.random(in: 0..<8, using: &rng) {
        case 0, 1: bytes[at] = UInt8.random(in: 0...255, using: &rng)
        case 2: bytes[at] = interesting.randomElement(using: &rng)!
        case 3: bytes[at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        case 4:
            bytes.insert(
                contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in interesting.randomElement(using: &rng)!
                }, at: at)
        case 5: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &rng)))
        case 6:
            let end = min(bytes.count, at + Int.random(in: 1...64, using: &rng))
            bytes.insert(contentsOf: Array(bytes[at..<end]), at: Int.random(in: 0...bytes.count, using: &rng))
        default:
            // A 32-bit field set to an extreme.
            let value: UInt32 = [0, 1, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 4096, 0xFFFF].randomElement(using: &rng)!
            for k in 0..<4 where at + k < bytes.count {
                bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k)))
            }
        }
    }
}

func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }

/// One reader under test: its seeds and how to run one case.
struct Target {
    var name: String
    var seeds: [[UInt8]]
    /// Mutates a seed into a case.
    var mutateCase: ([UInt8], inout SplitMix64) -> [UInt8]
    /// Runs a case (its bytes are also in `casePath`); throws when the input is refused.
    var run: ([UInt8], String) throws -> Void
}

func targets(workDirectory: String) throws -> [String: Target] {
    let model = try seedModel()
    let text = DumpWriter.render(model)
    var dumpSeeds = [text]
    let cs9 = cs9Prefix()
    if !cs9.isEmpty { dumpSeeds.append(cs9) }

    let cfsSeeds = [
        try ComposefsImage.bytes(for: model), try ComposefsImage.bytes(for: model, minVersion: 1, maxVersion: 1),
    ]

    var sqfsSeeds: [[UInt8]] = []
    for compression in [SquashfsOptions.Compression.none, .lz4] {
        let path = workDirectory + "/seed-\(compression.rawValue).sqfs"
        _ = try SquashfsWriter.write(
            try OverlayTranslation.translate(model), to: path, options: SquashfsOptions(compression: compression))
        sqfsSeeds.append(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    FileManager.default.createFile(atPath: workDirectory + "/part", contents: Data(count: 8192))
    let uuid = GUID("12345678-1234-5678-1234-567812345678")!
    _ = try GPT.write(
        to: workDirectory + "/seed.raw", diskGUID: uuid,
        partitions: [
            (PartitionType.usr, uuid, "usr", workDirectory + "/part"),
            (PartitionType.usrVerity, uuid, "verity", workDirectory + "/part"),
        ])
    let gptSeed = Array(try Data(contentsOf: URL(fileURLWithPath: workDirectory + "/seed.raw")))

    let layerSeeds = try tarSeeds(workDirectory: workDirectory)

    return [
        "layer": Target(
            name: "layer", seeds: layerSeeds,
            mutateCase: { seed, rng in
                var bytes = seed
                if Int.random(in: 0..<10, using: &rng) == 0 {
                    bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
                }
                mutate(&bytes, count: Int.random(in: 1...8, using: &rng), using: &rng)
                return bytes
            },
            run: { _, path in
                // The whole import pipeline (decompression thread, channel, tar, layer rules,
                // digests of contents), as `ovlcfs build tar:FILE --store-mode none` runs it.
                let result = try OCIImport.importImage(
                    .rootfsTar(file: path), store: nil, options: ImportOptions(storeMode: .none))
                try result.image.validate()
            }),
        "dump": Target(
            name: "dump", seeds: dumpSeeds,
            mutateCase: { seed, rng in
                var bytes = seed
                mutate(&bytes, count: Int.random(in: 1...6, using: &rng), using: &rng)
                return bytes
            },
            run: { bytes, _ in
                // Differential: the parallel reader, cut into tiny parts, must give the very
                // image or the very error (line number included) that one thread gives.
                let one = parseOutcome(bytes, DumpOptions())
                let many = parseOutcome(bytes, DumpOptions(jobs: 3, partSize: 97))
                guard one == many else {
                    fatalError("parallel and sequential reads disagree: \(one) against \(many)")
                }
                let image = try one.get()
                try image.validate()
                _ = try DumpParser.parse(DumpWriter.render(image), input: "fuzz (rewritten)")
            }),
        "writers": Target(
            name: "writers", seeds: [writerSeed(stubs: 0), writerSeed(stubs: 1100)],
            mutateCase: { seed, rng in
                var bytes = mutateLines(seed, count: Int.random(in: 1...6, using: &rng), using: &rng)
                if Int.random(in: 0..<4, using: &rng) == 0 { mutate(&bytes, count: 1, using: &rng) }
                return bytes
            },
            run: { bytes, _ in try writersCase(bytes, in: workDirectory) }),
        "cfs": Target(
            name: "cfs", seeds: cfsSeeds,
            mutateCase: { seed, rng in
                var bytes = seed
                if Int.random(in: 0..<10, using: &rng) == 0 {
                    bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
                }
                mutate(
                    &bytes, count: Int.random(in: 1...8, using: &rng), range: 1024..<max(1024, bytes.count), using: &rng
                )
                return bytes
            },
            run: { bytes, _ in
                let (image, _) = try ComposefsReader.read(bytes)
                try image.validate()
            }),
        "sqfs": Target(
            name: "sqfs", seeds: sqfsSeeds,
            mutateCase: { seed, rng in
                var bytes = seed
                mutate(&bytes, count: Int.random(in: 1...8, using: &rng), range: 0..<bytes.count, using: &rng)
                return bytes
            },
            run: { _, path in
                let (layer, _) = try SquashfsReader.read(path: path)
                try OverlayTranslation.untranslate(layer).validate()
            }),
        "gpt": Target(
            name: "gpt", seeds: [gptSeed],
            mutateCase: { seed, rng in
                var bytes = seed
                // The header and entry array; usually with valid CRCs, so the fields themselves are tested.
                mutate(&bytes, count: Int.random(in: 1...6, using: &rng), range: 512..<1024 + 512, using: &rng)
                bytes = Array(bytes.prefix(seed.count))
                if bytes.count == seed.count && Int.random(in: 0..<4, using: &rng) != 0 {
                    let count = Int(min(UInt32(bytes[592]) | UInt32(bytes[593]) << 8, 128))
                    let size = 128
                    let entries = Array(bytes[1024..<1024 + count * size])
                    bytes.replaceSubrange(600..<604, with: le32(CRC32.checksum(entries)))
                    var header = Array(bytes[512..<604])
                    header.replaceSubrange(16..<20, with: [0, 0, 0, 0])
                    bytes.replaceSubrange(528..<532, with: le32(CRC32.checksum(header)))
                }
                return bytes
            },
            run: { _, path in
                _ = try GPT.read(path: path)
                _ = try VerityDisk.open(path)
            }),
    ]
}

/// Layer tarballs made by GNU tar (PAX with xattrs and a sparse file; GNU format with long
/// names and a hard link) and one of them gzip-compressed.
func tarSeeds(workDirectory: String) throws -> [[UInt8]] {
    let tree = workDirectory + "/tree"
    let long = tree + "/" + String(repeating: "d", count: 120)
    try FileManager.default.createDirectory(atPath: long, withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: tree + "/small", contents: Data("small\n".utf8))
    FileManager.default.createFile(atPath: long + "/" + String(repeating: "f", count: 110), contents: Data(count: 300))
    FileManager.default.createFile(atPath: tree + "/.wh.gone", contents: Data())
    FileManager.default.createFile(atPath: tree + "/.wh..wh..opq", contents: Data())
    let handle = FileManager.default.createFile(atPath: tree + "/sparse", contents: Data(repeating: 7, count: 5000))
    precondition(handle)
    truncate(tree + "/sparse", 1 << 20)
    try FileManager.default.linkItem(atPath: tree + "/small", toPath: tree + "/hard")
    try FileManager.default.createSymbolicLink(atPath: tree + "/link", withDestinationPath: "small")
    var seeds: [[UInt8]] = []
    for (name, arguments) in [
        ("pax.tar", ["--format=posix", "--xattrs", "--sparse"]), ("gnu.tar", ["--format=gnu"]),
        ("pax.tar.gz", ["--format=posix", "-z"]),
    ] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = arguments + ["-C", tree, "-cf", workDirectory + "/" + name, "."]
        try process.run()
        process.waitUntilExit()
        seeds.append(Array(try Data(contentsOf: URL(fileURLWithPath: workDirectory + "/" + name))))
    }
    return seeds
}

/// Peak resident memory of this process image (VmHWM): unlike getrusage's ru_maxrss, which
/// Linux carries over from the process that spawned this one, it starts at exec.
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let arguments = CommandLine.arguments.dropFirst()
guard let which = arguments.first, ["dump", "writers", "cfs", "sqfs", "gpt", "layer", "all"].contains(which) else {
    FileHandle.standardError.write(
        Data("usage: ovlcfs-fuzz dump|writers|cfs|sqfs|gpt|layer|all [ITERATIONS] [SEED]\n".utf8))
    exit(2)
}
let iterations = arguments.dropFirst().first.flatMap { Int($0) } ?? 10_000
let seed = arguments.dropFirst(2).first.flatMap { UInt64($0) } ?? 1
let work = NSTemporaryDirectory() + "ovlcfs-fuzz-\(getpid())"
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)

var failed = false
let all = try targets(workDirectory: work)
for name in which == "all" ? ["dump", "writers", "cfs", "sqfs", "gpt", "layer"] : [which] {
    let target = all[name]!
    var rng = SplitMix64(seed: seed &+ UInt64(name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
    let casePath = NSTemporaryDirectory() + "ovlcfs-fuzz-\(name).case"
    var accepted = 0, refused = 0, slow = 0
    var slowest = 0.0
    let started = now()
    for _ in 0..<iterations {
        let bytes = target.mutateCase(target.seeds.randomElement(using: &rng)!, &rng)
        FileManager.default.createFile(atPath: casePath, contents: Data(bytes))
        let begin = now()
        do {
            try target.run(bytes, casePath)
            accepted += 1
        } catch {
            refused += 1
            if "\(error)".isEmpty {
                failed = true
                print("fuzz \(name): an error without a message")
            }
        }
        let seconds = now() - begin
        slowest = max(slowest, seconds)
        if seconds > maxCaseSeconds {
            slow += 1
            try? FileManager.default.copyItem(atPath: casePath, toPath: casePath + ".slow-\(slow)")
        }
    }
    try? FileManager.default.removeItem(atPath: casePath)
    let rss = residentBytes()
    if slow > 0 || rss > maxResidentBytes { failed = true }
    print(
        String(
            format:
                "fuzz %@: %d cases in %.1f s, %d refused, %d accepted, slowest %.3f s, %d over %.0f s, peak RSS %d MiB (limit %d)",
            name, iterations, now() - started, refused, accepted, slowest, slow, maxCaseSeconds, rss >> 20,
            maxResidentBytes >> 20))
}
// Removed here, not in a `defer`: top-level defers do not run before exit().
try? FileManager.default.removeItem(atPath: work)
exit(failed ? 1 : 0)
