/// Xattrs whose values are made from a digest, stored as the digest instead of as xattrs: the
/// overlay translation's `trusted.overlay.metacopy` and `trusted.overlay.redirect` of a stub
/// are one per file and name its object, so a million stubs would otherwise hold two million
/// small values.
public struct DigestXattrs: Sendable, Hashable {
    /// How a value spells the digest.
    public enum Encoding: Sendable, Hashable {
        /// `prefix` + the 32 bytes.
        case bytes
        /// `prefix` + the object path, `xx/` and 62 lowercase hex digits.
        case objectPath
    }

    /// One derived xattr: its key, and its value as `prefix` + the digest in `encoding`.
    public struct Entry: Sendable, Hashable {
        public var key: [UInt8]
        public var prefix: [UInt8]
        public var encoding: Encoding

        public init(key: [UInt8], prefix: [UInt8], encoding: Encoding) {
            self.key = key
            self.prefix = prefix
            self.encoding = encoding
        }

        /// Writes the value for `digest` into `out`, replacing what it held (its buffer is
        /// reused when `out` holds the only reference to it).
        public func value(for digest: Digest, into out: inout [UInt8]) {
            out.removeAll(keepingCapacity: true)
            out.reserveCapacity(valueLength)
            out.append(contentsOf: prefix)
            switch encoding {
            case .bytes: digest.appendBytes(to: &out)
            case .objectPath: digest.appendObjectPath(to: &out)
            }
        }

        /// The length of every value this entry makes.
        public var valueLength: Int { prefix.count + (encoding == .bytes ? Digest.byteCount : 65) }

        public func value(for digest: Digest) -> [UInt8] {
            var out: [UInt8] = []
            value(for: digest, into: &out)
            return out
        }
    }

    /// The derived xattrs, in the order they follow the set's own.
    public var entries: [Entry]

    public init(_ entries: [Entry]) { self.entries = entries }
}

/// An image's interned xattr sets: inodes with identical xattrs share one set.
///
/// A set is a list of xattrs, or a list followed by ``DigestXattrs`` made from one digest (a
/// derived set: the list is shared with other sets, only the digest is the set's own). Both
/// read the same: ``subscript(_:)`` and ``forEach(in:_:)`` give every xattr in order.
public struct XattrTable: Sendable {
    private enum Storage: Sendable {
        case list([Xattr])
        /// `base`: a list set's id; `rule`: an index into `rules`.
        case derived(base: UInt32, rule: UInt32, digest: Digest)
    }

    private var storage: [Storage] = [.list([])]
    private var index: [[Xattr]: XattrSetID] = [[]: .empty]
    private var rules: [DigestXattrs] = []

    public init() {}

    /// Number of sets (ids run from 0, the empty set, to `count - 1`).
    public var count: Int { storage.count }

    /// Adds a set without looking for an equal one: for sets known to be unique, where the
    /// lookup would only cost time and memory.
    public mutating func append(_ xattrs: [Xattr]) -> XattrSetID {
        if xattrs.isEmpty { return .empty }
        storage.append(.list(xattrs))
        return XattrSetID(rawValue: UInt32(storage.count - 1))
    }

    /// The id of `xattrs`, adding the set if it is new.
    public mutating func intern(_ xattrs: [Xattr]) -> XattrSetID {
        if let id = index[xattrs] { return id }
        let id = XattrSetID(rawValue: UInt32(storage.count))
        storage.append(.list(xattrs))
        index[xattrs] = id
        return id
    }

    /// Adds the set made of set `base` followed by `derived` made from `digest`, unique like
    /// ``append(_:)``: only the digest is stored. `base` must not be derived itself, nor hold
    /// a key of `derived`.
    public mutating func append(base: XattrSetID, deriving derived: DigestXattrs, from digest: Digest)
        -> XattrSetID
    {
        precondition(!isDerived(base), "a derived set's base is a list")
        let rule = rules.firstIndex(of: derived) ?? rules.count
        if rule == rules.count { rules.append(derived) }
        storage.append(.derived(base: base.rawValue, rule: UInt32(rule), digest: digest))
        return XattrSetID(rawValue: UInt32(storage.count - 1))
    }

    /// The xattrs of a set, in order (a derived set's are made afresh).
    public subscript(id: XattrSetID) -> [Xattr] {
        if case .list(let xattrs) = storage[Int(id.rawValue)] { return xattrs }
        var xattrs: [Xattr] = []
        xattrs.reserveCapacity(count(of: id))
        forEach(in: id) { xattrs.append($0) }  // each kept value is copied off the scratch
        return xattrs
    }

    /// A derived set's base set, rule (an index for ``rule(_:)``) and digest; nil for a list.
    public func derivation(of id: XattrSetID) -> (base: XattrSetID, rule: Int, digest: Digest)? {
        guard case .derived(let base, let rule, let digest) = storage[Int(id.rawValue)] else { return nil }
        return (XattrSetID(rawValue: base), Int(rule), digest)
    }

    /// The rules derived sets use, by index.
    public var ruleCount: Int { rules.count }
    public func rule(_ index: Int) -> DigestXattrs { rules[index] }

    /// How many xattrs a set holds.
    public func count(of id: XattrSetID) -> Int {
        switch storage[Int(id.rawValue)] {
        case .list(let xattrs): xattrs.count
        case .derived(let base, let rule, _): count(of: XattrSetID(rawValue: base)) + rules[Int(rule)].entries.count
        }
    }

    /// Whether a set is derived (unique to the inode that carries it).
    public func isDerived(_ id: XattrSetID) -> Bool {
        if case .derived = storage[Int(id.rawValue)] { true } else { false }
    }

    /// Calls `body` with each xattr of a set, in order, without making a derived set's list:
    /// its derived values are made in one buffer, valid only during the call.
    public func forEach(in id: XattrSetID, _ body: (Xattr) throws -> Void) rethrows {
        var scratch = Xattr(key: [], value: [])
        try forEach(in: id, scratch: &scratch, body)
    }

    /// ``forEach(in:_:)`` with the derived values made in `scratch`: pass one across calls,
    /// so its buffer is reused.
    public func forEach(in id: XattrSetID, scratch: inout Xattr, _ body: (Xattr) throws -> Void) rethrows {
        switch storage[Int(id.rawValue)] {
        case .list(let xattrs):
            for xattr in xattrs { try body(xattr) }
        case .derived(let base, let rule, let digest):
            guard case .list(let xattrs) = storage[Int(base)] else { preconditionFailure("derived base") }
            for xattr in xattrs { try body(xattr) }
            for entry in rules[Int(rule)].entries {
                scratch.key = entry.key
                entry.value(for: digest, into: &scratch.value)
                try body(scratch)
            }
        }
    }

    /// Whether every key of a set satisfies `predicate` (no value is made).
    public func allKeys(in id: XattrSetID, satisfy predicate: ([UInt8]) -> Bool) -> Bool {
        switch storage[Int(id.rawValue)] {
        case .list(let xattrs):
            return xattrs.allSatisfy { predicate($0.key) }
        case .derived(let base, let rule, _):
            return allKeys(in: XattrSetID(rawValue: base), satisfy: predicate)
                && rules[Int(rule)].entries.allSatisfy { predicate($0.key) }
        }
    }
}

extension XattrTable: Equatable {
    /// The same sets, by value, in the same order (however they are stored).
    public static func == (a: XattrTable, b: XattrTable) -> Bool {
        guard a.count == b.count else { return false }
        return (0..<a.count).allSatisfy {
            let id = XattrSetID(rawValue: UInt32($0))
            return a[id] == b[id]
        }
    }
}

/// Identifies a set of xattrs in an image's ``XattrTable``.
public struct XattrSetID: Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The empty set, always present.
    public static let empty = XattrSetID(rawValue: 0)
}
