import Foundation

@_exported import struct Bench.SplitMix64

/// Locations of the shared test vectors and of the package's build products.
public enum TestPaths {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` next to the package root.
    public static let shared: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")

    public static let composefsVectors = shared.appendingPathComponent("vectors/composefs")
    public static let composefsModels = shared.appendingPathComponent("vectors/composefs-models")

    /// Inputs kept in the repository (`Tests/Fixtures`), so a fresh clone runs the suite whole.
    public static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures")
    public static func fixture(_ name: String) -> URL { fixtures.appendingPathComponent(name) }
    /// The CentOS Stream 9 minimal model the README's benchmark uses (`Examples/`).
    public static let cs9 = packageRoot.appendingPathComponent("Examples/cs9-x86_64-minimal.dump.gz")

    /// Whether the shared vectors are present (they are next to the checkout in CI).
    public static var haveVectors: Bool { FileManager.default.fileExists(atPath: composefsVectors.path) }

    /// Files in `directory` whose names pass `filter`, sorted by name.
    public static func files(in directory: URL, where filter: (String) -> Bool) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter(filter).sorted().map { directory.appendingPathComponent($0) }
    }

    /// Every composefs vector dump that mkcomposefs accepts (those with a `.sha256`).
    public static var acceptedVectors: [URL] {
        files(in: composefsVectors) { $0.hasSuffix(".sha256") }
            .map { URL(fileURLWithPath: String($0.path.dropLast(".sha256".count))) }
    }

    /// Every `should-fail-*.dump`.
    public static var shouldFailVectors: [URL] {
        files(in: composefsVectors) { $0.hasPrefix("should-fail-") && $0.hasSuffix(".dump") }
    }

    /// Models for round-trip tests: every accepted vector and model dump when the shared
    /// vectors are there, else the repository's fixtures and the cs9 model.
    public static var roundTripInputs: [URL] {
        if haveVectors { return acceptedVectors + modelDumps.filter { $0.lastPathComponent != "dot-root.dump" } }
        return ["special.dump", "bigfile.dump", "bigfile-xattr.dump", "config.dump.gz", "fedora.dump.gz"].map(fixture)
            + [cs9]
    }

    /// Every `composefs-models/*.dump`.
    public static var modelDumps: [URL] {
        files(in: composefsModels) { $0.hasSuffix(".dump") }
    }

    /// The directory holding the built products (`ovlcfs`), next to the test bundle.
    public static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }
}

/// The contents of a file, decompressed with `gzip -dc` when it ends in `.gz`.
public func readVector(_ url: URL) throws -> [UInt8] {
    if url.pathExtension == "gz" {
        let result = try run("/bin/gzip", ["-dc", url.path])
        return result.stdout
    }
    return Array(try Data(contentsOf: url))
}

/// What a finished process printed and returned.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs a program to completion, feeding `input` on standard input.
public func run(_ executable: String, _ arguments: [String], input: [UInt8]? = nil) throws -> ProcessResult {
    // A child that exits before reading all its input must not kill the test runner.
    signal(SIGPIPE, SIG_IGN)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let inPipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try process.run()
    if let input {
        let writer = inPipe.fileHandleForWriting
        DispatchQueue.global().async {
            try? writer.write(contentsOf: Data(input))
            try? writer.close()
        }
    }
    // Read both pipes concurrently so a full pipe never blocks the child.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: Array(outData), stderr: Array(errData))
}

/// A fresh temporary directory, removed by `cleanup()`.
public struct TemporaryDirectory: Sendable {
    public let url: URL
    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("ovlcfs-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    public func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// The deterministic PRNG the benchmarks use (SplitMix64), so fuzz-style tests are reproducible.
public typealias SeededGenerator = SplitMix64

/// The example dump of reference 01 (`t.dump`): a hard link, inline and external content, a digest,
/// an escaped xattr, a symlink and a whiteout.
public let referenceExampleDump = """
    / 4096 40755 2 0 0 0 1700000000.0 - - -
    /a 12 100644 2 0 0 0 1700000000.0 - hello\\x20world\\n -
    /b 12 @100644 2 0 0 0 1700000000.0 /a - -
    /big 100000 100644 1 0 0 0 1700000000.0 f5/82acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b - f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b user.k\\x3d1=v\\x20x
    /dash 1 100644 1 0 0 0 1700000000.0 - \\x2d -
    /s 1 120777 1 0 0 0 1700000000.0 a - -
    /wh 0 20000 1 0 0 0 1700000000.0 - - -

    """
