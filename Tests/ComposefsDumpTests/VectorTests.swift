import ComposefsDump
import Foundation
import ImageModel
import TestSupport
import Testing

@Suite("Shared composefs vectors", .enabled(if: TestPaths.haveVectors, "../shared/vectors is missing"))
struct VectorTests {
    static let accepted = TestPaths.acceptedVectors.map(\.lastPathComponent)
    static let models = TestPaths.modelDumps.map(\.lastPathComponent).filter { $0 != "dot-root.dump" }
    static let shouldFail = TestPaths.shouldFailVectors.map(\.lastPathComponent)

    /// Vectors in canonical form that pass the strict checks: written back, they must equal
    /// the input byte for byte.
    static let strictCanonical = [
        "bigfile-xattr.dump", "bigfile.dump", "honggfuzz-bigfile-with-acl.dump",
        "honggfuzz-chardev-nonzero-size.dump", "honggfuzz-long-symlink.dump", "special.dump",
        "special_v1.dump", "config-with-hard-link.dump.gz", "config.dump.gz",
        "cs9-x86_64-minimal.dump.gz",
    ]

    @Test("the vector set is complete")
    func vectorSetIsComplete() {
        #expect(Self.accepted.count == 13)
        #expect(Self.shouldFail.count == 14)
        #expect(Self.models.count >= 4)
    }

    @Test("accepted vectors parse, and writing and re-parsing gives an equal model", arguments: accepted)
    func acceptedVectorRoundTrips(name: String) throws {
        let url = TestPaths.composefsVectors.appendingPathComponent(name)
        let image = try DumpParser.parse(readVector(url), input: name)
        let written = DumpWriter.render(image)
        let reparsed = try DumpParser.parse(written, input: "\(name) (rewritten)", options: .strict)
        #expect(reparsed == image)
        // The canonical form is a fixed point.
        #expect(DumpWriter.render(reparsed) == written)
    }

    @Test("model dumps parse and round-trip", arguments: models)
    func modelDumpRoundTrips(name: String) throws {
        let url = TestPaths.composefsModels.appendingPathComponent(name)
        let image = try DumpParser.parse(readVector(url), input: name)
        #expect(image.entryCount > 1)
        let reparsed = try DumpParser.parse(DumpWriter.render(image), input: name, options: .strict)
        #expect(reparsed == image)
    }

    @Test("strict canonical vectors are written back byte for byte", arguments: strictCanonical)
    func strictVectorIsByteExact(name: String) throws {
        let url = TestPaths.composefsVectors.appendingPathComponent(name)
        let input = try readVector(url)
        let image = try DumpParser.parse(input, input: name, options: .strict)
        let output = DumpWriter.render(image)
        if output != input {
            let inLines = input.split(separator: 0x0A), outLines = output.split(separator: 0x0A)
            let first =
                (0..<min(inLines.count, outLines.count)).first { inLines[$0] != outLines[$0] }
                ?? min(inLines.count, outLines.count)
            Issue.record("\(name): first difference on line \(first + 1)")
        }
        #expect(output == input)
    }

    @Test("special_v1.dump is the same model as special.dump")
    func specialV1MatchesSpecial() throws {
        let a = try DumpParser.parse(
            readVector(TestPaths.composefsVectors.appendingPathComponent("special.dump")), input: "a")
        let b = try DumpParser.parse(
            readVector(TestPaths.composefsVectors.appendingPathComponent("special_v1.dump")), input: "b")
        #expect(a == b)
    }

    @Test("dot-root.dump is refused by default and parses with normalized paths")
    func dotRootNormalizes() throws {
        let dotRoot = try readVector(TestPaths.composefsModels.appendingPathComponent("dot-root.dump"))
        let error = try #require(throws: DumpError.self) { try DumpParser.parse(dotRoot, input: "dot-root.dump") }
        #expect(error.description == "dot-root.dump:1: path ./ is not absolute (it must start with \"/\")")
        let image = try DumpParser.parse(dotRoot, input: "dot-root.dump", options: DumpOptions(normalizePaths: true))
        let paths = image.depthFirstOrder.map { String(decoding: image.path(of: $0), as: UTF8.self) }
        #expect(paths == ["/", "/a dir w space", "/a-dir", "/a-dir/a-file", "/a-dir/a-hardlink", "/inline.txt"])
        let file = try #require(image.lookup(path: Array("/a-dir/a-file".utf8)))
        let link = try #require(image.lookup(path: Array("/a-dir/a-hardlink".utf8)))
        #expect(image.inodeID(of: file) == image.inodeID(of: link))
        #expect(image.isPrimary(file))
    }

    /// Expected line and a fragment of the reason for every should-fail vector.
    static let expectedFailures: [String: (line: Int, reason: String)] = [
        "should-fail-big-inline.dump": (2, "inline content size 5004 exceeds maximum 5000"),
        "should-fail-dir-hardlink.dump": (2, "directories can't be hardlinked"),
        "should-fail-dot-name.dump": (2, "invalid . or .. in path: /."),
        "should-fail-dotdot-name.dump": (2, "invalid . or .. in path: /.."),
        "should-fail-empty-link-name.dump": (2, "invalid symlink"),
        "should-fail-empty-name.dump": (2, "empty path component"),
        "should-fail-empty-xattr-key.dump": (2, "xattr key is empty"),
        "should-fail-honggfuzz-long-xattr.dump": (1, "per-inode maximum of 32767"),
        "should-fail-long-link.dump": (2, "invalid symlink: target is 7248 bytes"),
        "should-fail-long-xattr-key.dump": (2, "too many xattrs"),
        "should-fail-long-xattr-value.dump": (2, "invalid mode 644"),
        "should-fail-no-ftype.dump": (2, "invalid mode 0"),
        "should-fail-self-hardlink.dump": (2, "self-referential hardlink /037blockdev"),
        "should-fail-too-big.dump": (2, "file too large"),
    ]

    /// Where strict mode finds an earlier fault on the same line than the one the vector is named for.
    static let strictFailures: [String: String] = [
        "should-fail-big-inline.dump": "missing field DIGEST",
        "should-fail-self-hardlink.dump": "mode @63340777 has bits above 0177777",
    ]

    @Test(
        "should-fail vectors are rejected with their line and reason, strict and lenient",
        arguments: shouldFail, [DumpOptions.Mode.lenient, .strict])
    func shouldFailIsRejected(name: String, mode: DumpOptions.Mode) throws {
        let bytes = try readVector(TestPaths.composefsVectors.appendingPathComponent(name))
        var expected = try #require(Self.expectedFailures[name], "no expectation for \(name)")
        if mode == .strict, let strictReason = Self.strictFailures[name] { expected.reason = strictReason }
        let error = try #require(throws: DumpError.self) {
            try DumpParser.parse(bytes, input: name, options: DumpOptions(mode: mode))
        }
        #expect(error.line == expected.line)
        #expect(error.description.hasPrefix("\(name):\(expected.line): "))
        #expect(error.reason.contains(expected.reason), "\(error)")
    }
}
