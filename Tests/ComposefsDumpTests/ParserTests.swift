import ComposefsDump
import ImageModel
import TestSupport
import Testing

let rootLine = "/ 4096 40755 2 0 0 0 0.0 - - -\n"

func parse(_ text: String, options: DumpOptions = .lenient) throws(DumpError) -> Image {
    try DumpParser.parse(Array(text.utf8), input: "t.dump", options: options)
}

func rejection(_ text: String, options: DumpOptions = .lenient) -> DumpError? {
    do {
        _ = try parse(text, options: options)
        return nil
    } catch {
        return error
    }
}

@Suite("Dump parser")
struct ParserTests {
    @Test("the reference's t.dump parses into the model it describes")
    func referenceExample() throws {
        let text = referenceExampleDump
        let image = try parse(text)
        #expect(image.entryCount == 7)
        #expect(image.inodeCount == 6)
        let a = try #require(image.lookup(path: Array("/a".utf8)))
        let b = try #require(image.lookup(path: Array("/b".utf8)))
        #expect(image.inodeID(of: a) == image.inodeID(of: b))
        #expect(image.isPrimary(a) && !image.isPrimary(b))
        #expect(image.inode(of: a).inlineContent == Array("hello world\n".utf8))
        let big = image.inode(of: try #require(image.lookup(path: Array("/big".utf8))))
        #expect(big.externalObject?.digest?.hex == "f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b")
        #expect(
            big.externalObject?.payload
                == .object(Digest(hex: "f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b")!))
        #expect(image.xattrs(of: big) == [Xattr("user.k=1", "v x")])
        #expect(
            image.inode(of: try #require(image.lookup(path: Array("/dash".utf8)))).inlineContent == [UInt8(ascii: "-")])
        #expect(image.inode(of: try #require(image.lookup(path: Array("/wh".utf8)))).isWhiteout)
        // Writing it back gives the canonical form: the @ line repeats the target's fields.
        let written = String(decoding: DumpWriter.render(image), as: UTF8.self)
        #expect(written.contains("/b 12 @100644 2 0 0 0 1700000000.0 /a hello\\x20world\\n -\n"))
        #expect(written.contains(" user.k\\x3d1=v\\x20x\n"))
        #expect(written.contains("/dash 1 100644 1 0 0 0 1700000000.0 - \\x2d -\n"))
    }

    @Test("children are sorted by raw bytes and directory link counts are derived")
    func sortingAndNlink() throws {
        let image = try parse(
            rootLine + """
                /b 4096 40755 9 0 0 0 0.0 - - -
                /a 4096 40755 9 0 0 0 0.0 - - -
                /a/z 0 100644 1 0 0 0 0.0 - - -
                /a/\\xff 0 100644 1 0 0 0 0.0 - - -
                /a/A 0 100644 1 0 0 0 0.0 - - -

                """)
        let a = try #require(image.lookup(path: Array("/a".utf8)))
        #expect(image.children(of: a).map { Array(image.name(of: $0)) } == [[0x41], [0x7A], [0xFF]])
        #expect(image.nlink(of: image.inodeID(of: .root)) == 4)
        #expect(image.nlink(of: image.inodeID(of: a)) == 2)
        let lines = String(decoding: DumpWriter.render(image), as: UTF8.self).split(separator: "\n")
        #expect(lines.map { $0.split(separator: " ")[0] } == ["/", "/a", "/a/A", "/a/z", "/a/\\xff", "/b"])
    }

    @Test("a hard link may come before its target, and chains resolve")
    func hardLinkOrder() throws {
        let image = try parse(
            rootLine + """
                /l1 0 @100644 0 0 0 0 0.0 /l2 - -
                /l2 0 @100644 0 0 0 0 0.0 /t - -
                /t 5 100644 3 0 0 0 0.0 - hello -

                """)
        let ids = ["/l1", "/l2", "/t"].map { image.lookup(path: Array($0.utf8)).map(image.inodeID(of:)) }
        #expect(Set(ids).count == 1)
        let t = try #require(image.lookup(path: Array("/t".utf8)))
        #expect(image.isPrimary(t))
    }

    @Test(
        "hard-link errors name the line",
        arguments: [
            ("/x 0 @100644 1 0 0 0 0.0 /nothing - -\n", 2, "no target at /nothing"),
            ("/x 0 @100644 1 0 0 0 0.0 /y - -\n/y 0 @100644 1 0 0 0 0.0 /x - -\n", 2, "hardlink cycle"),
            ("/d 4096 40755 2 0 0 0 0.0 - - -\n/x 0 @100644 1 0 0 0 0.0 /d - -\n", 3, "can't be hard-linked"),
            ("/x 0 @100644 1 0 0 0 0.0 - - -\n", 2, "no target path"),
        ])
    func hardLinkErrors(lines: String, line: Int, reason: String) throws {
        let error = try #require(rejection(rootLine + lines))
        #expect(error.line == line)
        #expect(error.reason.contains(reason), "\(error)")
    }

    /// Inputs mkcomposefs accepts silently and ovlcfs refuses, each with its own message.
    static let stricterThanMkcomposefs: [(String, DumpField, String)] = [
        ("/f 0 100644 1 0 0 0 0.0 - - abc", .digest, "not 64 hex digits"),
        ("/f 0 100644 1 0 0 0 0.0 - - \(String(repeating: "g", count: 64))", .digest, "not 64 hex digits"),
        ("/f 0 100644 1 4294967296 0 0 0.0 - - -", .uid, "UID 4294967296 does not fit in 32 bits"),
        ("/f 0 100644 1 0 4294967296 0 0.0 - - -", .gid, "GID 4294967296 does not fit in 32 bits"),
        (
            "/f 18446744073709551616 100644 1 0 0 0 0.0 - - -", .size,
            "SIZE 18446744073709551616 does not fit in 64 bits"
        ),
        ("/f 0 20644 1 0 0 18446744073709551616 0.0 - - -", .rdev, "RDEV 18446744073709551616 does not fit in 64 bits"),
        // Cut to 32 bits, this one would be 0/0: a whiteout, hiding the entry.
        ("/f 0 20644 1 0 0 4294967296 0.0 - - -", .rdev, "device number 4294967296 is wider than 32 bits"),
        ("/f 0 60644 1 0 0 4294967553 0.0 - - -", .rdev, "device number 4294967553 is wider than 32 bits"),
        ("/f 0 100644 1 -1 0 0 0.0 - - -", .uid, "UID -1 is negative"),
        ("/f 0 100644 1 0 0 0 0.1000000000 - - -", .mtime, "nanoseconds"),
        ("/f 0 100644 1 0 0 0 12 - - -", .mtime, "SECONDS.NANOSECONDS"),
        ("/f 0 100644 1 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - -", .path, "duplicate path /f (first on line 2)"),
        ("/d 0 40755 1 0 0 0 0.0 - - -\n/d 0 40755 1 0 0 0 0.0 - - -", .path, "duplicate path /d (first on line 2)"),
        ("/missing/f 0 100644 1 0 0 0 0.0 - - -", .path, "parent directory missing for /missing/f"),
        (
            "/f 0 100644 1 0 0 0 0.0 - - -\n/f/g 0 100644 1 0 0 0 0.0 - - -", .path,
            "parent must be a directory for /f/g: /f is not one"
        ),
        ("/a/./b 0 100644 1 0 0 0 0.0 - - -", .path, "invalid . or .. in path"),
        ("/a/../b 0 100644 1 0 0 0 0.0 - - -", .path, "invalid . or .. in path"),
        ("/a//b 0 100644 1 0 0 0 0.0 - - -", .path, "empty path component"),
        ("/f/ 0 100644 1 0 0 0 0.0 - - -", .path, "empty path component"),
        ("f 0 100644 1 0 0 0 0.0 - - -", .path, "not absolute"),
        ("/f 10 100644 1 0 0 0 0.0 /etc/passwd - -", .payload, "is absolute"),
        ("/f 10 100644 1 0 0 0 0.0 ab/../../etc - -", .payload, "'..' component"),
        ("/f 10 100644 1 0 0 0 0.0 .. - -", .payload, "'..' component"),
        ("/f 0 100644 1 0 0 0 0.0 - - -\u{01}", .line, "raw control byte 0x1"),
        ("/f 0 100644 1 0 0 0 0.0 - - -\r", .line, "CRLF"),
        ("/f\u{7f} 0 100644 1 0 0 0 0.0 - - -", .line, "raw control byte 0x7f"),
    ]

    @Test("refuses what mkcomposefs accepts silently", arguments: stricterThanMkcomposefs)
    func refusesLaxInput(line: String, field: DumpField, reason: String) throws {
        for mode in DumpOptions.Mode.allCases {
            let error = try #require(
                rejection(rootLine + line + "\n", options: DumpOptions(mode: mode)), "\(mode) accepted \(line)")
            #expect(error.field == field, "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
            #expect(error.line >= 2)
        }
    }

    @Test("a NUL byte is rejected with its position")
    func nulByte() throws {
        let error = try #require(rejection(rootLine + "/f 0 100644 1 0 0 0 0.0 - - -\0\n"))
        #expect(error.description == "t.dump:2: invalid embedded NUL character at position 29")
    }

    @Test(
        "strict mode applies CFS_PARSE_STRICT's checks; lenient mode accepts them",
        arguments: [
            ("/d 4096 40755 2 0 0 7 0.0 - - -\n", "RDEV 7 on a directory"),
            ("/s 9 120777 1 0 0 0 0.0 target - -\n", "symlink SIZE 9 differs"),
            ("/s 6 120777 1 0 0 0 0.0 target x -\n", "a symlink cannot have CONTENT"),
            ("/f 0 100644 1 0 0 0 0.0 - - -", "missing trailing newline"),
            ("/f 0 1100644 1 0 0 0 0.0 - - -\n", "bits above 0177777"),
            ("/s 6 120777 1 0 0 0 0.0 target\n", "missing field CONTENT"),
        ])
    func strictOnlyChecks(line: String, reason: String) throws {
        let error = try #require(rejection(rootLine + line, options: .strict))
        #expect(error.reason.contains(reason), "\(error)")
        let image = try parse(rootLine + line)
        #expect(image.entryCount == 2)
        let entry = image.children(of: .root)[0]
        let inode = image.inode(of: entry)
        #expect(inode.rdev == 0)
        if inode.type == .symlink { #expect(inode.size == 6) }
        #expect(inode.permissions == 0o644 || inode.type != .regular)
    }

    @Test("xattrs: order kept, later duplicates replace, escapes decoded, budget enforced")
    func xattrs() throws {
        let image = try parse(
            rootLine + "/f 0 100644 1 0 0 0 0.0 - - - user.b=1 user.a=2 user.b=3 user.\\x3d=a\\x3db user.e=\n")
        let inode = image.inode(of: image.children(of: .root)[0])
        #expect(
            image.xattrs(of: inode) == [
                Xattr("user.b", "3"), Xattr("user.a", "2"), Xattr("user.=", "a=b"), Xattr("user.e", ""),
            ])
        let big = String(repeating: "v", count: 20000)
        let error = try #require(rejection(rootLine + "/f 0 100644 1 0 0 0 0.0 - - - user.a=\(big) user.b=\(big)\n"))
        #expect(error.reason.contains("per-inode maximum"))
        #expect(
            rejection(rootLine + "/f 0 100644 1 0 0 0 0.0 - - - user.a=1  user.b=2\n")?.reason.contains("empty xattr")
                == true)
        #expect(
            rejection(rootLine + "/f 0 100644 1 0 0 0 0.0 - - - user.a\n")?.reason.contains("missing = in xattr")
                == true)
        // Exactly one trailing space after DIGEST is tolerated.
        #expect(try parse(rootLine + "/f 0 100644 1 0 0 0 0.0 - - - \n").entryCount == 2)
    }

    @Test("identical xattr sets are shared between inodes")
    func xattrInterning() throws {
        let image = try parse(
            rootLine + """
                /a 0 100644 1 0 0 0 0.0 - - - security.selinux=x
                /b 0 100644 1 0 0 0 0.0 - - - user.y=1
                /c 0 100644 1 0 0 0 0.0 - - - security.selinux=x

                """)
        let sets = image.children(of: .root).map { image.inode(of: $0).xattrs }
        #expect(sets[0] == sets[2])
        #expect(sets[0] != sets[1])
        #expect(image.xattrTable.count == 3)
    }

    @Test(
        "escapes: bad ones are rejected with the field",
        arguments: [
            ("/f\\q 0 100644 1 0 0 0 0.0 - - -", DumpField.path, "unsupported escape type \\q"),
            ("/f 0 100644 1 0 0 0 0.0 - - - user.a=b\\", .xattr, "lone backslash"),
            ("/f 0 100644 1 0 0 0 0.0 - - - user.a=b\\x4", .xattr, "incomplete \\x escape"),
            ("/f 3 100644 1 0 0 0 0.0 - \\xZZx -", .content, "incomplete \\x escape"),
        ])
    func badEscapes(line: String, field: DumpField, reason: String) throws {
        let error = try #require(rejection(rootLine + line + "\n"))
        #expect(error.field == field)
        #expect(error.reason.contains(reason), "\(error)")
    }

    @Test(
        "structure errors",
        arguments: [
            ("", "no files in dump file"),
            ("/f 0 100644 1 0 0 0 0.0 - - -\n", "the first line must be the root"),
            ("/ 0 100644 1 0 0 0 0.0 - - -\n", "the root must be a directory"),
            (rootLine + rootLine, "a second root"),
            (rootLine + "/f 0 100644 1 0 0\n", "missing field RDEV"),
            (rootLine + "/f 3 100644 1 0 0 0 0.0 - abcd -\n", "CONTENT has 4 bytes, SIZE says 3"),
            (rootLine + "/f 3 100844 1 0 0 0 0.0 - - -\n", "not an octal number"),
            (rootLine + "/f 3 100644 1 0 0 0 0.0 - - - \(String(repeating: "x", count: 256))=1\n", "longer than 255"),
        ])
    func structureErrors(text: String, reason: String) throws {
        let error = try #require(rejection(text))
        #expect(error.reason.contains(reason), "\(error)")
    }

    @Test("feeding the input in chunks of any size gives the same model")
    func chunkedFeeding() throws {
        let text =
            rootLine + """
                /a 4096 40755 2 0 0 0 0.0 - - - user.x=1
                /a/f 12 100644 1 0 0 0 5.6 - hello\\x20world\\n -
                /a/g 100 100644 1 0 0 0 0.0 ab/cdef - -
                /l 0 @100644 1 0 0 0 0.0 /a/f - -
                """
        let bytes = Array(text.utf8)
        let whole = try DumpParser.parse(bytes, input: "t")
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<200 {
            let parser = DumpParser(input: "t")
            var offset = 0
            while offset < bytes.count {
                let size = Int.random(in: 1...40, using: &rng)
                let end = min(bytes.count, offset + size)
                try parser.feed(bytes[offset..<end])
                offset = end
            }
            #expect(try parser.finish() == whole)
        }
    }
}
