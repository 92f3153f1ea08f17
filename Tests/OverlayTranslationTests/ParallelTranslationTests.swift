import ComposefsDump
import ImageModel
import OverlayTranslation
import TestSupport
import Testing

/// The translation transforms inodes on several threads; the layer, and the first error in
/// inode order, must not depend on how many.
@Suite("parallel translation: the same layer and the same first error on any number of threads")
struct ParallelTranslationTests {
    /// 3,000 files in 30 directories: stubs with digests, inline files, whiteouts (escaped,
    /// with their directory's markers), symlinks; xattrs from a few shared sets and some
    /// `trusted.overlay.` ones that need escaping.
    static func bigModel() throws -> Image {
        var lines: [String] = []
        for d in 0..<30 {
            lines.append("/d\(d) 0 40755 2 0 0 0 0.0 - - - user.dir=\(d % 3)")
            for f in 0..<100 {
                let path = "/d\(d)/f\(f)"
                let hex = String(repeating: String(format2: UInt8((d * 100 + f) % 256)), count: 32)
                switch f % 7 {
                case 0: lines.append("\(path) 0 20000 1 0 0 0 0.0 - - -")
                case 1: lines.append("\(path) 4 100644 1 0 0 0 0.0 - abcd - trusted.overlay.x=1")
                case 2: lines.append("\(path) 5 120777 1 0 0 0 0.0 there - -")
                default:
                    lines.append(
                        "\(path) \(f + 1) 100644 1 0 0 0 0.0 \(hex.prefix(2))/\(hex.dropFirst(2)) - \(hex) security.selinux=l\(f % 4)"
                    )
                }
            }
        }
        return try model(lines.joined(separator: "\n") + "\n")
    }

    @Test("layers are equal for 1 to 4 threads, in both layouts and the composefs translation")
    func sameLayer() throws {
        let image = try Self.bigModel()
        for options in [
            OverlayTranslation.Options(), OverlayTranslation.Options(layout: .legacy), .composefs(version: 1),
        ] {
            let one = try OverlayTranslation.translate(image, options: options, jobs: 1)
            for jobs in 2...4 {
                let many = try OverlayTranslation.translate(image, options: options, jobs: jobs)
                #expect(many == one, "\(options), jobs \(jobs)")
                #expect(many.xattrTable == one.xattrTable, "\(options), jobs \(jobs): sets in the same order")
            }
        }
    }

    @Test("the first refused inode is the one a single thread names")
    func sameFirstError() throws {
        // Escaped, a 250-byte trusted.overlay. key grows past 255 bytes: refused, at two places.
        let long = "trusted.overlay." + String(repeating: "k", count: 234)
        var lines: [String] = []
        for f in 0..<2_000 {
            let bad = f == 700 || f == 1_900
            lines.append("/f\(f) 0 100644 1 0 0 0 0.0 - - -" + (bad ? " \(long)=v" : ""))
        }
        let image = try model(lines.joined(separator: "\n") + "\n")
        let expected = #expect(throws: TranslationError.self) { try OverlayTranslation.translate(image, jobs: 1) }
        #expect(expected?.path == "/f700")
        for jobs in 2...4 {
            let error = #expect(throws: TranslationError.self) { try OverlayTranslation.translate(image, jobs: jobs) }
            #expect(error == expected, "jobs \(jobs)")
        }
    }
}

extension String {
    fileprivate init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef".utf8)
        self = String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }
}
