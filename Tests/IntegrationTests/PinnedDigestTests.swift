import Foundation
import MountDriver
import TestSupport
import Testing

/// `--digest` (issue 15): the image is opened once, its fs-verity digest checked on that
/// descriptor, and every later step reads the image through it — a file swapped in under the
/// path after the check is never what gets mounted.
@Suite("pinned image digests on the real kernel", .serialized)
struct PinnedDigestTests {
    let ovlcfs = TestPaths.productsDirectory.appendingPathComponent("ovlcfs").path

    /// Two images whose /which says a or b.
    func images(_ fixture: MountFixture, format: String) throws -> (a: String, b: String, digestA: [UInt8]) {
        for name in ["a", "b"] {
            let tree = fixture.dir.path("tree-\(name)")
            try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
            try Data("\(name)\n".utf8).write(to: URL(fileURLWithPath: tree + "/which"))
            try Data(String(repeating: name, count: 1000).utf8).write(to: URL(fileURLWithPath: tree + "/big"))
            let built = try run(
                ovlcfs,
                [
                    "build", tree, "-o", fixture.dir.path("\(name).img"), "--objects", fixture.objects, "--format",
                    format, "--quiet",
                ])
            try #require(built.status == 0, "\(built.stderrText)")
        }
        let digest = try run(ovlcfs, ["digest", "--compact", fixture.dir.path("a.img")]).stdoutText
        let bytes = try #require(hexBytes(digest.trimmingCharacters(in: .whitespacesAndNewlines)))
        return (fixture.dir.path("a.img"), fixture.dir.path("b.img"), bytes)
    }

    func hexBytes(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out.count == 32 ? out : nil
    }

    @Test(
        "an image swapped under its path after the digest check: the checked one is mounted",
        arguments: ["squashfs", "composefs"])
    func swappedAfterCheck(format: String) throws {
        guard HostCapabilities.canMountSquashfsOverlay else {
            print("skipped: \(HostCapabilities.mountSkipReason)")
            return
        }
        let fixture = try MountFixture()
        defer { fixture.tearDown() }
        let (a, b, digest) = try images(fixture, format: format)
        var request = MountRequest(image: a, target: fixture.mountPoint, objects: [fixture.objects], verity: .off)
        request.digest = digest
        fixture.driver.injectFault = { _, _ in
            // After the check, before the first step (the plan read the image already, through
            // the checked descriptor): b takes a's name before the loop device or EROFS mount.
            if FileManager.default.fileExists(atPath: b) { _ = rename(b, a) }
        }
        try fixture.driver.mount(request)
        #expect(try String(contentsOfFile: fixture.mountPoint + "/which", encoding: .utf8) == "a\n")
        try fixture.driver.unmount(fixture.mountPoint)
        #expect(nothingLeft(under: fixture.dir.url.path).isEmpty)
    }

    @Test(
        "an image swapped before the check is refused, and nothing is attached", arguments: ["squashfs", "composefs"])
    func swappedBeforeCheck(format: String) throws {
        guard HostCapabilities.canMountSquashfsOverlay else {
            print("skipped: \(HostCapabilities.mountSkipReason)")
            return
        }
        let fixture = try MountFixture()
        defer { fixture.tearDown() }
        let (a, b, digest) = try images(fixture, format: format)
        var request = MountRequest(image: a, target: fixture.mountPoint, objects: [fixture.objects], verity: .off)
        request.digest = digest
        // b takes a's name before the mount starts: the check (before any plan or step) sees b.
        #expect(rename(b, a) == 0)
        let error = try #require(throws: MountDriverError.self) { try fixture.driver.mount(request) }
        #expect("\(error)".contains("not the \(digest.map { String(format: "%02x", $0) }.joined())"), "\(error)")
        #expect(!TestMounts.isMounted(fixture.mountPoint))
        #expect(nothingLeft(under: fixture.dir.url.path).isEmpty)
    }

    @Test("without fs-verity on the image, a digest pins only a file no one but root can change")
    func othersMayWrite() throws {
        guard HostCapabilities.canMountSquashfsOverlay else {
            print("skipped: \(HostCapabilities.mountSkipReason)")
            return
        }
        let fixture = try MountFixture()
        defer { fixture.tearDown() }
        let (a, _, digest) = try images(fixture, format: "squashfs")
        #expect(chmod(a, 0o666) == 0)
        var request = MountRequest(image: a, target: fixture.mountPoint, objects: [fixture.objects], verity: .off)
        request.digest = digest
        let error = try #require(throws: MountDriverError.self) { try fixture.driver.mount(request) }
        #expect("\(error)".contains("can be changed by others than root"), "\(error)")
        #expect(nothingLeft(under: fixture.dir.url.path).isEmpty)
    }
}
