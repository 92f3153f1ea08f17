import ComposefsDump
import Foundation
import ImageModel
import ImagePipeline
import TestSupport
import Testing

@testable import ErofsWriter

/// The shared xattr table is counted through a 64-bit hash prefilter; two different pairs
/// under one hash (chance, or a model crafted to collide) must send the count down the exact
/// path and give the same image.
@Suite("shared xattrs: the hash prefilter never changes the image")
struct SharedXattrCountTests {
    @Test("a hash under which every pair collides takes the exact path")
    func collidingHashTakesExactPath() {
        var table = XattrTable()
        let label = Xattr("security.selinux", "system_u:object_r:usr_t:s0")
        _ = table.intern([label, Xattr("user.a", "1")])
        _ = table.intern([label, Xattr("user.b", "2")])
        let uses = [0, 3, 2]
        let fast = XattrSets(table, uses: uses)
        let colliding = XattrSets(table, uses: uses, hash: { _ in 42 })
        #expect(!XattrClasses(fast).countedExactly)
        #expect(XattrClasses(colliding, hash: { _ in 42 }).countedExactly)
        // The label is on five inodes, user.a on three, user.b on two: all three are shared.
        #expect(fast.shared.count == 3)
        #expect(colliding.shared == fast.shared)
        #expect(colliding.sharedOffset == fast.sharedOffset)
        #expect(colliding.bodySize == fast.bodySize)
    }

    @Test(
        "every vector's image is the same through the exact path",
        .enabled(if: TestPaths.haveVectors, "../shared/vectors is missing"))
    func vectorsThroughExactPath() throws {
        for url in TestPaths.acceptedVectors {
            let model = try DumpFile.read(path: url.path)
            let expected = try ComposefsImage.bytes(for: model)
            var image: [UInt8] = []
            try ComposefsImage.write(model, minVersion: 0, maxVersion: 1, pairHash: { _ in 0 }) {
                image.append(contentsOf: $0)
            }
            #expect(image == expected, "\(url.lastPathComponent)")
        }
    }
}
