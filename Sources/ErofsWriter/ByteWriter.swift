import ImageModel

/// Little-endian field writer over a growing byte array (reference 09: every integer is LE).
struct ByteWriter {
    var bytes: [UInt8] = []

    var count: Int { bytes.count }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.appendLE(v) }
    mutating func u32(_ v: UInt32) { bytes.appendLE(v) }
    mutating func u64(_ v: UInt64) { bytes.appendLE(v) }
    mutating func append(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }
    mutating func zeros(_ n: Int) { if n > 0 { bytes.append(contentsOf: repeatElement(0, count: n)) } }
    /// Pads with zeros up to absolute offset `offset`.
    mutating func pad(to offset: Int) {
        precondition(offset >= bytes.count, "layout and emission disagree: at \(bytes.count), expected \(offset)")
        zeros(offset - bytes.count)
    }
}

@inline(__always) func roundUp(_ x: Int, _ a: Int) -> Int { (x + a - 1) / a * a }
