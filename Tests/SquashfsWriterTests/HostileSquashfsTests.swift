import Foundation
import ImageModel
import LinuxSys
import OverlayTranslation
import SquashfsWriter
import TestSupport
import Testing

/// squashfs images a reader must survive (issue 12 #5, #9, #16).
@Suite("hostile squashfs images")
struct HostileSquashfsTests {
    @Test(
        "a 100,000-deep image reads back (the reader walks iteratively); the model validator then refuses its path length"
    )
    func deepTree() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var builder = try ImageBuilder(root: Inode(type: .directory, permissions: 0o755))
        var parent = EntryID.root
        let depth = 100_000
        for _ in 0..<depth {
            parent = try builder.add(
                name: Array("d".utf8), in: parent, inode: Inode(type: .directory, permissions: 0o755))
        }
        try builder.add(
            name: Array("leaf".utf8), in: parent,
            inode: Inode(type: .regular, permissions: 0o644, size: 2, data: .inline(Array("hi".utf8))))
        let model = try builder.build()
        // A model without objects is its own overlay layer: written as is (translation validates).
        _ = try SquashfsWriter.write(model, to: dir.path("deep.sqfs"), options: SquashfsOptions())
        let (back, _) = try SquashfsReader.read(path: dir.path("deep.sqfs"))
        #expect(back.entryCount == depth + 2)
        var leaf = EntryID.root
        while let next = back.children(of: leaf).first { leaf = next }
        #expect(back.inode(of: leaf).inlineContent == Array("hi".utf8))
        #expect(back.path(of: leaf).count == 2 * depth + 5)
        #expect(throws: ModelError.self) { try OverlayTranslation.untranslate(back).validate() }
    }

    @Test(
        "a plain (not metacopy) file larger than inline content is refused before it is read",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mksquashfs"), "mksquashfs is missing"))
    func sparsePlainFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path("tree"), withIntermediateDirectories: true)
        for name in ["a", "b", "c", "d"] {
            FileManager.default.createFile(atPath: dir.path("tree/\(name)"), contents: nil)
            #expect(truncate(dir.path("tree/\(name)"), 1 << 30) == 0)
        }
        let made = try run(
            "/usr/bin/mksquashfs", [dir.path("tree"), dir.path("sparse.sqfs"), "-quiet", "-no-progress"])
        #expect(made.status == 0, "\(made.stderrText)")
        #expect(throws: SquashfsError.self) { try SquashfsReader.read(path: dir.path("sparse.sqfs")) }
        do {
            _ = try SquashfsReader.read(path: dir.path("sparse.sqfs"))
        } catch {
            #expect("\(error)".contains("without trusted.overlay.metacopy"), "\(error)")
        }
    }

    @Test("an image that is not a regular file is refused without reading it")
    func fifoImage() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(mkfifo(dir.path("fifo"), 0o644) == 0)
        #expect(throws: (any Error).self) { try SquashfsReader.read(path: dir.path("fifo")) }
    }
}
