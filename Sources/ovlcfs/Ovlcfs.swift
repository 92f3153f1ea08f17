import ArgumentParser
import Foundation

@main
struct Ovlcfs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ovlcfs",
        abstract: "composefs images and the overlayfs \"overlay option\", from one image model.",
        discussion: """
            ovlcfs reads an image model — a composefs dump file (plain, gzip or standard \
            input) — and describes, translates and compares it.

            Examples:
              ovlcfs inspect --example              summary of the built-in example model
              ovlcfs inspect rootfs.dump.gz --json  counts as JSON
              ovlcfs inspect rootfs.dump --dump     the canonical dump (as composefs-info dump prints it)
              ovlcfs build rootfs.dump -o rootfs.sqfs   the overlay option: a squashfs of metacopy stubs
              ovlcfs inspect rootfs.sqfs --dump     read an image back into the model
            """,
        version: "0.1.0",
        subcommands: [
            BenchCommand.self, Inspect.self, Build.self, MountCommand.self, UmountCommand.self, StatusCommand.self,
            VerifyCommand.self, DigestCommand.self, GCCommand.self,
        ]
    )

    /// Refuses arguments that are not valid UTF-8 before parsing: Swift would replace the bad
    /// bytes with U+FFFD, and `-o` would then write a file of another name.
    static func main() {
        for index in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[index], String(validatingCString: raw) == nil else { continue }
            FileHandle.standardError.write(
                Data("ovlcfs: argument \(index) is not valid UTF-8; ovlcfs takes UTF-8 paths and options\n".utf8))
            Foundation.exit(2)
        }
        // Run as mount(8)'s helper (a link named mount.ovlcfs): its own argument convention.
        if CommandLine.arguments.first.map({ URL(fileURLWithPath: $0).lastPathComponent }) == "mount.ovlcfs" {
            Foundation.exit(MountHelper.main(Array(CommandLine.arguments.dropFirst())))
        }
        main(nil)
    }
}
