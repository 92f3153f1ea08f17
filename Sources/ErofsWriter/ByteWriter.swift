import ImageModel

/// Little-endian field writer over a growing byte array (reference 09: every integer is LE).
/// ``drain(over:into:)`` hands what is written on and starts over, offsets staying absolute,
/// so an image can be written front to back in pieces.
struct ByteWriter {
    var bytes: [UInt8] = []
    /// Bytes already handed on by `drain`.
    private(set) var drained = 0

    /// The absolute offset of the next byte.
    var count: Int { drained + bytes.count }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.appendLE(v) }
    mutating func u32(_ v: UInt32) { bytes.appendLE(v) }
    mutating func u64(_ v: UInt64) { bytes.appendLE(v) }
    mutating func append(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }
    mutating func zeros(_ n: Int) { if n > 0 { bytes.append(contentsOf: repeatElement(0, count: n)) } }
    /// Pads with zeros up to absolute offset `offset`.
    mutating func pad(to offset: Int) {
        precondition(offset >= count, "layout and emission disagree: at \(count), expected \(offset)")
        zeros(offset - count)
    }

    /// Hands the bytes written so far to `sink` once there are at least `threshold` of them.
    mutating func drain(over threshold: Int, into sink: ([UInt8]) throws -> Void) rethrows {
        guard bytes.count >= threshold else { return }
        try sink(bytes)
        drained += bytes.count
        bytes.removeAll(keepingCapacity: true)
    }
}

@inline(__always) func roundUp(_ x: Int, _ a: Int) -> Int { (x + a - 1) / a * a }
