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
            let driver = MountDriver(stateDirectory: state.stateDirectory)
            try driver.pruneUnmountedRecords()
            // Marked under the store's exclusive lock: no build writes and no mount of this
            // store is being made (both hold it shared) while the images are read.
            let report = try store.collect(dryRun: dryRun) {
                var referenced = Set<Digest>()
                func keep(_ image: Image) {
                    for inode in image.inodes where inode.type == .regular {
                        if case .object(let digest)? = inode.externalObject?.payload { referenced.insert(digest) }
                    }
                }
                for image in images { keep(try loadModel(image, options: DumpOptions(jobs: defaultDumpJobs)).0) }
                if let garbage = driver.garbageRecords().first {
                    throw ValidationError(
                        "\(garbage) is an unreadable mount record; gc removes nothing rather than guess what its mount uses (ovlcfs umount --all clears it)"
                    )
                }
                let storeIdentity = FileIdentity(path: objects).map { [$0.device, $0.inode] }
                for record in driver.records() {
                    guard
                        record.objects.contains(where: {
                            FileIdentity(path: $0).map { [$0.device, $0.inode] } == storeIdentity
                        })
                    else { continue }
                    let now = FileIdentity(path: record.image)
                    if let then = record.imageIdentity, now != then {
                        throw ValidationError(
                            "the image of the ovlcfs mount at \(record.target) (\(record.image)) changed or went since it was mounted; gc removes nothing rather than guess what the mount uses"
                        )
                    }
                    do {
                        keep(try loadModel(record.image, options: DumpOptions(jobs: defaultDumpJobs)).0)
                    } catch {
                        throw ValidationError(
                            "the image of the ovlcfs mount at \(record.target) (\(record.image)) cannot be read: \(error); gc removes nothing rather than guess what it names"
                        )
                    }
                }
                return referenced
            }
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
