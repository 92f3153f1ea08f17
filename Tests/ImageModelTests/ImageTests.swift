import ImageModel
import TestSupport
import Testing

func dir(_ permissions: UInt16 = 0o755) -> Inode { Inode(type: .directory, permissions: permissions) }
func file(_ content: String) -> Inode {
    Inode(type: .regular, permissions: 0o644, size: UInt64(content.utf8.count), data: .inline(Array(content.utf8)))
}

@Suite("Image model")
struct ImageTests {
    @Test("paths, lookup and depth-first order follow sorted names")
    func pathsAndOrder() throws {
        var builder = try ImageBuilder(root: dir())
        let usr = try builder.add(name: Array("usr".utf8), in: .root, inode: dir())
        try builder.add(name: Array("b".utf8), in: usr, inode: file("b"))
        try builder.add(name: Array("a".utf8), in: usr, inode: file("a"))
        try builder.add(name: Array("etc".utf8), in: .root, inode: dir())
        let image = try builder.build()
        #expect(
            image.depthFirstOrder.map { String(decoding: image.path(of: $0), as: UTF8.self) } == [
                "/", "/etc", "/usr", "/usr/a", "/usr/b",
            ])
        let a = try #require(image.lookup(path: Array("/usr/a".utf8)))
        #expect(image.inode(of: a).inlineContent == Array("a".utf8))
        #expect(image.lookup(path: Array("/usr/c".utf8)) == nil)
        #expect(image.lookup(path: Array("/usr/a/x".utf8)) == nil)
        #expect(image.nlink(of: image.inodeID(of: .root)) == 4)
        #expect(image.parent(of: a) == usr)
    }

    @Test("invalid names are refused", arguments: ["", ".", "..", "a/b", "a\0b", String(repeating: "n", count: 256)])
    func invalidNames(name: String) throws {
        var builder = try ImageBuilder(root: dir())
        #expect(throws: ModelError.self) { try builder.add(name: Array(name.utf8), in: .root, inode: file("")) }
    }

    @Test("names of 255 bytes and '...' are fine")
    func validNames() throws {
        var builder = try ImageBuilder(root: dir())
        try builder.add(name: Array(String(repeating: "n", count: 255).utf8), in: .root, inode: file(""))
        try builder.add(name: Array("...".utf8), in: .root, inode: file(""))
        #expect(try builder.build().entryCount == 3)
    }

    @Test("duplicate names are found when building")
    func duplicates() throws {
        var builder = try ImageBuilder(root: dir())
        let first = try builder.add(name: Array("x".utf8), in: .root, inode: file("1"))
        let second = try builder.add(name: Array("x".utf8), in: .root, inode: file("2"))
        #expect(throws: ModelError.duplicateName(directory: .root, name: Array("x".utf8), first: first, second: second))
        {
            try builder.build()
        }
    }

    @Test("children only under directories; no hard links to directories; root is a directory")
    func structuralRules() throws {
        #expect(throws: ModelError.rootNotDirectory) { try ImageBuilder(root: file("")) }
        var builder = try ImageBuilder(root: dir())
        let f = try builder.add(name: Array("f".utf8), in: .root, inode: file(""))
        #expect(throws: ModelError.parentNotDirectory(parent: f)) {
            try builder.add(name: Array("g".utf8), in: f, inode: file(""))
        }
        let d = try builder.add(name: Array("d".utf8), in: .root, inode: dir())
        #expect(throws: ModelError.hardLinkToDirectory(inode: builder.inodeID(of: d))) {
            try builder.addHardLink(name: Array("l".utf8), in: .root, to: builder.inodeID(of: d))
        }
    }

    @Test("equality ignores build order but sees names, inodes, links and primaries")
    func equality() throws {
        func make(reversed: Bool, primaryLink: Bool = false, mtime: Int64 = 0) throws -> Image {
            var builder = try ImageBuilder(root: dir())
            var inode = file("x")
            inode.mtime = Timestamp(seconds: mtime)
            inode.xattrs = builder.internXattrs([Xattr("user.a", "1")])
            let names = reversed ? ["b", "a"] : ["a", "b"]
            let target = try builder.add(name: Array(names[0].utf8), in: .root, inode: inode)
            let link = try builder.addHardLink(name: Array(names[1].utf8), in: .root, to: builder.inodeID(of: target))
            if primaryLink != reversed { builder.makePrimary(link) }
            return try builder.build()
        }
        #expect(try make(reversed: false) == make(reversed: true))
        #expect(try make(reversed: false) != make(reversed: false, primaryLink: true))
        #expect(try make(reversed: false) != make(reversed: false, mtime: 1))
    }

    @Test("digests parse, print and map to composefs object paths")
    func digests() throws {
        let hex = "f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b"
        let digest = try #require(Digest(hex: hex))
        #expect(digest.hex == hex)
        #expect(Digest(hex: hex.uppercased()) == digest)
        #expect(digest.bytes.count == 32 && digest.bytes[0] == 0xF5 && digest.bytes[31] == 0x4B)
        #expect(Digest(bytes: digest.bytes) == digest)
        #expect(String(decoding: digest.objectPath, as: UTF8.self) == "f5/" + hex.dropFirst(2))
        #expect(Digest(hex: String(hex.dropLast())) == nil)
        #expect(Digest(hex: String(hex.dropLast()) + "g") == nil)
        #expect(Payload(digest.objectPath) == .object(digest))
        // Upper-case or other paths are kept verbatim, so they print back as they came.
        let upper = Array(("F5/" + hex.dropFirst(2).uppercased()).utf8)
        #expect(Payload(upper) == .path(upper))
        #expect(Payload(upper).bytes == upper)
    }

    @Test("the summary counts inodes by type, links, objects and bytes once per inode")
    func summary() throws {
        var builder = try ImageBuilder(root: dir())
        let object = ExternalObject(payload: .path(Array("ab/cd".utf8)), digest: nil)
        let f = try builder.add(
            name: Array("f".utf8), in: .root,
            inode: Inode(type: .regular, permissions: 0o644, size: 1000, data: .external(object)))
        try builder.addHardLink(name: Array("g".utf8), in: .root, to: builder.inodeID(of: f))
        try builder.add(
            name: Array("h".utf8), in: .root,
            inode: Inode(type: .regular, permissions: 0o644, size: 10, data: .external(object)))
        try builder.add(name: Array("w".utf8), in: .root, inode: Inode(type: .charDevice, permissions: 0))
        try builder.add(name: Array("i".utf8), in: .root, inode: file("abc"))
        let summary = ImageSummary(try builder.build())
        #expect(summary.entries == 6)
        #expect(summary.hardLinks == 1)
        #expect(summary.byType["regular"] == 3)
        #expect(summary.byType["directory"] == 1)
        #expect(summary.byType["charDevice"] == 1)
        #expect(summary.objects == 1)
        #expect(summary.fileBytes == 1013)
        #expect(summary.inlineFiles == 1)
        #expect(summary.whiteouts == 1)
    }
}

@Suite("External objects")
struct ExternalObjectTests {
    static let d1 = Digest(hex: "f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b")!
    static let d2 = Digest(hex: "babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e")!

    @Test(
        "payload and digest are kept in every combination",
        arguments: [
            (Payload?.none, Digest?.none), (.object(d1), nil), (nil, d1), (.object(d1), d1), (.object(d1), d2),
            (.path(Array("some/where".utf8)), d2), (.path(Array("x".utf8)), nil),
        ])
    func combinations(payload: Payload?, digest: Digest?) {
        let object = ExternalObject(payload: payload, digest: digest)
        #expect(object.payload == payload)
        #expect(object.digest == digest)
    }

    @Test("the common case fits in 48 bytes")
    func compact() {
        #expect(MemoryLayout<ExternalObject>.stride <= 48)
    }
}

@Suite("digest text")
struct DigestTextTests {
    @Test("hex and object paths, eight digits at a time, spell every byte as the byte-by-byte encoder does")
    func hexMatchesBytewise() throws {
        var generator = SystemRandomNumberGenerator()
        // Every byte value in every position, and random digests.
        var digests = (0..<256).map { value in
            Digest(bytes: (0..<32).map { UInt8(truncatingIfNeeded: value &+ $0 &* 37) })!
        }
        for _ in 0..<500 {
            digests.append(Digest(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })!)
        }
        for digest in digests {
            let hex = Array(Hex.encode(digest.bytes).utf8)
            #expect(digest.hexBytes == hex)
            #expect(digest.objectPath == Array(hex[0..<2]) + [UInt8(ascii: "/")] + Array(hex[2...]))
            #expect(Digest(objectPath: digest.objectPath) == digest)
            #expect(digest.objectPath(prefix: [0x2F]) == [0x2F] + digest.objectPath)
        }
    }
}
