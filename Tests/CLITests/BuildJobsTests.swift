import Foundation
import TestSupport
import Testing

/// `build --jobs N` reads the dump and translates on N threads: the image must be the same
/// bytes for any N, for both formats (the dump is large enough to be cut into many parts).
@Suite(
    "build --jobs: the same image on any number of threads",
    .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct BuildJobsTests {
    @Test("squashfs and composefs images are byte-identical for --jobs 1, 2 and 5")
    func sameBytes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let dump = dir.path("m.dump")
        let written = try run(ovlcfs, ["inspect", "synthetic:40000", "--dump", "-o", dump])
        #expect(written.status == 0, "\(written.stderrText)")
        #expect(try FileManager.default.attributesOfItem(atPath: dump)[.size] as! Int > 4 << 20)
        for format in ["squashfs", "composefs"] {
            var images: [Data] = []
            for jobs in [1, 2, 5] {
                let out = dir.path("\(format)-\(jobs).img")
                let result = try run(
                    ovlcfs, ["build", dump, "-o", out, "--format", format, "--jobs", "\(jobs)", "--quiet"])
                #expect(result.status == 0, "\(format) --jobs \(jobs): \(result.stderrText)")
                images.append(try Data(contentsOf: URL(fileURLWithPath: out)))
            }
            #expect(images[0].count > 0)
            #expect(images.allSatisfy { $0 == images[0] }, "\(format): images differ between --jobs values")
        }
    }
}

extension BuildJobsTests {
    @Test("--jobs outside 1…256 is refused before anything is read")
    func jobsBounds() throws {
        for jobs in ["0", "257", "100000000000000"] {
            let result = try run(ovlcfs, ["build", "/nonexistent.dump", "-o", "/tmp/never.img", "--jobs", jobs])
            #expect(result.status != 0)
            #expect(result.stderrText.contains("--jobs must be between 1 and 256"), "\(jobs): \(result.stderrText)")
        }
    }
}
