import ImageModel
import Testing

@testable import ComposefsDump

/// The parser's shortcuts must never change what it reads: each is checked against the
/// long way it skips.
@Suite("dump parser shortcuts read what the long way reads")
struct ParserFastPathTests {
    @Test("the eight-bytes-at-a-time control byte scan finds exactly the lines with one")
    func controlByteScan() {
        let fillers: [UInt8] = [0x20, 0x21, 0x61, 0x7E, 0x80, 0xA0, 0xFF]
        for filler in fillers {
            for length in [1, 7, 8, 9, 16, 19] {
                let clean = [UInt8](repeating: filler, count: length)
                let none = DumpParser.firstControlByte(clean.span, from: 0)
                #expect(none == length, "filler \(filler), \(length) bytes")
                for position in 0..<length {
                    for byte in UInt8(0)...UInt8(255) {
                        var line = clean
                        line[position] = byte
                        let expected = byte < 0x20 || byte == 0x7F ? position : length
                        let found = DumpParser.firstControlByte(line.span, from: 0)
                        guard found != expected else { continue }
                        Issue.record("byte \(byte) at \(position) of \(length) (filler \(filler)): \(found)")
                    }
                }
            }
        }
    }

    @Test("the first control byte is found eight bytes at a time wherever it lies, after whatever bytes")
    func firstControlByte() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x00, 0x0A, 0x1F, 0x20, 0x41, 0x7E, 0x7F, 0x80, 0x9F, 0xA0, 0xFF]
        for _ in 0..<3000 {
            let length = Int.random(in: 0...40, using: &generator)
            // Mostly printable, sometimes anything in the alphabet (high bytes and DEL included).
            let bytes = (0..<length).map { _ in
                Int.random(in: 0..<4, using: &generator) == 0
                    ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0x20...0x7E, using: &generator)
            }
            let start = Int.random(in: 0...length, using: &generator)
            let expected = bytes[start...].firstIndex { $0 < 0x20 || $0 == 0x7F } ?? length
            let found = DumpParser.firstControlByte(bytes.span, from: start)
            if found != expected { Issue.record("\(bytes) from \(start): \(found), not \(expected)") }
        }
    }

    @Test("a payload is recognised as its digest's path by text only when it is one")
    func objectPathText() {
        let hex = Array("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".utf8)
        let path = Array(hex[0..<2]) + [UInt8(ascii: "/")] + Array(hex[2...])
        func recognised(_ payload: [UInt8], _ digest: [UInt8]) -> Bool {
            DumpParser.isObjectPath(payload.span, ofHex: digest.span)
        }
        #expect(recognised(path, hex))
        var other = path
        other[64] = UInt8(ascii: "0")
        #expect(!recognised(other, hex))
        #expect(!recognised(Array(path.dropLast()), hex))
        let upper = Array(String(decoding: hex, as: UTF8.self).uppercased().utf8)
        #expect(!recognised(path, upper), "compared as text")
    }

    @Test("an uppercase DIGEST and its lowercase object path read as that object, as before")
    func uppercaseDigest() throws {
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        let path = hex.prefix(2) + "/" + hex.dropFirst(2)
        func image(digest: String) throws -> Image {
            try DumpParser.parse(
                Array("/ 0 40755 2 0 0 0 0.0 - - -\n/f 10 100644 1 0 0 0 0.0 \(path) - \(digest)\n".utf8),
                input: "t.dump")
        }
        let lower = try image(digest: hex), upper = try image(digest: hex.uppercased())
        #expect(lower == upper)
        let object = lower.inode(of: lower.children(of: .root)[0]).externalObject
        #expect(object?.payload == .object(Digest(hex: hex)!))
        #expect(object?.digest == Digest(hex: hex))
    }

    @Test("any size hint reads the same image", arguments: [0, 1, 27, 50_000, 1 << 24])
    func sizeHints(hint: Int) throws {
        let text = ParallelParseTests.bytes(ParallelParseTests.dump(lines: 6_000))
        let plain = try DumpParser.parse(text, input: "t.dump")
        for jobs in [1, 2] {
            let parser = DumpParser(input: "t.dump", options: DumpOptions(jobs: jobs, partSize: 4096))
            parser.sizeHint = hint
            try parser.feed(text[...])
            #expect(try parser.finish() == plain, "hint \(hint), jobs \(jobs)")
        }
    }
}
