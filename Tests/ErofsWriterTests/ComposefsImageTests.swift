import ComposefsDump
import ErofsWriter
import Foundation
import ImageModel
import ImagePipeline
import TestSupport
import Testing
import Verity

/// SHA-256 through the fs-verity module's EVP wrapper is not public; use sha256sum.
func sha256(_ bytes: [UInt8]) throws -> String {
    let result = try run("/usr/bin/sha256sum", ["-"], input: bytes)
    return String(result.stdoutText.prefix(64))
}

@Suite("composefs images, byte for byte", .enabled(if: TestPaths.haveVectors, "../shared/vectors is missing"))
struct ComposefsImageTests {
    static let vectors = TestPaths.acceptedVectors.map(\.lastPathComponent)

    @Test("the sha256 of our image equals mkcomposefs 1.0.8's", arguments: vectors)
    func vector(name: String) throws {
        let url = TestPaths.composefsVectors.appendingPathComponent(name)
        let expected = try String(contentsOf: URL(fileURLWithPath: url.path + ".sha256"), encoding: .utf8).prefix(64)
        let versionFile = url.path + ".version"
        var minVersion = 0, maxVersion = 1
        if let text = try? String(contentsOfFile: versionFile, encoding: .utf8),
            let v = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            minVersion = v
            maxVersion = v
        }
        let model = try DumpFile.read(path: url.path)
        let image = try ComposefsImage.bytes(for: model, minVersion: minVersion, maxVersion: maxVersion)
        #expect(image.count % 4096 == 0)
        #expect(try sha256(image) == String(expected), "\(name): \(image.count) bytes")
    }

    /// Reference 09 §13, composefs-models.
    static let models: [(String, Int, Int, String, String)] = [
        (
            "alpine.dump", 0, 1, "57b3e6d396fc5151a2a4e39de2297d20cc0b4fabbff95262ea6d127157c93165",
            "c6d01229e2203d23f6c7bc6fd9dd99c59757f80e31d5de4e104630438ca07ae8"
        ),
        (
            "alpine.dump", 1, 1, "f118ac18b9bf77c88c583546044383abb9a8e1ac1b0a23c25dfab81f58c33d41",
            "7e1ea4a9c029bd0f9a11e8913b3820996b690b213eb2b6397c789a77e099abbd"
        ),
        (
            "busybox.dump", 0, 1, "a637b2755cb8bce1457da708b9186d0c07bc3a1c8e9dbf2bcb04d1d7f89b5dc2",
            "9b92decdaacfcfacefc0ed18f4290743ee598bad3bd8b2295ed2abdeb73ee31c"
        ),
        (
            "busybox.dump", 1, 1, "341a2b724d9939c28dd12c086d3ba30f0052ce974f82ab08ae913e972c1f9689",
            "de854ea8e7ddb86dc8b79ceaae04e672165de0cfd64d8e64a0ac4bdf0a59bf46"
        ),
        (
            "dump-example.dump", 0, 1, "dfca9418c5e753f7cd151079c44fc711c7732cab69a8dc59f19c1f46c944dd07",
            "49820ae8e76b9844b74e8eb938a90a9b876e13fa87c2b730ab293e62cc9ad624"
        ),
        (
            "dump-example.dump", 1, 1, "0bfd3d96b309981e7c722cf965d9350a9cc2645c0277997be12fb9ae6e17c6d8",
            "0f5485bdc01e9e877ff39f0ddffe4b4cd2c93b3a83fe63331562cdb7b6ac82ce"
        ),
        (
            "fedora.dump", 0, 1, "050841eecf894725e5232a640584ac4317cfcc40e2418a4143324e91fe0a57a4",
            "f49fba9f09997d1379fd2739b4cfdf0d2eeaf875adb868b00d04771e8dfc7a54"
        ),
        (
            "fedora.dump", 1, 1, "199b7593d8fbb04ee416b19f6dc9576f4ce5e5b17d63fd84e92c978157eeca0f",
            "84d84087e2b5b5dcff1b0f84cae62e2eb9d0b2a15fff99f3bab371027964080d"
        ),
    ]

    @Test("composefs-models match the pinned sha256 and image digest", arguments: models)
    func model(name: String, minVersion: Int, maxVersion: Int, sha: String, verity: String) throws {
        let model = try DumpFile.read(path: TestPaths.composefsModels.appendingPathComponent(name).path)
        let image = try ComposefsImage.bytes(for: model, minVersion: minVersion, maxVersion: maxVersion)
        #expect(try sha256(image) == sha, "\(name) \(minVersion)/\(maxVersion)")
        #expect(try FsVerity.digest(of: image).hex == verity)
    }

    @Test("the reference's t.dump gives the pinned image digests at both versions")
    func referenceExample() throws {
        let text = referenceExampleDump
        let model = try DumpParser.parse(Array(text.utf8), input: "t.dump")
        let v1 = try ComposefsImage.bytes(for: model)
        #expect(v1.count == 16384)
        #expect(try FsVerity.digest(of: v1).hex == "ea0538cb2b9980ba6dd63feabc7b9a9219917e3656d92d5ae8b092f673000cb7")
        let v0 = try ComposefsImage.bytes(for: model, minVersion: 0, maxVersion: 0)
        #expect(try FsVerity.digest(of: v0).hex == "edcf6ae924d8e2efa985dc6d2455fc5e2381089381de071b1572f0fcb2cd7ddf")
    }

    @Test(
        "version selection follows mkcomposefs",
        arguments: [
            (0, 1, true, 1), (0, 1, false, 0), (0, 0, true, 0), (1, 0, false, 1), (1, 1, false, 1),
        ])
    func versions(minVersion: Int, maxVersion: Int, whiteout: Bool, expected: Int) throws {
        let text = "/ 4096 40755 2 0 0 0 0.0 - - -\n" + (whiteout ? "/w 0 20000 1 0 0 0 0.0 - - -\n" : "")
        let model = try DumpParser.parse(Array(text.utf8), input: "t")
        #expect(try ComposefsImage.version(for: model, minVersion: minVersion, maxVersion: maxVersion) == expected)
        #expect(throws: ComposefsError.self) { try ComposefsImage.version(for: model, minVersion: 2, maxVersion: 2) }
    }
}

@Suite("composefs images read back")
struct ComposefsReaderTests {
    static let inputs = TestPaths.roundTripInputs.map(\.path)

    @Test(
        "reading our image back gives the model, apart from what §11.4 says a round trip changes",
        arguments: inputs, [0, 1])
    func roundTrip(path: String, version: Int) throws {
        let model = try DumpFile.read(path: path)
        let image = try ComposefsImage.bytes(for: model, minVersion: version, maxVersion: version)
        let (back, header) = try ComposefsReader.read(image)
        #expect(header.formatVersion == version)
        #expect(try comparable(back) == comparable(model))
        // Writing the read-back model again reproduces the image when primaries were first already.
        if model.withFirstPathsPrimary() == model {
            #expect(try ComposefsImage.bytes(for: back, minVersion: version, maxVersion: version) == image)
        }
    }

    @Test("5000 seeded corruptions of images give a model or a clear error, never a trap")
    func corruptions() throws {
        let sources = ["special.dump", "config.dump.gz", "bigfile-xattr.dump"]
        var rng = SeededGenerator(seed: 1234)
        var errors = 0
        for source in sources {
            let model = try DumpFile.read(path: TestPaths.fixture(source).path)
            let image = try ComposefsImage.bytes(for: model)
            let interesting = min(image.count, 65536)
            for case_ in 0..<(source.hasPrefix("config") ? 400 : 2300) {
                var corrupt = image
                switch case_ % 4 {
                case 0: corrupt = Array(corrupt.prefix(Int.random(in: 0..<image.count, using: &rng)))
                case 1: corrupt[Int.random(in: 1024..<1152, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                default:
                    for _ in 0..<Int.random(in: 1...8, using: &rng) {
                        corrupt[Int.random(in: 1152..<interesting, using: &rng)] = UInt8.random(
                            in: 0...255, using: &rng)
                    }
                }
                do {
                    _ = try ComposefsReader.read(corrupt)
                } catch {
                    errors += 1
                    #expect("\(error)".count > 10)
                }
            }
        }
        #expect(errors > 1000)
    }
}
