import ArgumentParser
import ImageModel
import LinuxSys
import Verity

struct DigestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print the fs-verity digest of files, as `fsverity digest` does.",
        discussion: """
            SHA-256 over 4096-byte blocks, the digest composefs names objects by and overlayfs \
            checks through trusted.overlay.metacopy. Computed in userspace: the files need no \
            fs-verity support.

            Examples:
              ovlcfs digest /usr/bin/ls
              ovlcfs digest --compact --salt 0011223344556677 file
            """
    )

    @Argument(help: ArgumentHelp("Files to digest.", valueName: "FILE"))
    var files: [String]

    @Option(help: ArgumentHelp("Salt as hex (up to 32 bytes).", valueName: "HEX"))
    var salt: String = ""

    @Flag(help: "Print only the hex digest.")
    var compact = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("Give at least one FILE.") }
        guard saltBytes != nil else {
            throw ValidationError("--salt must be an even number of hex digits, at most 64.")
        }
    }

    var saltBytes: [UInt8]? { Hex.decode(salt, maxBytes: 32) }

    func run() throws {
        // Every file gets its line or its error (naming it); any error makes the exit status 1.
        var failures = 0
        try reportingErrors {
            let out = BufferedOutput.standardOutput()
            for file in files {
                do {
                    let digest = try FsVerity.digest(ofFile: file, salt: saltBytes ?? [])
                    try out.write(compact ? "\(digest.hex)\n" : "sha256:\(digest.hex) \(file)\n")
                } catch {
                    try out.flush()
                    printError("ovlcfs: \(error)")
                    failures += 1
                }
            }
            try out.flush()
        }
        if failures > 0 { throw ExitCode.failure }
    }
}
