import ArgumentParser
import ComposefsDump
import Foundation
import ImageModel
import LinuxSys
import MountDriver
import ObjectStore

struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove the objects no given image and no active ovlcfs mount references.",
        discussion: """
            Every IMAGE (a dump, an ovlcfs or composefs image, a verity disk, or a container \\
            image such as oci:DIR) is read for the objects it names; so is the image of every \\
            active ovlcfs mount whose objects include OBJECTS (records in --state-directory). \\
            Objects named by none of them are removed, as are the staging files interrupted \\
            ingests left in OBJECTS/.ovlcfs-tmp. An image of an active mount that cannot be \\
            read refuses the collection: nothing it might name is removed.

            Builds into the store (ingest, OCI import) hold its lock shared while they write; \\
            gc takes it exclusively, and waits (saying so) while a build runs, so an object \\
            published by a concurrent build is never removed. Objects are removed one at a \\
            time and only unreferenced ones: after a crash, run gc again.

            Examples:
              ovlcfs gc --objects /srv/objects app-1.sqfs app-2.cfs --dry-run
              ovlcfs gc --objects /srv/objects rootfs.dump oci:/srv/images/app:2 --json
            """
    )

    @Option(help: ArgumentHelp("The objects store.", valueName: "OBJECTS"))
    var objects: String

    @Argument(help: ArgumentHelp("The images whose objects to keep.", valueName: "IMAGE"))
    var images: [String] = []

    @Flag(help: "Report what would be removed; remove nothing.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var state: StateOptions

    func validate() throws {
        if images.isEmpty {
            throw ValidationError(
                "Name at least one image whose objects to keep (to empty a store, remove its directory).")
        }
    }

    func run() throws {
        try reportingErrors {
            let store = try ObjectStore(path: objects, create: false)
            var referenced = Set<Digest>()
            func keep(_ image: Image) {
                for inode in image.inodes where inode.type == .regular {
                    if case .object(let digest)? = inode.externalObject?.payload { referenced.insert(digest) }
                }
            }
            for image in images { keep(try loadModel(image, options: DumpOptions()).0) }
            let storePath = (try? FileQueries.realPath(objects)) ?? objects
            let driver = MountDriver(stateDirectory: state.stateDirectory)
            driver.pruneUnmountedRecords()
            for status in driver.status() where status.mounted {
                let record = status.record
                guard record.objects.contains(where: { ((try? FileQueries.realPath($0)) ?? $0) == storePath }) else {
                    continue
                }
                do {
                    keep(try loadModel(record.image, options: DumpOptions()).0)
                } catch {
                    throw ValidationError(
                        "the image of the ovlcfs mount at \(record.target) (\(record.image)) cannot be read: \(error); gc removes nothing rather than guess what it names"
                    )
                }
            }
            let report = try store.collect(keeping: referenced, dryRun: dryRun)
            let out = BufferedOutput.standardOutput()
            if json {
                try out.writeJSON(report)
            } else {
                let verb = dryRun ? "would remove" : "removed"
                try out.write(
                    "gc \(objects): kept \(report.objectsKept) objects (\(formatBytes(report.bytesKept))), "
                        + "\(verb) \(report.objectsRemoved) (\(formatBytes(report.bytesRemoved))) "
                        + "and \(report.stagingRemoved) staging leftover\(report.stagingRemoved == 1 ? "" : "s")\n")
                if report.referencedMissing > 0 {
                    try out.write(
                        "warning: \(report.referencedMissing) referenced object(s) are not in the store (ovlcfs verify tells which)\n"
                    )
                }
                for path in report.foreign.prefix(10) { try out.write("left alone (not an object): \(path)\n") }
            }
            try out.flush()
        }
    }
}
