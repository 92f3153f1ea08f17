import ArgumentParser
import ComposefsDump
import Foundation
import ImageModel
import LinuxSys
import ObjectStore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash an objects store and report missing, wrong-size and wrong-digest objects.",
        discussion: """
            Without MODEL every object under OBJECTS/xx/ is re-hashed and must match its name. \\
            With MODEL (a dump or an ovlcfs image) only the objects it references are checked: \\
            each must exist, have the model's size and its fs-verity digest. Exit status 1 when \\
            anything is wrong.

            Examples:
              ovlcfs verify --objects /srv/objects
              ovlcfs verify --objects /srv/objects rootfs.dump --json
            """
    )

    @Option(help: ArgumentHelp("The objects store.", valueName: "OBJECTS"))
    var objects: String

    @Argument(help: ArgumentHelp("Check only the objects this model references.", valueName: "MODEL"))
    var model: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        var clean = true
        try reportingErrors {
            let store = try ObjectStore(path: objects, create: false)
            let image = try model.map { try loadModel($0, options: DumpOptions(jobs: defaultDumpJobs)).0 }
            let report = try store.verify(model: image)
            clean = report.isClean
            let out = BufferedOutput.standardOutput()
            if json {
                try out.writeJSON(report)
            } else {
                for path in report.missing { try out.write("missing: \(path)\n") }
                for line in report.wrongSize { try out.write("wrong size: \(line)\n") }
                for line in report.wrongDigest { try out.write("wrong digest: \(line)\n") }
                for line in report.unreadable { try out.write("unreadable: \(line)\n") }
                try out.write(
                    "\(report.checked) objects checked, \(report.missing.count) missing, \(report.wrongSize.count) wrong size, "
                        + "\(report.wrongDigest.count) wrong digest\n")
            }
            try out.flush()
        }
        if !clean { throw ExitCode.failure }
    }
}
