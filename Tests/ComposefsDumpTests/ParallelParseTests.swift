import ImageModel
import TestSupport
import Testing

@testable import ComposefsDump

/// Reading a dump on several threads (`DumpOptions.jobs`) must give the very image, and the
/// very error — line number, field and reason — that one thread gives. Parts are made tiny
/// here so that every dump is cut into many parts and batches, at every kind of line.
@Suite("parallel dump reading: the same image and the same errors as one thread")
struct ParallelParseTests {
    /// A dump of about `count` lines: nested directories, files with digests, inline files,
    /// symlinks, devices, hard links, and several xattr texts, deterministic from `seed`.
    static func dump(lines count: Int, seed: UInt64 = 1) -> [String] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let labels = [
            "security.selinux=system_u:object_r:usr_t:s0", "user.a=1 user.b=x\\x20y", "trusted.overlay.opaque=y",
        ]
        var lines = ["/ 0 40755 2 0 0 0 0.0 - - - security.selinux=system_u:object_r:root_t:s0"]
        var files: [String] = []
        func walk(_ dir: String, depth: Int) {
            for i in 0..<(2 + next(12)) where lines.count < count {
                let name = dir + "/e\(i)"
                let label = labels[next(labels.count)]
                switch next(10) {
                case 0 where depth < 6:
                    lines.append("\(name) 0 40755 2 0 0 0 \(next(1000)).0 - - - \(label)")
                    walk(name, depth: depth + 1)
                case 1:
                    lines.append("\(name) 8 120777 1 0 0 0 0.0 target\(i % 10) - -")
                case 2:
                    lines.append("\(name) 3 100644 1 0 0 0 0.0 - abc - \(label)")
                case 3 where !files.isEmpty:
                    lines.append("\(name) 0 @100644 0 0 0 0 0.0 \(files[next(files.count)]) - -")
                case 4:
                    lines.append("\(name) 0 20644 1 0 0 259 0.0 - - -")
                default:
                    let hex = (0..<64).map { _ in String(next(16), radix: 16) }.joined()
                    let payload = hex.prefix(2) + "/" + hex.dropFirst(2)
                    lines.append("\(name) \(1 + next(1 << 20)) 100644 1 0 0 0 1.5 \(payload) - \(hex) \(label)")
                    files.append(name)
                }
            }
        }
        var top = 0
        while lines.count < count {
            lines.append("/d\(top) 0 40755 2 0 0 0 0.0 - - - \(labels[0])")
            walk("/d\(top)", depth: 1)
            top += 1
        }
        return lines
    }

    static func bytes(_ lines: [String], finalNewline: Bool = true) -> [UInt8] {
        Array((lines.joined(separator: "\n") + (finalNewline ? "\n" : "")).utf8)
    }

    static func parse(_ text: [UInt8], jobs: Int, partSize: Int, options: DumpOptions = .lenient) -> Result<
        Image, DumpError
    > {
        var options = options
        options.jobs = jobs
        options.partSize = partSize
        let parser = DumpParser(input: "t.dump", options: options)
        do {
            // Fed in uneven chunks, as a reader hands them over.
            var start = 0, step = 1
            while start < text.count {
                let end = min(text.count, start + step)
                try parser.feed(text[start..<end])
                start = end
                step = step * 3 % 9_973 + 1
            }
            return .success(try parser.finish())
        } catch {
            return .failure(error)
        }
    }

    static let shapes: [(jobs: Int, partSize: Int)] = [(2, 64), (3, 700), (4, 5000), (2, 1 << 20)]

    @Test("any number of threads and any cut gives the image one thread gives")
    func sameImage() throws {
        let text = Self.bytes(Self.dump(lines: 3000))
        let one = Self.parse(text, jobs: 1, partSize: 1 << 20)
        let image = try one.get()
        #expect(image.entryCount >= 3000)
        var reference: [UInt8] = []
        try DumpWriter.write(image) { reference.append(contentsOf: $0) }
        for (jobs, partSize) in Self.shapes {
            let many = try Self.parse(text, jobs: jobs, partSize: partSize).get()
            #expect(many == image, "jobs \(jobs), parts of \(partSize) bytes")
            var written: [UInt8] = []
            try DumpWriter.write(many) { written.append(contentsOf: $0) }
            #expect(written == reference, "jobs \(jobs), parts of \(partSize) bytes")
        }
        // Without a final newline too.
        let unterminated = Self.bytes(Self.dump(lines: 500), finalNewline: false)
        let expected = Self.parse(unterminated, jobs: 1, partSize: 1 << 20)
        #expect(Self.parse(unterminated, jobs: 2, partSize: 100) == expected)
    }

    /// Broken lines of every kind, each at many places: the error must be the same, line
    /// number included, however the input is cut. Some need other lines to be told (a
    /// missing parent, a duplicate, a second root); some pair a line-local fault with one that
    /// needs other lines, where the sequential order decides which is reported.
    static let breakages: [(String, @Sendable (Int) -> String)] = [
        ("bad mode", { "/d0/bad\($0) 0 9x 1 0 0 0 0.0 - - -" }),
        ("missing parent", { "/nowhere/f\($0) 0 100644 1 0 0 0 0.0 - - -" }),
        ("second root", { _ in "/ 0 40755 2 0 0 0 0.0 - - -" }),
        ("empty xattr key", { "/d0/x\($0) 0 100644 1 0 0 0 0.0 - - - =v" }),
        ("raw control byte", { "/d0/c\($0)\u{1} 0 100644 1 0 0 0 0.0 - - -" }),
        ("symlink without target, parent missing", { "/nowhere/s\($0) 8 120777 1 0 0 0 0.0 - - -" }),
        ("bad xattr, parent missing", { "/nowhere/y\($0) 0 100644 1 0 0 0 0.0 - - - =v" }),
        ("hard link to nothing", { "/d0/h\($0) 0 @100644 0 0 0 0 0.0 /missing - -" }),
        ("duplicate directory", { _ in "/d0 0 40755 2 0 0 0 0.0 - - -" }),
        ("duplicate file", { _ in "/d0/dup 0 100644 1 0 0 0 0.0 - - -" }),
        ("bad digest", { "/d0/g\($0) 5 100644 1 0 0 0 0.0 ab/cd - 12 -" }),
        (
            "line too long",
            { "/d0/long\($0) 0 100644 1 0 0 0 0.0 - - - user.v=" + String(repeating: "x", count: 300_000) }
        ),
    ]

    @Test("every error is the same, line number included, however the input is cut")
    func sameErrors() throws {
        let lines = Self.dump(lines: 1500, seed: 7)
        var state: UInt64 = 99
        for (kind, make) in Self.breakages {
            for round in 0..<6 {
                state = state &* 6_364_136_223_846_793_005 &+ 1
                var broken = lines
                let at = 2 + Int((state >> 33) % UInt64(lines.count - 2))
                broken.insert(make(round), at: at)
                if kind.hasPrefix("duplicate") { broken.insert(make(round), at: 2) }
                let text = Self.bytes(broken, finalNewline: round % 2 == 0)
                let one = Self.parse(text, jobs: 1, partSize: 1 << 20)
                guard case .failure(let error) = one else {
                    Issue.record("\(kind) at line \(at + 1) was accepted")
                    continue
                }
                for (jobs, partSize) in Self.shapes {
                    let many = Self.parse(text, jobs: jobs, partSize: partSize)
                    #expect(many == one, "\(kind) at line \(at + 1) (\(error)): jobs \(jobs), parts of \(partSize)")
                }
            }
        }
    }

    @Test("a first line that is not the root is refused at line 1 by every reading")
    func firstLineNotRoot() {
        var lines = Self.dump(lines: 200)
        lines[0] = "/a 0 40755 2 0 0 0 0.0 - - -"
        let text = Self.bytes(lines)
        let one = Self.parse(text, jobs: 1, partSize: 1 << 20)
        guard case .failure(let error) = one else {
            Issue.record("accepted")
            return
        }
        #expect(error.line == 1)
        for (jobs, partSize) in Self.shapes { #expect(Self.parse(text, jobs: jobs, partSize: partSize) == one) }
    }

    @Test("input without newlines is refused as it arrives, on any number of threads")
    func noNewlines() {
        for jobs in [1, 2, 8] {
            let parser = DumpParser(input: "t.dump", options: DumpOptions(jobs: jobs))
            let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 4096)
            var fed = 0
            var refused: DumpError?
            while fed < 64 << 20 {
                do {
                    try parser.feed(chunk[...])
                    fed += chunk.count
                } catch {
                    refused = error
                    break
                }
            }
            #expect(refused?.line == 1, "jobs \(jobs)")
            #expect(refused?.reason.contains("longer than") == true, "jobs \(jobs)")
            #expect(fed <= DumpParser.maxLineLength + chunk.count, "jobs \(jobs): \(fed) bytes taken first")
        }
    }
}
