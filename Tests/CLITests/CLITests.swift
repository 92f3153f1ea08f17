import Foundation
import Testing
import TestSupport

let ovlcfs = TestPaths.productsDirectory.appendingPathComponent("ovlcfs").path

@Suite("ovlcfs command line", .enabled(if: FileManager.default.isExecutableFile(atPath: ovlcfs), "the ovlcfs binary was not built"))
struct CLITests {
    @Test("--help teaches: every command has an example")
    func help() throws {
        let root = try run(ovlcfs, ["--help"])
        #expect(root.status == 0)
        #expect(root.stdoutText.contains("inspect"))
        let inspect = try run(ovlcfs, ["inspect", "--help"])
        #expect(inspect.status == 0)
        #expect(inspect.stdoutText.contains("Examples:"))
        #expect(inspect.stdoutText.contains("--json"))
    }

    @Test("inspect --example prints a summary")
    func example() throws {
        let result = try run(ovlcfs, ["inspect", "--example"])
        #expect(result.status == 0)
        #expect(result.stdoutText.contains("entries:      15 (14 inodes, 1 extra hard-link paths)"))
    }

    @Test("inspect --json on cs9-x86_64-minimal matches counts taken from the text itself",
          .enabled(if: TestPaths.haveVectors, "../shared/vectors is missing"))
    func cs9Counts() throws {
        let url = TestPaths.composefsVectors.appendingPathComponent("cs9-x86_64-minimal.dump.gz")
        let result = try run(ovlcfs, ["inspect", url.path, "--json"])
        #expect(result.status == 0, "\(result.stderrText)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        let byType = try #require(json["byType"] as? [String: Int])

        // Independent count: one line per entry, classified by its MODE field.
        let lines = try readVector(url).split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        var types: [String: Int] = [:]
        var hardLinks = 0, inline = 0, bytes: UInt64 = 0, xattrs = 0
        var payloads = Set<String>()
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            let mode = String(fields[2])
            if mode.hasPrefix("@") { hardLinks += 1; continue }
            let type: String = switch Int(mode, radix: 8)! & 0o170000 {
            case 0o040000: "directory"
            case 0o100000: "regular"
            case 0o120000: "symlink"
            case 0o060000: "blockDevice"
            case 0o020000: "charDevice"
            case 0o010000: "fifo"
            default: "socket"
            }
            types[type, default: 0] += 1
            xattrs += fields.count - 11
            if type == "regular" {
                bytes += UInt64(fields[1])!
                if fields[9] != "-" || fields[1] == "0" && fields[8] == "-" { inline += 1 }
                if fields[8] != "-" { payloads.insert(String(fields[8])) }
            }
        }
        #expect(json["entries"] as? Int == lines.count)
        #expect(json["hardLinks"] as? Int == hardLinks)
        for (type, count) in types { #expect(byType[type] == count, "\(type)") }
        #expect(byType.values.reduce(0, +) + hardLinks == lines.count)
        #expect(json["inlineFiles"] as? Int == inline)
        #expect(json["objects"] as? Int == payloads.count)
        #expect((json["fileBytes"] as? NSNumber)?.uint64Value == bytes)
        #expect(json["xattrs"] as? Int == xattrs)
        #expect(lines.count == 22010)
    }

    @Test("inspect --dump reads standard input and prints the canonical dump")
    func dumpFromStdin() throws {
        let input = "/ 4096 40755 9 0 0 0 0.0 - - -\n/b 0 100644 1 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n"
        let result = try run(ovlcfs, ["inspect", "-", "--dump"], input: Array(input.utf8))
        #expect(result.status == 0)
        #expect(result.stdoutText == "/ 4096 40755 2 0 0 0 0.0 - - -\n/a 0 100644 1 0 0 0 0.0 - - -\n/b 0 100644 1 0 0 0 0.0 - - -\n")
    }

    @Test("bad input: exit status 1, the message names file:line and reason, no output file is left")
    func badInput() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        try "/ 4096 40755 2 0 0 0 0.0 - - -\n/f 0 100644 1 0 0 0 0.0 - - - =v\n".write(toFile: dir.path("bad.dump"), atomically: true, encoding: .utf8)
        let result = try run(ovlcfs, ["inspect", dir.path("bad.dump"), "--dump", "-o", dir.path("out.dump")])
        #expect(result.status == 1)
        #expect(result.stderrText == "ovlcfs: \(dir.path("bad.dump")):2: xattr key is empty\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["bad.dump"])
    }

    @Test("argument mistakes are reported before any work", arguments: [
        ["inspect"], ["inspect", "--example", "x.dump"], ["inspect", "--example", "--json", "--dump"],
        ["inspect", "--example", "-o", "x"],
    ])
    func usageErrors(arguments: [String]) throws {
        let result = try run(ovlcfs, arguments)
        #expect(result.status == 64)
        #expect(result.stderrText.contains("Error:"))
    }
}
