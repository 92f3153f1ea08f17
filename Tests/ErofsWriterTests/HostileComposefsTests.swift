import ComposefsDump
import ErofsWriter
import Foundation
import ImageModel
import TestSupport
import Testing

/// composefs images whose directories share blocks (issue 12 #9): a small image must not
/// expand into millions of paths.
@Suite("hostile composefs images")
struct HostileComposefsTests {
    func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    func u32(_ b: [UInt8], _ at: Int) -> Int { u16(b, at) | u16(b, at + 2) << 16 }
    func put32(_ b: inout [UInt8], _ at: Int, _ v: Int) {
        for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
    }

    /// The (name, nid) entries of the root directory (flat layouts, every block).
    func rootEntries(_ image: [UInt8]) -> [(String, Int)] {
        let meta = u32(image, 1064) * 4096
        let root = meta + 32 * u16(image, 1038)
        let extended = u16(image, root) & 1 != 0
        let layout = (u16(image, root) >> 1) & 7
        let icount = u16(image, root + 2)
        let xattrSize = icount == 0 ? 0 : 12 + 4 * (icount - 1)
        let size = u32(image, root + 8)
        let tail = root + (extended ? 64 : 32) + xattrSize
        var result: [(String, Int)] = []
        let count = (size + 4095) / 4096
        for b in 0..<count {
            let length = b == count - 1 && size % 4096 != 0 ? size % 4096 : 4096
            let start = layout == 2 && b == count - 1 ? tail : (u32(image, root + 16) + b) * 4096
            let block = Array(image[start..<start + length])
            let n = u16(block, 8) / 12
            for i in 0..<n {
                let nameStart = u16(block, 12 * i + 8)
                let nameEnd = i + 1 < n ? u16(block, 12 * (i + 1) + 8) : block.count
                result.append(
                    (String(decoding: block[nameStart..<nameEnd].prefix { $0 != 0 }, as: UTF8.self), u32(block, 12 * i))
                )
            }
        }
        return result
    }

    @Test("400 directories pointed at one large listing are refused at the entry cap, not expanded")
    func sharedListings() throws {
        var dump = "/ 4096 40755 2 0 0 0 0.0 - - -\n/big 4096 40755 2 0 0 0 0.0 - - -\n"
        for i in 0..<6000 { dump += "/big/file-with-a-longish-name-\(i) 0 100644 1 0 0 0 0.0 - - -\n" }
        for i in 0..<400 { dump += "/d\(String(format: "%03d", i)) 4096 40755 2 0 0 0 0.0 - - -\n" }
        let model = try DumpParser.parse(Array(dump.utf8), input: "crafted")
        var image = try ComposefsImage.bytes(for: model)
        let entries = rootEntries(image)
        let meta = u32(image, 1064) * 4096
        let big = meta + 32 * (entries.first { $0.0 == "big" }!.1)
        let bigExtended = u16(image, big) & 1 != 0
        let bigSize = bigExtended ? u32(image, big + 8) : u32(image, big + 8)
        let wholeBlocks = bigSize / 4096 * 4096
        try #require(wholeBlocks >= 4096 * 8, "the big directory should span blocks (\(bigSize) bytes)")
        var patched = 0
        for (name, nid) in entries where name.hasPrefix("d") && name.count == 4 {
            let at = meta + 32 * nid
            // Flat plain layout, the big directory's whole blocks as its own.
            image[at] = image[at] & 0xF1
            put32(&image, at + 8, wholeBlocks)
            if u16(image, at) & 1 != 0 { put32(&image, at + 12, 0) }
            put32(&image, at + 16, u32(image, big + 16))
            patched += 1
        }
        #expect(patched == 400)
        let error = try #require(throws: (any Error).self) { try ComposefsReader.read(image) }
        #expect("\(error)".contains("more than"), "\(error)")
    }
}
