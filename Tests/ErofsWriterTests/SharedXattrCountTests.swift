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
        #expect(colliding.sharedWord == fast.sharedWord)
        #expect(colliding.bodySize == fast.bodySize)
    }

    /// A table with derived sets and the same table with each derived set stored as the list
    /// it reads as: the composefs layout must not tell them apart.
    static func derivedAndListed() -> (XattrTable, XattrTable, uses: [Int]) {
        let d1 = Digest(hex: String(repeating: "0123456789abcdef", count: 4))!
        let d2 = Digest(hex: String(repeating: "fedcba9876543210", count: 4))!
        let rule = DigestXattrs([
            .init(key: Array("trusted.overlay.metacopy".utf8), prefix: [0, 0x24, 0, 1], encoding: .bytes),
            .init(key: Array("trusted.overlay.redirect".utf8), prefix: Array("/".utf8), encoding: .objectPath),
        ])
        let label = Xattr("security.selinux", "system_u:object_r:usr_t:s0")
        // A base whose key sorts after the derived ones (user.) and one before (security.).
        let bases: [[Xattr]] = [[label], [Xattr("user.z", "1")], [label, Xattr("user.z", "1")], []]
        var derived = XattrTable(), listed = XattrTable()
        for base in bases {
            _ = derived.intern(base)
            _ = listed.intern(base)
        }
        // d1 on three stubs of different bases, d2 on one; and a stored list holding d1's
        // metacopy (a stub whose payload is not its digest's path): one pair, five inodes.
        for (base, digest) in [(0, d1), (1, d1), (2, d2), (3, d1)] {
            let id = derived.intern(bases[base])
            let set = derived.append(base: id, deriving: rule, from: digest)
            _ = listed.append(derived[set])
        }
        let stored = [label, Xattr(key: rule.entries[0].key, value: rule.entries[0].value(for: d1))]
        _ = derived.append(stored)
        _ = listed.append(stored)
        let uses = [0] + [Int](repeating: 1, count: derived.count - 1)
        return (derived, listed, uses)
    }

    @Test("derived sets lay out as the lists they read as, on both paths")
    func derivedSetsLayOutAsLists() {
        let (derived, listed, uses) = Self.derivedAndListed()
        #expect(derived == listed)
        for hash in [pairHash, { _ in 7 }] as [(Xattr) -> UInt64] {
            let a = XattrSets(derived, uses: uses, hash: hash), b = XattrSets(listed, uses: uses, hash: hash)
            #expect(a.shared == b.shared)
            #expect(a.sharedWord == b.sharedWord)
            #expect(a.bodySize == b.bodySize)
            #expect(a.bloom == b.bloom)
            for s in 0..<derived.count {
                var scratch = Xattr(key: [], value: [])
                var sorted: [Xattr] = []
                a.forEachSorted(s, scratch: &scratch) { i, xattr in
                    #expect(i == sorted.count)
                    sorted.append(xattr)
                }
                #expect(sorted == b.list(s), "set \(s) in key order")
            }
        }
        // The metacopy of d1 is on four inodes (three derived, one stored): shared.
        let sets = XattrSets(derived, uses: uses)
        #expect(sets.shared.contains { $0.key == Array("trusted.overlay.metacopy".utf8) })
    }

    @Test("random tables: derived sets lay out as the lists they read as (seeded)")
    func randomDerivedTables() {
        var state: UInt64 = 0x5EED
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let rule = DigestXattrs([
            .init(key: Array("trusted.overlay.metacopy".utf8), prefix: [0, 0x24, 0, 1], encoding: .bytes),
            .init(key: Array("trusted.overlay.redirect".utf8), prefix: Array("/".utf8), encoding: .objectPath),
        ])
        // Keys that sort before, between and after the derived ones; ACLs; empty values.
        let keys = [
            "security.selinux", "trusted.a", "trusted.overlay.n", "trusted.overlay.overlay.x", "trusted.overlay.p",
            "trusted.overlay.s", "user.a", "user.z", "system.posix_acl_access",
        ]
        let values = ["", "1", "x", "system_u:object_r:usr_t:s0"]
        let digests = (0..<6).map { Digest(hex: String(repeating: String($0 + 1, radix: 16), count: 64))! }
        for round in 0..<150 {
            var derived = XattrTable(), listed = XattrTable()
            for _ in 0..<(1 + next(12)) {
                var base: [Xattr] = []
                for key in keys where next(3) == 0 { base.append(Xattr(key, values[next(values.count)])) }
                if next(4) == 0 { base.reverse() }  // unsorted too
                if next(3) == 0 {
                    // A stored list equal to a derived one, or holding one of its pairs.
                    let baseID = derived.intern(base)
                    let fullID = derived.append(base: baseID, deriving: rule, from: digests[0])
                    let full = derived[fullID]
                    let stored = next(2) == 0 ? full : Array(full.prefix(base.count + 1))
                    _ = listed.intern(base)
                    _ = listed.append(full)
                    _ = derived.append(stored)
                    _ = listed.append(stored)
                    continue
                }
                let id = derived.intern(base)
                _ = listed.intern(base)
                let set = derived.append(base: id, deriving: rule, from: digests[next(digests.count)])
                _ = listed.append(derived[set])
            }
            guard derived == listed else {
                Issue.record("round \(round): the twin tables differ")
                continue
            }
            let uses = (0..<derived.count).map { $0 == 0 ? 0 : next(4) }
            for hash in [pairHash, { _ in 3 }] as [(Xattr) -> UInt64] {
                let a = XattrSets(derived, uses: uses, hash: hash), b = XattrSets(listed, uses: uses, hash: hash)
                #expect(a.shared == b.shared, "round \(round)")
                #expect(a.sharedWord == b.sharedWord, "round \(round)")
                #expect(a.bodySize == b.bodySize, "round \(round)")
                #expect(a.bloom == b.bloom, "round \(round)")
                #expect(a.hasACL == b.hasACL, "round \(round)")
                for s in 0..<derived.count {
                    let list = b.list(s)
                    for i in list.indices where a.xattr(set: s, at: i) != list[i] {
                        Issue.record("round \(round): xattr \(i) of set \(s)")
                    }
                }
            }
        }
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
