import ImageModel

/// The dump format's escaping (reference 01 §2).
///
/// Decoding accepts `\\`, `\n`, `\r`, `\t` and `\xHH` (either case); everything else after a
/// backslash is an error. Encoding is what `composefs-info dump` prints: the four named
/// escapes, and `\xhh` (lowercase) for every byte that is not a graphic ASCII character —
/// space and bytes ≥ 0x7F included; xattr keys and values also escape `=`.
public enum DumpEscaping {
    /// Why an escaped field could not be decoded.
    public enum DecodeError: Error, Equatable, Sendable {
        case unsupportedEscape(UInt8)
        case danglingBackslash
        case incompleteHexEscape
    }

    /// Decodes an escaped field.
    public static func decode(_ field: Span<UInt8>) throws(DecodeError) -> [UInt8] {
        // Most fields hold no escape: found eight bytes at a time, they are copied whole.
        let firstEscape = firstBackslash(field)
        let n = field.count
        if firstEscape == n { return [UInt8](copying: field) }
        var out: [UInt8] = []
        out.reserveCapacity(n)
        out.append(copying: field.extracting(0..<firstEscape))
        var i = firstEscape
        while i < n {
            let byte = field[i]
            if byte != backslash {
                out.append(byte)
                i += 1
                continue
            }
            guard i + 1 < n else { throw .danglingBackslash }
            let kind = field[i + 1]
            switch kind {
            case backslash:
                out.append(backslash)
                i += 2
            case UInt8(ascii: "n"):
                out.append(0x0A)
                i += 2
            case UInt8(ascii: "r"):
                out.append(0x0D)
                i += 2
            case UInt8(ascii: "t"):
                out.append(0x09)
                i += 2
            case UInt8(ascii: "x"):
                guard i + 3 < n, let high = hexNibble(field[i + 2]), let low = hexNibble(field[i + 3]) else {
                    throw .incompleteHexEscape
                }
                out.append(high << 4 | low)
                i += 4
            default: throw .unsupportedEscape(kind)
            }
        }
        return out
    }

    /// The index of the first backslash in `field`, or its count; a word's zero bytes after
    /// `^ 0x5C…5C` are its backslashes (the lowest flag is exact).
    static func firstBackslash(_ field: Span<UInt8>) -> Int {
        let bytes = field.bytes
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let n = field.count
        var i = 0
        while i + 8 <= n {
            let x =
                UInt64(littleEndian: bytes.unsafeLoadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ (0x5C &* ones)
            let hits = (x &- ones) & ~x & highs
            if hits != 0 { return i + hits.trailingZeroBitCount / 8 }
            i += 8
        }
        while i < n, field[i] != 0x5C { i += 1 }
        return i
    }

    /// Decodes an escaped field given as an array (convenience for tests and tools).
    public static func decode(_ field: [UInt8]) throws(DecodeError) -> [UInt8] { try decode(field.span) }

    /// Appends the escaped form of `bytes` to `out`.
    /// - Parameters:
    ///   - escapeEquals: escape `=` too (xattr keys and values).
    ///   - escapeLoneDash: escape a field that is exactly `-` (PAYLOAD, CONTENT), which would
    ///     otherwise read as "unset".
    @inline(__always)
    public static func encode(
        _ bytes: some Collection<UInt8>, into out: inout [UInt8], escapeEquals: Bool = false,
        escapeLoneDash: Bool = false
    ) {
        if escapeLoneDash, bytes.count == 1, bytes.first == UInt8(ascii: "-") {
            out.append(contentsOf: [backslash, UInt8(ascii: "x"), UInt8(ascii: "2"), UInt8(ascii: "d")])
            return
        }
        for byte in bytes {
            switch byte {
            case backslash:
                out.append(backslash)
                out.append(backslash)
            case 0x0A:
                out.append(backslash)
                out.append(UInt8(ascii: "n"))
            case 0x0D:
                out.append(backslash)
                out.append(UInt8(ascii: "r"))
            case 0x09:
                out.append(backslash)
                out.append(UInt8(ascii: "t"))
            case UInt8(ascii: "=") where escapeEquals: appendHexEscape(byte, into: &out)
            case 0x21...0x7E: out.append(byte)
            default: appendHexEscape(byte, into: &out)
            }
        }
    }

    /// The escaped form of `bytes`.
    public static func encode(_ bytes: some Collection<UInt8>, escapeEquals: Bool = false, escapeLoneDash: Bool = false)
        -> [UInt8]
    {
        var out: [UInt8] = []
        encode(bytes, into: &out, escapeEquals: escapeEquals, escapeLoneDash: escapeLoneDash)
        return out
    }

    @inline(__always)
    private static func appendHexEscape(_ byte: UInt8, into out: inout [UInt8]) {
        out.append(backslash)
        out.append(UInt8(ascii: "x"))
        out.append(lowerHex[Int(byte >> 4)])
        out.append(lowerHex[Int(byte & 0xF)])
    }
}

let backslash = UInt8(ascii: "\\")
private let lowerHex = Array("0123456789abcdef".utf8)

@inline(__always)
func hexNibble(_ char: UInt8) -> UInt8? {
    switch char {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): char &- UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): char &- UInt8(ascii: "a") &+ 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): char &- UInt8(ascii: "A") &+ 10
    default: nil
    }
}

/// Display form of raw bytes for messages: printable ASCII as is, the rest escaped, cut at
/// `limit` bytes.
func displayBytes(_ bytes: some Collection<UInt8>, limit: Int = 80) -> String {
    let escaped = DumpEscaping.encode(bytes.prefix(limit))
    return String(decoding: escaped, as: UTF8.self) + (bytes.count > limit ? "…" : "")
}
