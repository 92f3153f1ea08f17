import Foundation
import ImageModel
import SystemPackage
import TestSupport
import Testing
import Verity

func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }

@Suite("fs-verity digest")
struct FsVerityTests {
    @Test(
        "known answers from reference 04",
        arguments: [
            ([UInt8](), [UInt8](), "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95"),
            ([0x61], [], "bce75948b9e7510293f8f2720412af9697c1479281323f3f220623fb8e94b557"),
            (pattern(1 << 20), [], "93c995656d665b81c3a87eed032fcf06a8f9cecef51e3f5e5af7fa59fef1d439"),
            (pattern(100_000), [], "f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b"),
            (
                [0x61], [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77],
                "e105e920923fbca31c8edc105ea2059cfff65df7b117e6f9085f27cb7acb78fc"
            ),
        ])
    func knownAnswers(data: [UInt8], salt: [UInt8], expected: String) throws {
        #expect(try FsVerity.digest(of: data, salt: salt).hex == expected)
    }

    @Test("chunking does not change the digest")
    func chunking() throws {
        let data = pattern(300_000)
        let whole = try FsVerity.digest(of: data)
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<20 {
            let hasher = try FsVerityHasher()
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + Int.random(in: 1...20_000, using: &rng))
                hasher.update(Array(data[offset..<end]))
                offset = end
            }
            #expect(hasher.finalize() == whole)
        }
    }

    @Test("a salt longer than 32 bytes is refused")
    func longSalt() {
        #expect(throws: VerityError.saltTooLong(33)) { try FsVerityHasher(salt: [UInt8](repeating: 1, count: 33)) }
    }

    static let sizes = [0, 1, 4095, 4096, 4097, 128 * 4096, 128 * 4096 + 1, (1 << 20) + 1, 100 << 20]

    @Test(
        "equals `fsverity digest` for sizes 0 … ~100 MiB, salted and unsalted",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/fsverity"),
            "fsverity is not installed (apt: fsverity)"),
        arguments: sizes, ["", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"])
    func matchesFsverityTool(size: Int, saltHex: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path("f")
        var rng = SeededGenerator(seed: UInt64(size))
        var data = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 8) {
            let word = rng.next()
            for j in 0..<min(8, size - i) { data[i + j] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(j))) }
        }
        FileManager.default.createFile(atPath: path, contents: Data(data))
        var arguments = ["digest", "--compact", path]
        if !saltHex.isEmpty { arguments.insert("--salt=\(saltHex)", at: 1) }
        let tool = try run("/usr/bin/fsverity", arguments)
        #expect(tool.status == 0, "\(tool.stderrText)")
        let salt = stride(from: 0, to: saltHex.count, by: 2).map {
            UInt8(
                saltHex[
                    saltHex.index(
                        saltHex.startIndex, offsetBy: $0)..<saltHex.index(saltHex.startIndex, offsetBy: $0 + 2)],
                radix: 16)!
        }
        #expect(
            try FsVerity.digest(ofFile: path, salt: salt).hex
                == tool.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

@Suite("fs-verity digest of holes")
struct ZeroBlockTests {
    @Test(
        "feeding zeros as a hole gives the same digest as feeding zero bytes",
        arguments: [
            (0, 4096 * 3), (5, 10_000), (4096, 4096 * 200), (100, 1 << 20), (7, 1),
        ])
    func zeros(prefix: Int, zeros: Int) throws {
        let head = pattern(prefix), tail = pattern(333)
        let a = try FsVerityHasher()
        a.update(head)
        a.updateZeros(UInt64(zeros))
        a.update(tail)
        #expect(a.finalize() == (try FsVerity.digest(of: head + [UInt8](repeating: 0, count: zeros) + tail)))
    }

    /// Block counts around the run shortcut's edges: exactly one block of hashes (128 data
    /// blocks: the level's only block must stay the root), one more, two levels' worth.
    @Test(
        "runs of zero blocks at block-of-hashes boundaries, with and without data after",
        arguments: [
            (0, 128, false), (0, 128, true), (0, 129, false), (0, 127, true), (0, 256, false), (0, 257, true),
            (4096, 128 * 128, false), (4096, 128 * 128 + 1, true), (1, 128 * 128 - 1, false),
            (0, 128 * 128 * 2 + 5, true),
        ])
    func runs(prefix: Int, blocks: Int, tail: Bool) throws {
        let head = pattern(prefix), after = tail ? pattern(4096 * 3 + 17) : []
        let fast = try FsVerityHasher()
        fast.update(head)
        fast.updateZeros(UInt64(blocks) * 4096)
        fast.update(after)
        let slow = try FsVerityHasher()
        slow.update(head + [UInt8](repeating: 0, count: blocks * 4096) + after)
        #expect(fast.finalize() == slow.finalize())
    }

    @Test("a 2^62-byte hole hashes in logarithmic time (the digest is a function of its length)")
    func hugeHole() throws {
        let hasher = try FsVerityHasher()
        hasher.updateZeros(1 << 62)
        let digest = hasher.finalize()
        #expect(hasher.count == 1 << 62)
        // Two sizes differing by one block give different digests.
        let other = try FsVerityHasher()
        other.updateZeros((1 << 62) - 4096)
        #expect(other.finalize() != digest)
    }
}
