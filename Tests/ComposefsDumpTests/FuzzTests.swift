import ComposefsDump
import Foundation
import ImageModel
import TestSupport
import Testing

@Suite("Mutated dumps never trap")
struct FuzzTests {
    /// Seed lines: every kind of entry and field, taken from the reference and the vectors.
    static let seedLines: [String] = [
        "/a 4096 40755 2 0 0 0 1700000000.0 - - - user.x=1",
        "/a/f 12 100644 1 0 0 0 5.6 - hello\\x20world\\n -",
        "/a/g 100000 100644 1 0 0 0 1700000000.0 f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b - f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b user.k\\x3d1=v\\x20x",
        "/a/l 0 @100644 1 0 0 0 0.0 /a/f - -",
        "/s 6 120777 1 0 0 0 0.0 target - -",
        "/c 0 20777 1 0 0 10769 1633950376.0 - - - trusted.foo=bar-2",
        "/b 0 60777 1 0 0 107690 1633950376.0 - - - trusted.bar=bar-2",
        "/p 0 10777 1 0 0 0 1633950376.0 - - -",
        "/w 0 20000 1 0 0 0 0.0 - - - trusted.overlay.redirect=/foo\\n",
        "/sock 0 140755 1 0 0 0 0.0 - - -",
    ]

    static let alphabet: [UInt8] = Array(" /\\x@-=.0123456789abcdefn\t\n".utf8) + [0, 0x7F, 0xFF, 0x80]

    @Test("5000 seeded mutations give a model or a DumpError, and accepted models round-trip")
    func mutations() throws {
        var rng = SeededGenerator(seed: 0x0DDB_A11)
        var accepted = 0, rejected = 0
        for _ in 0..<5000 {
            var lines = Self.seedLines.shuffled(using: &rng).prefix(
                Int.random(in: 1...Self.seedLines.count, using: &rng)
            )
            .map { Array($0.utf8) }
            let mutations = Int.random(in: 1...4, using: &rng)
            for _ in 0..<mutations {
                let index = Int.random(in: 0..<lines.count, using: &rng)
                mutate(&lines[index], using: &rng)
            }
            var text = Array("/ 4096 40755 2 0 0 0 0.0 - - -\n".utf8)
            for line in lines { text += line + [0x0A] }
            do {
                let image = try DumpParser.parse(text, input: "fuzz")
                accepted += 1
                let again = try DumpParser.parse(DumpWriter.render(image), input: "fuzz (rewritten)")
                #expect(again == image)
            } catch {
                rejected += 1
                #expect(error.line >= 1 && error.line <= lines.count + 2, "\(error)")
                #expect(!error.reason.isEmpty)
            }
        }
        // Both outcomes must occur, or the mutations test nothing.
        #expect(accepted > 100)
        #expect(rejected > 1000)
    }

    @Test("mutated lines of the cs9 model (2000 cases) never trap")
    func cs9Mutations() throws {
        let bytes = try readVector(TestPaths.cs9)
        let lines = bytes.split(separator: 0x0A).prefix(300).map(Array.init)
        var rng = SeededGenerator(seed: 42)
        var rejected = 0
        for _ in 0..<2000 {
            var copy = lines
            let index = Int.random(in: 1..<copy.count, using: &rng)
            mutate(&copy[index], using: &rng)
            var text: [UInt8] = []
            for line in copy { text += line + [0x0A] }
            do {
                _ = try DumpParser.parse(text, input: "cs9")
            } catch {
                rejected += 1
                #expect(error.description.hasPrefix("cs9:"))
            }
        }
        #expect(rejected > 500)
    }

    private func mutate(_ line: inout [UInt8], using rng: inout SeededGenerator) {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0 where !line.isEmpty:
            line[Int.random(in: 0..<line.count, using: &rng)] = Self.alphabet.randomElement(using: &rng)!
        case 1:
            line.insert(Self.alphabet.randomElement(using: &rng)!, at: Int.random(in: 0...line.count, using: &rng))
        case 2 where !line.isEmpty:
            line.remove(at: Int.random(in: 0..<line.count, using: &rng))
        case 3 where !line.isEmpty:
            let start = Int.random(in: 0..<line.count, using: &rng)
            line.removeSubrange(start..<min(line.count, start + Int.random(in: 1...20, using: &rng)))
        case 4:
            // Swap two space-separated fields.
            var fields = line.split(separator: 0x20, omittingEmptySubsequences: false)
            if fields.count > 2 {
                fields.swapAt(
                    Int.random(in: 0..<fields.count, using: &rng), Int.random(in: 0..<fields.count, using: &rng))
                line = Array(fields.joined(separator: [0x20]))
            }
        default:
            // Replace a number with a huge or negative one.
            let fields = line.split(separator: 0x20, omittingEmptySubsequences: false)
            if fields.count > 7 {
                var copy = fields.map(Array.init)
                copy[Int.random(in: 1...7, using: &rng)] = Array(
                    ["99999999999999999999999", "-1", "4294967296", "", "0x10"]
                        .randomElement(using: &rng)!.utf8)
                line = Array(copy.joined(separator: [0x20]))
            }
        }
    }
}
