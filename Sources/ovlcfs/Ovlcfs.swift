import ArgumentParser

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
        subcommands: [BenchCommand.self, Inspect.self, Build.self, MountCommand.self, UmountCommand.self, StatusCommand.self, VerifyCommand.self, DigestCommand.self]
    )
}
