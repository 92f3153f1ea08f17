import ComposefsDump
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys
import TestSupport
import Testing

@Suite("Dump files: gzip, plain, atomic writes")
struct DumpFileTests {
    @Test("a .gz file and its plain text give the same model; gzip is detected by content")
    func gzipAndPlain() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let text = "/ 4096 40755 2 0 0 0 0.0 - - -\n/f 5 100644 1 0 0 0 0.0 - hello -\n"
        try text.write(toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        _ = try run(
            "/bin/sh",
            [
                "-c",
                "gzip -c \(dir.path("m.dump")) > \(dir.path("m.dump.gz")) && cp \(dir.path("m.dump.gz")) \(dir.path("renamed"))",
            ])
        let plain = try DumpFile.read(path: dir.path("m.dump"))
        #expect(try DumpFile.read(path: dir.path("m.dump.gz")) == plain)
        #expect(try DumpFile.read(path: dir.path("renamed")) == plain)
        #expect(plain.entryCount == 2)
    }

    @Test("a truncated gzip file is an error naming the file, not a crash")
    func truncatedGzip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        var text = ""
        for i in 0..<2000 { text += "/f\(i) 0 100644 1 0 0 0 0.0 - - -\n" }
        try ("/ 4096 40755 2 0 0 0 0.0 - - -\n" + text).write(
            toFile: dir.path("m.dump"), atomically: true, encoding: .utf8)
        _ = try run("/bin/sh", ["-c", "gzip -c \(dir.path("m.dump")) | head -c 2000 > \(dir.path("t.gz"))"])
        do {
            _ = try DumpFile.read(path: dir.path("t.gz"))
            Issue.record("a truncated gzip stream was accepted")
        } catch {
            #expect("\(error)".contains(dir.path("t.gz")))
        }
    }

    @Test("a missing file is an error with the path and errno text")
    func missingFile() throws {
        let error = try #require(throws: IOError.self) { try DumpFile.read(path: "/nonexistent/model.dump") }
        #expect(error.description == "cannot open /nonexistent/model.dump: No such file or directory")
    }

    @Test("writing is atomic: a failed write leaves no file at the target")
    func atomicWrite() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let image = try DumpParser.parse(Array("/ 4096 40755 2 0 0 0 0.0 - - -\n".utf8), input: "t")
        let target = dir.path("out.dump")
        do {
            let writer = try AtomicFileWriter(destination: target)
            try writer.write("partial")
            // Dropped without commit: nothing may appear.
        }
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
        try DumpFile.write(image, to: target)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "/ 4096 40755 2 0 0 0 0.0 - - -\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["out.dump"])
    }
}
