/// The byte-level codecs every module shares: lowercase hex and little-endian integers (every
/// on-disk integer ovlcfs reads or writes — composefs/EROFS, squashfs tables, GPT — is LE).

/// Hex text of bytes.
public enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    /// Lowercase hex, two digits a byte.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes an even number of hex digits (either case) spell; nil for anything else or
    /// for more than `maxBytes` bytes.
    public static func decode(_ text: some StringProtocol, maxBytes: Int = .max) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0, chars.count / 2 <= maxBytes else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        for i in stride(from: 0, to: chars.count, by: 2) {
            guard let high = hexValue(chars[i]), let low = hexValue(chars[i + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }

    /// The `count` bytes that exactly `2 × count` hex digits spell (a digest, a root hash);
    /// nil for anything else.
    public static func decode(_ text: some StringProtocol, exactly count: Int) -> [UInt8]? {
        guard let bytes = decode(text, maxBytes: count), bytes.count == count else { return nil }
        return bytes
    }
}

// The byte primitives that need a raw buffer (a bulk copy, a bulk hash) live here, behind
// span-typed functions: the rest of the code reads and writes bytes through spans.

extension Array where Element == UInt8 {
    /// A copy of `bytes`, in one move.
    @inlinable
    public init(copying bytes: Span<UInt8>) {
        self = bytes.withUnsafeBufferPointer { Array($0) }
    }

    /// Appends a copy of `bytes`, in one move.
    @inlinable
    public mutating func append(copying bytes: Span<UInt8>) {
        bytes.withUnsafeBufferPointer { append(contentsOf: $0) }
    }

    /// Appends `value` little-endian.
    @inlinable @inline(__always)
    public mutating func appendLE<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

/// Little-endian integers in byte arrays.
public enum LittleEndian {
    /// `value`'s bytes, little-endian.
    @inlinable
    public static func bytes<T: FixedWidthInteger & UnsignedInteger>(_ value: T) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE(value)
        return out
    }

    /// The integer at `offset`, or nil when it does not lie wholly inside `bytes`.
    @inlinable
    public static func read<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, from bytes: [UInt8], at offset: Int)
        -> T?
    {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else { return nil }
        var value: T = 0
        for k in 0..<size { value |= T(bytes[offset + k]) << (8 * k) }
        return value
    }
}

extension Hasher {
    /// Feeds `bytes` in bulk (an array of bytes hashes each byte on its own).
    @inlinable
    public mutating func combine(byteSpan bytes: Span<UInt8>) {
        bytes.withUnsafeBytes { combine(bytes: $0) }
    }
}
