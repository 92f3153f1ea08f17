/// A SHA-256 fs-verity digest: 32 bytes, stored inline (no heap allocation).
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    // Big-endian words: w0 holds bytes 0…7, so comparing words compares bytes.
    private var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public static let byteCount = 32

    /// All zero bytes.
    public static let zero = Digest(words: 0, 0, 0, 0)

    private init(words a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) { (w0, w1, w2, w3) = (a, b, c, d) }

    /// Creates a digest from exactly 32 bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var words = Words()
        for (i, byte) in bytes.enumerated() { words.shiftIn(UInt64(byte), bits: 8, word: i / 8) }
        (w0, w1, w2, w3) = (words.w0, words.w1, words.w2, words.w3)
    }

    /// Parses exactly 64 hexadecimal digits (either case).
    public init?(hex: some Collection<UInt8>) {
        guard hex.count == 2 * Self.byteCount else { return nil }
        var words = Words()
        for (i, char) in hex.enumerated() {
            guard let nibble = hexValue(char) else { return nil }
            words.shiftIn(UInt64(nibble), bits: 4, word: i / 16)
        }
        (w0, w1, w2, w3) = (words.w0, words.w1, words.w2, words.w3)
    }

    public init?(hex: String) { self.init(hex: Array(hex.utf8)) }

    /// Parses exactly 64 hexadecimal digits (either case) without copying them.
    public init?(hex: Span<UInt8>) {
        guard hex.count == 2 * Self.byteCount,
            let a = hexWord(hex, from: 0), let b = hexWord(hex, from: 16),
            let c = hexWord(hex, from: 32), let d = hexWord(hex, from: 48)
        else { return nil }
        (w0, w1, w2, w3) = (a, b, c, d)
    }

    /// Parses a canonical composefs object path: `xx/` + 62 lowercase hex digits.
    public init?(objectPath bytes: [UInt8]) {
        guard bytes.count == 65, bytes[2] == UInt8(ascii: "/") else { return nil }
        let span = bytes.span
        guard let head = hexWord(span.extracting(0..<2), from: 0, count: 2, lowercaseOnly: true),
            let a = hexWord(span, from: 3, count: 14, lowercaseOnly: true),
            let b = hexWord(span, from: 17, lowercaseOnly: true),
            let c = hexWord(span, from: 33, lowercaseOnly: true),
            let d = hexWord(span, from: 49, lowercaseOnly: true)
        else { return nil }
        (w0, w1, w2, w3) = (head << 56 | a, b, c, d)
    }

    /// The 32 bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.byteCount)
        for word in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> shift)) }
        }
        return out
    }

    /// 64 lowercase hex digits, as ASCII bytes.
    public var hexBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 2 * Self.byteCount)
        var span = out.mutableSpan
        var raw = span.mutableBytes
        writeHex(into: &raw, at: 0)
        return out
    }

    /// 64 lowercase hex digits.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    /// The composefs object path for this digest: `xx/` + the remaining 62 hex digits.
    public var objectPath: [UInt8] { objectPath(prefix: []) }

    /// `prefix` followed by the object path, in one allocation (`/xx/…` is an overlay redirect).
    public func objectPath(prefix: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(prefix.count + 65)
        out.append(contentsOf: prefix)
        appendObjectPath(to: &out)
        return out
    }

    /// Appends the object path (`xx/` + 62 hex digits) to `out`: the 64 digits one place
    /// along, then the first two moved back in front of the `/`.
    public func appendObjectPath(to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 65))
        var span = out.mutableSpan
        var raw = span.mutableBytes
        writeHex(into: &raw, at: start + 1)
        span[start] = span[start + 1]
        span[start + 1] = span[start + 2]
        span[start + 2] = UInt8(ascii: "/")
    }

    /// Writes the 64 lowercase hex digits at `offset`, eight at a time.
    @inline(__always)
    private func writeHex(into raw: inout MutableRawSpan, at offset: Int) {
        for (k, word) in [w0, w1, w2, w3].enumerated() {
            raw.storeBytes(
                of: hexDigits(of: UInt32(truncatingIfNeeded: word >> 32)).littleEndian, toByteOffset: offset + 16 * k,
                as: UInt64.self)
            raw.storeBytes(
                of: hexDigits(of: UInt32(truncatingIfNeeded: word)).littleEndian, toByteOffset: offset + 16 * k + 8,
                as: UInt64.self)
        }
    }

    /// `prefix` followed by the 32 bytes, in one allocation.
    public func bytes(prefix: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(prefix.count + Self.byteCount)
        out.append(contentsOf: prefix)
        appendBytes(to: &out)
        return out
    }

    /// Appends the 32 bytes to `out`.
    public func appendBytes(to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: Self.byteCount))
        var span = out.mutableSpan
        var raw = span.mutableBytes
        for (k, word) in [w0, w1, w2, w3].enumerated() {
            raw.storeBytes(of: word.bigEndian, toByteOffset: start + 8 * k, as: UInt64.self)
        }
    }

    public static func < (a: Digest, b: Digest) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }
}

/// Four accumulators, so parsing a digest allocates nothing.
private struct Words {
    var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0
    @inline(__always)
    mutating func shiftIn(_ value: UInt64, bits: UInt64, word: Int) {
        switch word {
        case 0: w0 = w0 << bits | value
        case 1: w1 = w1 << bits | value
        case 2: w2 = w2 << bits | value
        default: w3 = w3 << bits | value
        }
    }
}

/// The 8 lowercase hex digits of `value` as ASCII bytes, the first digit in the lowest byte:
/// each nibble spread to a byte of its own, then `'0' + n`, plus 39 (`'a' - '0' - 10`) where
/// n ≥ 10. No byte carries into the next (at most 15 + 6 before the shift).
@inline(__always)
func hexDigits(of value: UInt32) -> UInt64 {
    var v = UInt64(value)
    v = (v | v << 16) & 0x0000_FFFF_0000_FFFF
    v = (v | v << 8) & 0x00FF_00FF_00FF_00FF
    v = (v | v << 4) & 0x0F0F_0F0F_0F0F_0F0F
    v = v.byteSwapped  // the high nibble first
    let letters = ((v &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
    return v &+ 0x3030_3030_3030_3030 &+ letters &* 39
}

/// Per byte: its value as a hex digit (either case), or 0xFF.
private let hexTable: [UInt8] = (0..<256).map { UInt8(truncatingIfNeeded: hexValue(UInt8($0)) ?? 0xFF) }
/// The same, lowercase digits only.
private let lowerHexTable: [UInt8] = (0..<256).map {
    UInt8($0) >= UInt8(ascii: "A") && UInt8($0) <= UInt8(ascii: "F") ? 0xFF : hexTable[$0]
}

/// Parses `count` (≤ 16) hex digits of `span` starting at `start` into one word.
@inline(__always)
private func hexWord(_ span: Span<UInt8>, from start: Int, count: Int = 16, lowercaseOnly: Bool = false) -> UInt64? {
    let table = (lowercaseOnly ? lowerHexTable : hexTable).span
    var word: UInt64 = 0
    var bad: UInt8 = 0
    for i in start..<start + count {
        let nibble = table[Int(span[i])]
        bad |= nibble
        word = word << 4 | UInt64(nibble & 0xF)
    }
    return bad & 0xF0 == 0 ? word : nil
}

@inline(__always)
func hexValue(_ char: UInt8) -> UInt8? {
    switch char {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): char &- UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): char &- UInt8(ascii: "a") &+ 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): char &- UInt8(ascii: "A") &+ 10
    default: nil
    }
}
