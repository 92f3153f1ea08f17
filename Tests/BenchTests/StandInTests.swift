import Bench
import Foundation
import ImageModel
import TestSupport
import Testing

/// Stand-in objects are created only inside the work directory (issue 12 #1).
@Suite("stand-in objects stay in their directory")
struct StandInTests {
    func model(payload: String) throws -> Image {
        var builder = try ImageBuilder(root: Inode(type: .directory, permissions: 0o755))
        try builder.add(
            name: Array("f".utf8), in: .root,
            inode: Inode(
                type: .regular, permissions: 0o644, size: 4096,
                data: .external(ExternalObject(payload: .path(Array(payload.utf8)), digest: nil))))
        return try builder.build()
    }

    @Test(
        "a payload climbing out is refused and the file outside keeps its content",
        arguments: ["../victim", "x/../../victim", "/abs/victim"])
    func traversal(payload: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try "secret".write(toFile: dir.path("victim"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.path("objects/x"), withIntermediateDirectories: true)
        #expect(throws: (any Error).self) {
            try makeStandInObjects(for: try model(payload: payload), in: dir.path("objects"))
        }
        #expect(try String(contentsOfFile: dir.path("victim"), encoding: .utf8) == "secret")
    }

    @Test("a symlink inside the store is not followed to size a file outside")
    func symlinkInStore() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try "secret".write(toFile: dir.path("victim"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.path("objects"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("objects/ab"), withDestinationPath: dir.path("."))
        #expect(throws: (any Error).self) {
            try makeStandInObjects(for: try model(payload: "ab/victim"), in: dir.path("objects"))
        }
        #expect(try String(contentsOfFile: dir.path("victim"), encoding: .utf8) == "secret")
        // A normal payload is created, sparse, with its size.
        #expect(try makeStandInObjects(for: try model(payload: "cd/object"), in: dir.path("objects")) == 1)
        #expect(try FileManager.default.attributesOfItem(atPath: dir.path("objects/cd/object"))[.size] as? Int == 4096)
    }
}
