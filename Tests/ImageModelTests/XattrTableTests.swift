import ImageModel
import Testing

/// Derived sets (a base list plus xattrs made from a digest) read exactly like the list they
/// stand for, through every accessor.
@Suite("xattr table: derived sets")
struct XattrTableTests {
    static let digest = Digest(hex: String(repeating: "0123456789abcdef", count: 4))!
    static let rule = DigestXattrs([
        .init(key: Array("trusted.overlay.metacopy".utf8), prefix: [0, 0x24, 0, 1], encoding: .bytes),
        .init(key: Array("trusted.overlay.redirect".utf8), prefix: Array("/".utf8), encoding: .objectPath),
    ])
    static let label = Xattr("security.selinux", "system_u:object_r:usr_t:s0")

    /// What a derived set of `base` and `digest` must read as.
    static func expected(_ base: [Xattr], _ digest: Digest) -> [Xattr] {
        base + [
            Xattr(key: Array("trusted.overlay.metacopy".utf8), value: [0, 0x24, 0, 1] + digest.bytes),
            Xattr(key: Array("trusted.overlay.redirect".utf8), value: Array("/".utf8) + digest.objectPath),
        ]
    }

    @Test("a derived set reads as its base followed by the values made from its digest")
    func readsAsList() {
        var table = XattrTable()
        let base = table.intern([Self.label])
        let derived = table.append(base: base, deriving: Self.rule, from: Self.digest)
        let empty = table.append(base: .empty, deriving: Self.rule, from: Self.digest)
        #expect(table.isDerived(derived) && !table.isDerived(base))
        #expect(table[derived] == Self.expected([Self.label], Self.digest))
        #expect(table[empty] == Self.expected([], Self.digest))
        #expect(table.count(of: derived) == 3 && table.count(of: empty) == 2)
        var visited: [Xattr] = []
        table.forEach(in: derived) { visited.append($0) }
        #expect(visited == table[derived], "forEach's buffer is not shared with what the caller kept")
        var again: [Xattr] = []
        var scratch = Xattr(key: [], value: [])
        for _ in 0..<2 {
            again.removeAll()
            table.forEach(in: derived, scratch: &scratch) { again.append($0) }
            #expect(again == table[derived], "a scratch passed across calls")
        }
        #expect(table.allKeys(in: derived) { !$0.isEmpty })
        #expect(!table.allKeys(in: derived) { $0.starts(with: Array("security.".utf8)) }, "the derived keys count")
        #expect(!table.allKeys(in: empty) { !$0.starts(with: Array("trusted.".utf8)) })
        #expect(table.derivation(of: derived)?.digest == Self.digest)
        #expect(table.derivation(of: base) == nil)
        #expect(table.ruleCount == 1, "one rule, stored once")
        // The value of the first entry has the length of the prefix plus the digest.
        #expect(Self.rule.entries[0].value(for: Self.digest).count == 36)
        #expect(Self.rule.entries[1].value(for: Self.digest).count == 66)
    }

    @Test("tables compare by the sets they read as, however those are stored")
    func equality() {
        var derived = XattrTable()
        let base = derived.intern([Self.label])
        _ = derived.append(base: base, deriving: Self.rule, from: Self.digest)
        var listed = XattrTable()
        _ = listed.intern([Self.label])
        _ = listed.append(Self.expected([Self.label], Self.digest))
        #expect(derived == listed)
        var other = XattrTable()
        _ = other.intern([Self.label])
        _ = other.append(base: base, deriving: Self.rule, from: Digest.zero)
        #expect(other != derived)
    }
}
