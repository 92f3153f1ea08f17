import Bench
import ComposefsDump
import Foundation
import ImageModel
import LinuxSys
import OverlayTranslation
import SquashfsWriter
import TestSupport
import Testing

/// The kernel's squashfs lookup starts at the last directory index entry whose name is ≤ the
/// one looked up and scans from there; a wrong index entry shows as a name the kernel cannot
/// find (or finds as the wrong inode). These directories stress it: shared prefixes, names
/// that are prefixes of others, lengths 1…255, bytes above 0x7f, and sizes below, around and
/// far above the dense index's threshold.
@Suite("Directory index: the kernel finds every name of large directories, and no absent one")
struct DirectoryIndexTests {
    static let sizes = [5, 17, 40, 300, 3000]

    /// `count` distinct names in byte order.
    static func names(count: Int, seed: UInt64) -> [[UInt8]] {
        var generator = SeededGenerator(seed: seed)
        let stems: [[UInt8]] = [Array("lib".utf8), Array("libfoo.so.".utf8), Array("x".utf8), [0xC3, 0xA9], [0xFF]]
        var names = Set<[UInt8]>()
        while names.count < count {
            var name = stems[Int.random(in: 0..<stems.count, using: &generator)]
            let extra = Int.random(
                in: 0...(Int.random(in: 0..<10, using: &generator) == 0 ? 250 - name.count : 12), using: &generator)
            for _ in 0..<extra {
                let pick = Int.random(in: 0..<40, using: &generator)
                name.append(
                    pick < 26
                        ? UInt8(0x61 + pick)
                        : pick < 36 ? UInt8(0x30 + pick - 26) : [0x2E, 0x5F, 0x80, 0xFE][pick - 36])
            }
            if name != Array(".".utf8), name != Array("..".utf8) { names.insert(name) }
        }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }

    static func escaped(_ name: [UInt8]) -> String {
        name.map { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2E
                || byte == 0x5F
                ? String(UnicodeScalar(byte)) : String(format: "\\x%02x", byte)
        }.joined()
    }

    /// One directory per size; entry i of each is a file whose mtime is 1000 + i.
    static func model() throws -> (Image, [[[UInt8]]]) {
        var text = "/ 4096 40755 \(2 + sizes.count) 0 0 0 0.0 - - -\n"
        var all: [[[UInt8]]] = []
        for (d, size) in sizes.enumerated() {
            text += "/d\(d) 4096 40755 2 0 0 0 0.0 - - -\n"
            let names = names(count: size, seed: UInt64(d + 1))
            for (i, name) in names.enumerated() {
                text += "/d\(d)/\(escaped(name)) 0 100644 1 0 0 0 \(1000 + i).0 - - -\n"
            }
            all.append(names)
        }
        return (try DumpParser.parse(Array(text.utf8), input: "directory-index"), all)
    }

    @Test("lookups and listings on the kernel", arguments: SquashfsOptions.DirectoryIndex.allCases, [512, 4096])
    func kernelLookups(policy: SquashfsOptions.DirectoryIndex, sectorSize: Int) throws {
        guard HostCapabilities.canMountSquashfsOverlay else {
            print("skipped: \(HostCapabilities.mountSkipReason)")
            return
        }
        let (model, names) = try Self.model()
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var options = SquashfsOptions(compression: .gzip)
        options.directoryIndex = policy
        try SquashfsWriter.write(
            try OverlayTranslation.translate(model, options: .init(layout: .dataOnly)), to: dir.path("i.sqfs"),
            options: options)
        let mounts = TestMounts()
        defer { mounts.tearDown() }
        try mounts.mount(
            "squashfs", try mounts.attachLoop(dir.path("i.sqfs"), sectorSize: sectorSize), dir.path("mnt"),
            options: "ro")

        for (d, names) in names.enumerated() {
            let handle = try DirectoryHandle(path: dir.path("mnt") + "/d\(d)")
            #expect(try handle.entries().sorted { $0.lexicographicallyPrecedes($1) } == names, "listing of d\(d)")
            var wrong: [String] = []
            var inodes: [UInt64] = []
            for (i, name) in names.enumerated() {
                let status = try? handle.status(name)
                if status?.mtimeSeconds != Int64(1000 + i) { wrong.append(Self.escaped(name)) }
                inodes.append(status?.inode ?? 0)
            }
            // Inode order `directories`: a directory's children are written (and numbered) together, in name order.
            #expect(
                inodes == Array(inodes[0]..<inodes[0] + UInt64(names.count)),
                "d\(d): children not numbered consecutively")
            #expect(
                wrong.isEmpty,
                "d\(d) (\(names.count) entries): \(wrong.count) names not found or found as another inode, e.g. \(wrong.prefix(3))"
            )
            let present = Set(names)
            let edges: [[UInt8]] = [[0x01], [0xFF, 0xFF, 0xFF]]
            let absent = edges + names.flatMap { name -> [[UInt8]] in [name + [0x01], Array(name.dropLast())] }
            let found = absent.filter { !$0.isEmpty && !present.contains($0) && handle.exists($0) }
            #expect(found.isEmpty, "d\(d): absent names found: \(found.prefix(3).map(Self.escaped))")
        }
    }

    @Test("dense index: a header and an index entry every ⌈√n⌉ entries above 16")
    func denseStride() throws {
        let dense = SquashfsOptions.DirectoryIndex.dense
        #expect(dense.headerStride(entries: 16) == nil)
        #expect(dense.headerStride(entries: 17) == 5)
        #expect(dense.headerStride(entries: 3000) == 55)
        #expect(dense.headerStride(entries: 1_000_000) == 1000)
        #expect(SquashfsOptions.DirectoryIndex.blocks.headerStride(entries: 3000) == nil)
    }
}
