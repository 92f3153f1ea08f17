import ImageModel
import Testing

/// The model validator every writer's input passes (issue 12).
@Suite("model validator")
struct ValidatorTests {
    func image(_ inode: Inode, xattrs: [Xattr] = []) throws -> Image {
        var builder = try ImageBuilder(root: Inode(type: .directory, permissions: 0o755))
        var inode = inode
        inode.xattrs = builder.internXattrs(xattrs)
        try builder.add(name: Array("e".utf8), in: .root, inode: inode)
        return try builder.build()
    }

    func reason(_ image: Image) -> String? {
        do {
            try image.validate()
            return nil
        } catch {
            guard case .invalidEntry(let path, let reason) = error else { return "\(error)" }
            #expect(path == "/e")
            return reason
        }
    }

    @Test(
        "payloads must be normalised paths inside the store",
        arguments: [
            ("../x", "'..'"), ("a/../b", "'..'"), ("/etc/shadow", "absolute"), ("./a", "'.'"), ("a//b", "empty"),
            ("", "empty"), ("a/\0b", "NUL"),
        ])
    func payloads(payload: String, expected: String) throws {
        let inode = Inode(
            type: .regular, permissions: 0o644, size: 1,
            data: .external(ExternalObject(payload: .path(Array(payload.utf8)), digest: nil)))
        #expect(reason(try image(inode))?.contains(expected) == true)
    }

    @Test(
        "device numbers wider than the kernel's 32 bits are refused (cut, they would name another device or a whiteout)"
    )
    func deviceNumbers() throws {
        for type in [FileType.charDevice, .blockDevice] {
            #expect(reason(try image(Inode(type: type, permissions: 0o644, rdev: 0xFFFF_FFFF))) == nil)
            let wide = try image(Inode(type: type, permissions: 0o644, rdev: 1 << 32))
            #expect(reason(wide)?.contains("wider than 32 bits") == true)
        }
    }

    @Test("inline content, symlinks and xattrs within the formats' limits")
    func limits() throws {
        #expect(
            reason(
                try image(
                    Inode(
                        type: .regular, permissions: 0o644, size: 6000,
                        data: .inline([UInt8](repeating: 1, count: 6000)))))?.contains("inline") == true)
        #expect(reason(try image(Inode(type: .regular, permissions: 0o644, size: 3, data: .inline([1, 2])))) != nil)
        #expect(reason(try image(Inode(type: .symlink, permissions: 0o777, size: 0, data: .symlink([])))) != nil)
        let big = (0..<5).map { Xattr(key: Array("user.x\($0)".utf8), value: [UInt8](repeating: 0, count: 60_000)) }
        #expect(
            reason(try image(Inode(type: .directory, permissions: 0o755), xattrs: big))?.contains("per-inode maximum")
                == true)
        #expect(
            reason(
                try image(
                    Inode(type: .directory, permissions: 0o755), xattrs: [Xattr("user.a", "1"), Xattr("user.a", "2")]))?
                .contains("twice") == true)
        #expect(
            reason(
                try image(
                    Inode(
                        type: .regular, permissions: 0o644, mtime: Timestamp(seconds: -5, nanoseconds: 2_000_000_000),
                        data: .inline([])))) != nil)
        // What is fine passes, pre-1970 mtimes included.
        #expect(
            reason(
                try image(
                    Inode(
                        type: .regular, permissions: 0o644, mtime: Timestamp(seconds: -315_619_200), data: .inline([])))
            ) == nil)
    }

    @Test("paths longer than the limit are refused (every dump line must fit the reader's line limit)")
    func pathLength() throws {
        var builder = try ImageBuilder(root: Inode(type: .directory, permissions: 0o755))
        var parent = EntryID.root
        let name = Array(String(repeating: "n", count: 255).utf8)
        for _ in 0..<(Limits.maxPathLength / 256) {
            parent = try builder.add(name: name, in: parent, inode: Inode(type: .directory, permissions: 0o755))
        }
        #expect(throws: Never.self) { try builder.build().validate() }
        try builder.add(name: name, in: parent, inode: Inode(type: .directory, permissions: 0o755))
        let error = try #require(throws: ModelError.self) { try builder.build().validate() }
        #expect("\(error)".contains("longer than \(Limits.maxPathLength)"))
    }
}
