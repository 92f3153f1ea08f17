import ComposefsDump
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys
import OverlayTranslation
import SquashfsWriter
import TestSupport
import Testing

@Suite("squashfs writer and reader")
struct SquashfsRoundTripTests {
    static let vectors = TestPaths.roundTripInputs.map(\.path).filter { !$0.contains("bigfile") }

    @Test(
        "build then read back gives the model, apart from the reported losses",
        arguments: vectors, OverlayLayout.allCases)
    func roundTrip(path: String, layout: OverlayLayout) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let image = try DumpFile.read(path: path)
        let losses = SquashfsLosses(checking: image)
        let layer = try OverlayTranslation.translate(image, options: .init(layout: layout))
        let result = try SquashfsWriter.write(layer, to: dir.path("i.sqfs"))
        #expect(result.bytes % 4096 == 0)
        #expect(result.entries == layer.entryCount)
        let (readLayer, superblock) = try SquashfsReader.read(path: dir.path("i.sqfs"))
        #expect(superblock.inodes == layer.inodeCount)
        let back = try OverlayTranslation.untranslate(readLayer)
        let expected = try expectedAfterRoundTrip(image, losses: losses)
        let a = try normalized(expected), b = try normalized(back)
        if a != b {
            let la = a.split(separator: 0x0A), lb = b.split(separator: 0x0A)
            let first = (0..<min(la.count, lb.count)).first { la[$0] != lb[$0] } ?? min(la.count, lb.count)
            Issue.record(
                "first difference: \(first < la.count ? String(decoding: la[first], as: UTF8.self) : "<end>") vs \(first < lb.count ? String(decoding: lb[first], as: UTF8.self) : "<end>")"
            )
        }
        #expect(a == b)
    }

    @Test(
        "a set with keys squashfs cannot store keeps the ones it can (a file's user xattr, a stub's overlay xattrs)",
        arguments: [1, 2])
    func mixedSets(jobs: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var dump = "/ 4096 40755 2 0 0 0 0.0 - - -\n"
        dump += "/a 3 100644 1 0 0 0 0.0 - abc - user.keep=1 system.posix_acl_access=x\n"
        dump += "/b 3 100644 1 0 0 0 0.0 - abc - system.posix_acl_access=x\n"
        // Stubs, each its own digest: over a thousand sets, so two threads write the tables.
        for i in 0..<1100 {
            let digest = String(repeating: "a", count: 56) + String(format: "%08x", i)
            dump += "/s\(i) 4096 100644 1 0 0 0 0.0 - - \(digest) system.posix_acl_access=x user.s=\(i % 3)\n"
        }
        let image = try DumpParser.parse(Array(dump.utf8), input: "t")
        let losses = SquashfsLosses(checking: image)
        #expect(losses.items.map(\.kind) == [.unsupportedXattr])
        try SquashfsWriter.write(try OverlayTranslation.translate(image), to: dir.path("i.sqfs"), jobs: jobs)
        let back = try OverlayTranslation.untranslate(try SquashfsReader.read(path: dir.path("i.sqfs")).0)
        #expect(try normalized(back) == normalized(try expectedAfterRoundTrip(image, losses: losses)))
        let a = back.lookup(path: Array("/a".utf8))!, s = back.lookup(path: Array("/s7".utf8))!
        #expect(back.xattrs(of: back.inode(of: a)).map(\.key) == [Array("user.keep".utf8)])
        #expect(back.inode(of: s).externalObject != nil, "the stub still names its object")
    }

    @Test(
        "the loss report names exactly what is lost",
        arguments: [
            ("/f 0 100644 1 0 0 0 5.123 - - -\n", SquashfsLosses.Kind.nanosecondMtime),
            ("/f 0 100644 1 0 0 0 4294967296.0 - - -\n", .mtimeOutOfRange),
            ("/f 0 100644 1 0 0 0 0.0 - - - system.posix_acl_access=x\n", .unsupportedXattr),
            ("/f 5 20644 1 0 0 7 0.0 - - -\n", .specialFileSize),
            ("/f 0 100644 1 0 0 0 0.0 ab/cd - -\n", .emptyFileObject),
            ("/b 0 @100644 2 0 0 0 0.0 /c - -\n/c 0 100644 2 0 0 0 0.0 - - -\n", .hardLinkPrimary),
        ])
    func lossReport(lines: String, kind: SquashfsLosses.Kind) throws {
        let image = try DumpParser.parse(Array(("/ 4096 40755 2 0 0 0 0.0 - - -\n" + lines).utf8), input: "t")
        let losses = SquashfsLosses(checking: image)
        #expect(losses.items.map(\.kind) == [kind])
        #expect(losses.items.first?.paths.first?.hasPrefix("/") == true)
        #expect(losses.lines.count == 1)
        let clean = try DumpParser.parse(
            Array("/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 5.0 - - - user.a=b\n".utf8), input: "t")
        #expect(SquashfsLosses(checking: clean).isEmpty)
    }

    @Test(
        "cs9-x86_64-minimal is the same image on one thread and two, and the image libsquashfs's own table writers made"
    )
    func deterministic() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let image = try DumpFile.read(path: TestPaths.cs9.path)
        let layer = try OverlayTranslation.translate(image)
        #expect(layer.xattrTable.count > 4096, "enough xattr sets for the xattr tables' own thread")
        try SquashfsWriter.write(layer, to: dir.path("a.sqfs"), jobs: 1)
        try SquashfsWriter.write(try OverlayTranslation.translate(image), to: dir.path("b.sqfs"), jobs: 2)
        let a = try Data(contentsOf: dir.url.appendingPathComponent("a.sqfs"))
        let b = try Data(contentsOf: dir.url.appendingPathComponent("b.sqfs"))
        #expect(a.count > 100_000)
        #expect(a == b)
        // Through a symlinked directory (where no scratch file is made beside the output, one
        // thread writes all the tables): the same image again.
        try FileManager.default.createDirectory(atPath: dir.path("real"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("link"), withDestinationPath: dir.path("real"))
        try SquashfsWriter.write(layer, to: dir.path("link/c.sqfs"), jobs: 2)
        #expect(try Data(contentsOf: dir.url.appendingPathComponent("real/c.sqfs")) == a)
        // The xattr tables' scratch file is gone.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: dir.url.path).sorted() == [
                "a.sqfs", "b.sqfs", "link", "real",
            ])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("real")) == ["c.sqfs"])
        // ovlcfs serialises the inode, directory and xattr tables itself; this is the image
        // written when libsquashfs's meta and inode writers still did, so a change in any
        // field's place or in a block's header shows here.
        #expect(
            try sha256(Array(a)) == "0d306736e0fc3afd43222d1ae6f2254c6389fea12500d49f2aa989544aede0dd")
    }

    @Test(
        "every compression and table choice writes a readable image",
        arguments: SquashfsOptions.Compression.allCases,
        [Set<SquashfsOptions.Table>(), SquashfsOptions.Table.metadata, [.data, .xattrs]])
    func compressions(compression: SquashfsOptions.Compression, raw: Set<SquashfsOptions.Table>) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let image = try DumpFile.read(path: TestPaths.fixture("special.dump").path)
        let layer = try OverlayTranslation.translate(image)
        try SquashfsWriter.write(
            layer, to: dir.path("i.sqfs"),
            options: SquashfsOptions(compression: compression, uncompressedTables: raw, blockSize: 4096))
        let (back, superblock) = try SquashfsReader.read(path: dir.path("i.sqfs"))
        #expect(try normalized(OverlayTranslation.untranslate(back)) == normalized(image))
        #expect(superblock.blockSize == 4096)
        #expect(superblock.compression == (compression == .none ? "gzip" : compression.rawValue))
    }

    @Test(
        "unsquashfs agrees on names, types, sizes and link targets",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/unsquashfs"),
            "unsquashfs is not installed (apt: squashfs-tools)"))
    func unsquashfsListing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let image = try DumpFile.read(path: TestPaths.cs9.path)
        // zstd: unsquashfs 4.5 cannot read libsquashfs's lz4 images (the kernel and rdsquashfs can).
        try SquashfsWriter.write(
            try OverlayTranslation.translate(image), to: dir.path("i.sqfs"),
            options: SquashfsOptions(compression: .zstd))
        let listing = try run("/usr/bin/unsquashfs", ["-lls", "-d", "", dir.path("i.sqfs")])
        #expect(listing.status == 0, "\(listing.stderrText)")
        var seen = 0
        for line in listing.stdoutText.split(separator: "\n") where line.first.map({ "-dlcbps".contains($0) }) == true {
            // perms owner size date time path [-> target]
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6 else { continue }
            let path = String(fields[5...].joined(separator: " ").split(separator: " -> ").first!)
            guard path != "", let entry = image.lookup(path: Array(path.utf8)) else { continue }
            let inode = image.inode(of: entry)
            seen += 1
            if inode.type == .regular { #expect(String(fields[2]) == String(inode.size), "\(path)") }
            if inode.type == .symlink {
                #expect(line.hasSuffix(" -> " + String(decoding: inode.symlinkTarget!, as: UTF8.self)), "\(path)")
            }
        }
        #expect(seen == image.entryCount - 1)
    }

    @Test("stubs too large for squashfs are refused before anything is written")
    func tooLarge() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let image = try DumpFile.read(path: TestPaths.fixture("bigfile.dump").path)
        #expect(throws: SquashfsLimitError.self) {
            try SquashfsWriter.write(try OverlayTranslation.translate(image), to: dir.path("i.sqfs"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }

    @Test("a 3 GiB + 1 stub is 3073 sparse blocks and reads back with its size")
    func largeStub() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let size: UInt64 = 3 << 30 + 1
        let image = try DumpParser.parse(
            Array("/ 4096 40755 2 0 0 0 0.0 - - -\n/big \(size) 100644 1 0 0 0 0.0 ab/cd - -\n".utf8), input: "t")
        let result = try SquashfsWriter.write(try OverlayTranslation.translate(image), to: dir.path("i.sqfs"))
        #expect(result.stubs == 1)
        #expect(result.bytes < 64 * 1024)
        let back = try OverlayTranslation.untranslate(try SquashfsReader.read(path: dir.path("i.sqfs")).0)
        #expect(back.inode(of: back.lookup(path: Array("/big".utf8))!).size == size)
    }

    @Test(
        "bad options are refused with the option named",
        arguments: [
            SquashfsOptions(blockSize: 3000), SquashfsOptions(blockSize: 2 << 20),
            SquashfsOptions(compression: .gzip, compressionLevel: 12),
            SquashfsOptions(compression: .lz4, compressionLevel: 1),
        ])
    func badOptions(options: SquashfsOptions) {
        #expect(throws: SquashfsOptionsError.self) { try options.validate() }
    }
}

/// SHA-256 of bytes, through sha256sum.
func sha256(_ bytes: [UInt8]) throws -> String {
    String(try run("/usr/bin/sha256sum", ["-"], input: bytes).stdoutText.prefix(64))
}
