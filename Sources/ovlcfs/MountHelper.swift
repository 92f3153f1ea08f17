import Foundation
import ImageModel
import LinuxSys
import MountDriver
import OverlayTranslation

/// `mount.ovlcfs`: the ovlcfs binary under the name mount(8) looks for, following its helper
/// convention, so `mount -t ovlcfs IMAGE DIR -o objects=…`, /etc/fstab lines and systemd
/// `.mount` units work. Options are spelled as mount.composefs spells its own where they mean
/// the same; an unknown one is refused with its name (unless -s).
enum MountHelper {
    static let usage = """
        usage: mount.ovlcfs IMAGE MOUNTPOINT [-o OPTIONS] [-s] [-f] [-n] [-v] [-r|-w]
               (as mount -t ovlcfs IMAGE MOUNTPOINT -o OPTIONS, or an /etc/fstab line:
                /srv/images/app.sqfs /mnt/app ovlcfs objects=/srv/objects,nofail 0 0)

        options (comma-separated; IMAGE is a .sqfs, a .cfs or a verity disk):
          objects=DIR[:DIR…]   objects store(s); repeatable (required)
          layout=data-only|legacy
          verity | tryverity | noverity | verity=require|auto|off
                               overlay fs-verity checks of objects (and dm-verity of disks):
                               require, auto (default: where the filesystem can) or off
          digest=HEX           the image file's fs-verity digest; checked on the descriptor mounted
          root-hash=HEX        verity disks: the root hash to trust
          loop-block-size=N    512, 1024, 2048 or 4096
          upperdir=DIR,workdir=DIR
                               writable: changes go to DIR (image and objects are never written)
          ro | rw              without upperdir the mount is read-only either way
          nosuid, nodev, noexec, nosymfollow (and suid, dev, exec, symfollow)
          ignored: defaults, auto, noauto, nofail, _netdev, nouser, sync, dirsync, the atime
                   options, iversion, mand, silent, loud, comment=…, x-…
          refused: user, users, owner, group, loop
        flags: -s ignore unknown options, -f plan only (print it, mount nothing), -v print the
               plan, -n (no /etc/mtab: ignored), -r read-only, -w read-write
        exit status: 0 mounted, 1 bad usage, 32 mount failure
        """

    /// What libmount passes on or fstab carries that changes nothing for a read-only image
    /// (atime options apply to an upper directory's own mount, not to this overlay's files).
    static let ignored: Set<String> = [
        "defaults", "auto", "noauto", "nofail", "_netdev", "nouser", "async", "sync", "dirsync", "atime", "noatime",
        "diratime", "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "lazytime", "nolazytime",
        "iversion", "noiversion", "mand", "nomand", "silent", "loud", "symfollow",
    ]
    /// Refused: they would change who may mount (libmount drops privileges for them) or have
    /// libmount attach a loop device of its own.
    static let refused: Set<String> = ["user", "users", "owner", "group", "loop"]

    struct UsageError: Error, CustomStringConvertible { var description: String }

    /// The request, and the flags that change what is done with it.
    struct Invocation {
        var request: MountRequest
        var fake = false
        var verbose = false
        var stateDirectory = ProcessInfo.processInfo.environment["OVLCFS_STATE_DIRECTORY"] ?? "/run/ovlcfs"
    }

    static func parse(_ arguments: [String]) throws -> Invocation {
        var line = try splitArguments(arguments)
        guard line.positional.count == 2 else {
            throw UsageError(description: "expected IMAGE and MOUNTPOINT, got \(line.positional.count) argument(s)")
        }
        var objects: [String] = []
        var request = MountRequest(image: line.positional[0], target: line.positional[1], objects: [])
        for option in line.options.flatMap({ $0.split(separator: ",").map(String.init) }) {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            try apply(key: parts[0], value: parts.count > 1 ? parts[1] : nil, to: &request, &objects, &line)
        }
        guard !objects.isEmpty else { throw UsageError(description: "objects=DIR is required") }
        request.objects = objects
        // mount(8) passes `rw` unless told `ro`: without an upper directory the mount is
        // read-only all the same (the image is), as mount.composefs does.
        request.readOnly = line.readWrite == false
        var invocation = Invocation(request: request)
        invocation.fake = line.fake
        invocation.verbose = line.verbose
        return invocation
    }

    /// The command line as mount(8) passes it: flags, `-o` option strings, two positionals.
    struct Arguments {
        var positional: [String] = []
        var options: [String] = []
        var sloppy = false, fake = false, verbose = false
        var readWrite: Bool? = nil
    }

    static func splitArguments(_ arguments: [String]) throws -> Arguments {
        var line = Arguments()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            switch argument {
            case "-o", "-t", "-N":
                guard index < arguments.count else { throw UsageError(description: "\(argument) needs a value") }
                let value = arguments[index]
                index += 1
                if argument == "-o" { line.options.append(value) }
                if argument == "-t" && value != "ovlcfs" {
                    throw UsageError(description: "-t \(value): this helper mounts type ovlcfs")
                }
                if argument == "-N" {
                    throw UsageError(description: "-N (another mount namespace) is not supported")
                }
            case let flags where flags.hasPrefix("-") && flags.count > 1:
                for flag in flags.dropFirst() {
                    switch flag {
                    case "s": line.sloppy = true
                    case "f": line.fake = true
                    case "v": line.verbose = true
                    case "n": break
                    case "r": line.readWrite = false
                    case "w": line.readWrite = true
                    default: throw UsageError(description: "unknown flag -\(flag)")
                    }
                }
            default: line.positional.append(argument)
            }
        }
        return line
    }

    /// Applies one `-o` option (`key` or `key=value`).
    static func apply(
        key: String, value: String?, to request: inout MountRequest, _ objects: inout [String],
        _ line: inout Arguments
    ) throws {
        func needValue() throws -> String {
            guard let value, !value.isEmpty else { throw UsageError(description: "option \(key) needs =VALUE") }
            return value
        }
        switch key {
        case "objects": objects += try needValue().split(separator: ":").map(String.init)
        case "layout":
            guard let layout = OverlayLayout(rawValue: try needValue()) else {
                throw UsageError(description: "layout=\(value ?? ""): data-only or legacy")
            }
            request.layout = layout
        case "verity" where value == nil: request.verity = .require
        case "tryverity": request.verity = .auto
        case "noverity": request.verity = .off
        case "verity":
            guard let policy = VerityPolicy(rawValue: try needValue()) else {
                throw UsageError(description: "verity=\(value ?? ""): require, auto or off")
            }
            request.verity = policy
        case "digest": request.digest = try hex32(try needValue(), key)
        case "root-hash": request.rootHash = try hex32(try needValue(), key)
        case "loop-block-size":
            guard let size = UInt32(try needValue()), [512, 1024, 2048, 4096].contains(size) else {
                throw UsageError(description: "loop-block-size=\(value ?? ""): 512, 1024, 2048 or 4096")
            }
            request.loopBlockSize = size
        case "upperdir": request.upperdir = try needValue()
        case "workdir": request.workdir = try needValue()
        case "ro": line.readWrite = false
        case "rw": line.readWrite = true
        case "nosuid": request.attributes.insert(.noSetuid)
        case "nodev": request.attributes.insert(.noDevices)
        case "noexec": request.attributes.insert(.noExec)
        case "nosymfollow": request.attributes.insert(.noSymlinkFollow)
        case "suid": request.attributes.remove(.noSetuid)
        case "dev": request.attributes.remove(.noDevices)
        case "exec": request.attributes.remove(.noExec)
        case _ where refused.contains(key):
            throw UsageError(description: "option '\(key)' is not supported (ovlcfs mounts are made by root)")
        case _ where ignored.contains(key) || key == "comment" || key.hasPrefix("x-"): break
        default:
            if !line.sloppy {
                throw UsageError(description: "unknown option '\(key)' (mount.ovlcfs --help lists them)")
            }
        }
    }

    static func hex32(_ text: String, _ key: String) throws -> [UInt8] {
        guard let bytes = Hex.decode(text, exactly: 32) else {
            throw UsageError(description: "\(key)= takes 64 hex digits")
        }
        return bytes
    }

    /// Runs as mount(8)'s helper; returns its exit status.
    static func main(_ arguments: [String]) -> Int32 {
        if arguments.contains("--help") || arguments.contains("-h") {
            print(usage)
            return 0
        }
        let invocation: Invocation
        do { invocation = try parse(arguments) } catch {
            printError("mount.ovlcfs: \(error)")
            return 1
        }
        let driver = MountDriver(stateDirectory: invocation.stateDirectory)
        driver.warn = { printError("mount.ovlcfs: \($0)") }
        do {
            if invocation.fake || invocation.verbose {
                let plan = try driver.plan(invocation.request)
                print(plan.text, terminator: "")
                if invocation.fake { return 0 }
            }
            try driver.mount(invocation.request)
            return 0
        } catch {
            printError("mount.ovlcfs: \(error)")
            return 32
        }
    }
}
