import ComposefsDump
import TestSupport
import Testing

@Suite("Escaping")
struct EscapingTests {
    @Test("every byte round-trips through encode and decode")
    func allBytesRoundTrip() throws {
        let all = (0...255).map(UInt8.init)
        for options in [(false, false), (true, false), (false, true)] {
            let encoded = DumpEscaping.encode(all, escapeEquals: options.0, escapeLoneDash: options.1)
            #expect(!encoded.contains(0x20))
            #expect(encoded.allSatisfy { (0x21...0x7E).contains($0) })
            #expect(try DumpEscaping.decode(encoded) == all)
        }
    }

    @Test(
        "encoding matches composefs-info dump",
        arguments: [
            ("a b", false, false, "a\\x20b"),
            ("\\\n\r\t", false, false, "\\\\\\n\\r\\t"),
            ("k=v", true, false, "k\\x3dv"),
            ("k=v", false, false, "k=v"),
            ("-", false, true, "\\x2d"),
            ("-", false, false, "-"),
            ("--", false, true, "--"),
            ("\u{7f}é", false, false, "\\x7f\\xc3\\xa9"),
        ])
    func encoding(input: String, equals: Bool, dash: Bool, expected: String) {
        #expect(
            String(
                decoding: DumpEscaping.encode(Array(input.utf8), escapeEquals: equals, escapeLoneDash: dash),
                as: UTF8.self) == expected)
    }

    @Test("decoding accepts upper and lower case hex")
    func decodingHexCase() throws {
        #expect(try DumpEscaping.decode(Array("\\xAb\\xaB".utf8)) == [0xAB, 0xAB])
    }
}
