import ComposefsDump
import ImageModel
import OverlayTranslation
import TestSupport
import Testing

func model(_ lines: String) throws -> Image {
    try DumpParser.parse(Array(("/ 4096 40755 2 0 0 0 0.0 - - -\n" + lines).utf8), input: "t.dump")
}

func xattrs(_ image: Image, _ path: String) -> [String: [UInt8]] {
    let entry = image.lookup(path: Array(path.utf8))!
    var result: [String: [UInt8]] = [:]
    for xattr in image.xattrs(of: image.inode(of: entry)) {
        result[String(decoding: xattr.key, as: UTF8.self)] = xattr.value
    }
    return result
}

let digestHex = "f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b"

@Suite("Overlay translation")
struct TranslationTests {
    @Test(
        "external files become stubs with metacopy and redirect",
        arguments: [
            (
                "/f 100000 100644 1 0 0 0 0.0 f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b - \(digestHex)",
                [0x00, 0x24, 0x00, 0x01] + Digest(hex: digestHex)!.bytes,
                "/f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b" as String?
            ),
            ("/f 10 100644 1 0 0 0 0.0 ab/cd - -", [UInt8](), "/ab/cd"),
            (
                "/f 10 100644 1 0 0 0 0.0 - - \(digestHex)", [0x00, 0x24, 0x00, 0x01] + Digest(hex: digestHex)!.bytes,
                nil
            ),
        ])
    func stubs(line: String, metacopy: [UInt8], redirect: String?) throws {
        let layer = try OverlayTranslation.translate(try model(line + "\n"))
        let x = xattrs(layer, "/f")
        #expect(x["trusted.overlay.metacopy"] == metacopy)
        #expect(x["trusted.overlay.redirect"] == redirect.map { Array($0.utf8) })
        let inode = layer.inode(of: layer.lookup(path: Array("/f".utf8))!)
        #expect(inode.externalObject != nil)
        #expect(inode.size > 0)
    }

    @Test("inline and empty files stay plain files without overlay xattrs")
    func inlineAndEmpty() throws {
        let layer = try OverlayTranslation.translate(
            try model("/i 3 100644 1 0 0 0 0.0 - abc -\n/e 0 100644 1 0 0 0 0.0 ab/cd - -\n"))
        #expect(xattrs(layer, "/i").isEmpty)
        #expect(xattrs(layer, "/e").isEmpty)
        #expect(layer.inode(of: layer.lookup(path: Array("/e".utf8))!).inlineContent == [])
    }

    @Test("the model's trusted.overlay.* xattrs are escaped; user.overlay.* are not")
    func escaping() throws {
        let layer = try OverlayTranslation.translate(
            try model(
                "/f 0 100644 1 0 0 0 0.0 - - - trusted.overlay.redirect=/x user.overlay.redirect=/y trusted.other=z\n"))
        #expect(
            xattrs(layer, "/f") == [
                "trusted.overlay.overlay.redirect": Array("/x".utf8), "user.overlay.redirect": Array("/y".utf8),
                "trusted.other": Array("z".utf8),
            ])
    }

    @Test("whiteouts become escaped xwhiteouts and mark their directory", arguments: [0, 1])
    func whiteouts(version: Int) throws {
        let image = try model("/d 4096 40755 2 0 0 0 0.0 - - -\n/d/w 0 20640 1 0 0 0 0.0 - - - user.k=v\n")
        let layer = try OverlayTranslation.translate(image, options: .init(formatVersion: version))
        let w = layer.inode(of: layer.lookup(path: Array("/d/w".utf8))!)
        #expect(w.type == .regular)
        #expect(w.permissions == 0o640)
        #expect(w.size == 0)
        #expect(
            xattrs(layer, "/d/w") == [
                "user.k": Array("v".utf8), "trusted.overlay.overlay.whiteout": [], "user.overlay.whiteout": [],
            ])
        var marks: [String: [UInt8]] = ["trusted.overlay.overlay.whiteouts": [], "user.overlay.whiteouts": []]
        if version >= 1 {
            marks["trusted.overlay.overlay.opaque"] = Array("x".utf8)
            marks["user.overlay.opaque"] = Array("x".utf8)
        }
        #expect(xattrs(layer, "/d") == marks)
        #expect(xattrs(layer, "/").isEmpty)
    }

    @Test("legacy layout: the root gets whiteouts for the 00…ff names it lacks")
    func legacyRoot() throws {
        let image = try model("/0a 4096 40755 2 7 8 0 5.0 - - -\n/etc 4096 40755 2 0 0 0 0.0 - - -\n")
        let dataOnly = try OverlayTranslation.translate(image, options: .init(layout: .dataOnly))
        #expect(dataOnly.children(of: .root).count == 2)
        let legacy = try OverlayTranslation.translate(image, options: .init(layout: .legacy))
        #expect(legacy.children(of: .root).count == 2 + 255 + OverlayTranslation.storePrivateNames.count)
        #expect(legacy.lookup(path: Array("/.ovlcfs-store.json".utf8)).map { legacy.inode(of: $0).isWhiteout } == true)
        let ff = legacy.inode(of: legacy.lookup(path: Array("/ff".utf8))!)
        #expect(ff.isWhiteout && ff.permissions == 0o644)
        #expect(legacy.inode(of: legacy.lookup(path: Array("/0a".utf8))!).type == .directory)
    }

    @Test(
        "payloads that cannot be redirects are refused before anything is written",
        arguments: [
            ("/etc/passwd", "is absolute"), ("a/../../b", "'..' component"), ("", "empty payload path"),
            ("a//b", "empty or '.' component"),
        ])
    func badPayloads(payload: String, reason: String) throws {
        var builder = try ImageBuilder(root: Inode(type: .directory, permissions: 0o755))
        try builder.add(
            name: Array("f".utf8), in: .root,
            inode: Inode(
                type: .regular, permissions: 0o644, size: 5,
                data: .external(ExternalObject(payload: .path(Array(payload.utf8)), digest: nil))))
        let image = try builder.build()
        // The model validator (every writer's gate) refuses it, naming the entry.
        do {
            _ = try OverlayTranslation.translate(image)
            Issue.record("accepted payload \(payload)")
        } catch let error as ModelError {
            guard case .invalidEntry(let path, let why) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(path == "/f")
            #expect(why.contains(reason), "\(error)")
        }
    }

    @Test("untranslate inverts translate", arguments: OverlayLayout.allCases)
    func inverse(layout: OverlayLayout) throws {
        let image = try model(
            """
            /d 4096 40755 2 0 0 0 0.0 - - - trusted.overlay.opaque=y user.a=1
            /d/w 0 20000 1 0 0 0 0.0 - - -
            /f 100000 100644 2 0 0 0 0.0 f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b - \(digestHex) trusted.overlay.redirect=/x
            /g 10 100644 1 0 0 0 0.0 - - -
            /h 100000 @100644 2 0 0 0 0.0 /f - -
            /i 3 100644 1 0 0 0 0.0 - abc -
            /s 1 120777 1 0 0 0 0.0 x - -

            """)
        let back = try OverlayTranslation.untranslate(
            try OverlayTranslation.translate(image, options: .init(layout: layout)))
        #expect(back == image)
    }
}
