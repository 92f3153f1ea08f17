/// XXH32 (32-bit xxHash), for the EROFS xattr name filter (reference 09 §6).
enum XXHash32 {
    private static let p1: UInt32 = 0x9E37_79B1, p2: UInt32 = 0x85EB_CA77, p3: UInt32 = 0xC2B2_AE3D
    private static let p4: UInt32 = 0x27D4_EB2F, p5: UInt32 = 0x1656_67B1

    @inline(__always) private static func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }

    @inline(__always) private static func round(_ acc: UInt32, _ input: UInt32) -> UInt32 {
        rotl(acc &+ input &* p2, 13) &* p1
    }

    @inline(__always) private static func word(_ bytes: Span<UInt8>, _ i: Int) -> UInt32 {
        UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
    }

    static func hash(_ bytes: Span<UInt8>, seed: UInt32) -> UInt32 {
        let count = bytes.count
        var i = 0
        var h: UInt32
        if count >= 16 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while i + 16 <= count {
                v1 = round(v1, word(bytes, i))
                v2 = round(v2, word(bytes, i + 4))
                v3 = round(v3, word(bytes, i + 8))
                v4 = round(v4, word(bytes, i + 12))
                i += 16
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
        } else {
            h = seed &+ p5
        }
        h = h &+ UInt32(truncatingIfNeeded: count)
        while i + 4 <= count {
            h = rotl(h &+ word(bytes, i) &* p3, 17) &* p4
            i += 4
        }
        while i < count {
            h = rotl(h &+ UInt32(bytes[i]) &* p5, 11) &* p1
            i += 1
        }
        h ^= h >> 15
        h = h &* p2
        h ^= h >> 13
        h = h &* p3
        h ^= h >> 16
        return h
    }
}
