import Foundation
import MountDriver

/// What this host lets tests do; each property is a reason to skip when it is not there.
public enum HostCapabilities {
    public static var isRoot: Bool { geteuid() == 0 }

    /// Whether the filesystem holding `directory` can enforce fs-verity (the mount driver's probe).
    public static func hasFsVerity(_ directory: String) -> Bool { LinuxKernelOps().hasFsVerity(directory) }

    public static func kernelHasFilesystem(_ name: String) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8) else { return false }
        return text.split(separator: "\n").contains { $0.split(separator: "\t").last.map(String.init) == name }
    }

    /// Root, loop devices, squashfs and overlayfs: the mount tests can run.
    public static var canMountSquashfsOverlay: Bool {
        isRoot && FileManager.default.fileExists(atPath: "/dev/loop-control")
            && kernelHasFilesystem("squashfs") && kernelHasFilesystem("overlay")
    }

    public static let mountSkipReason = "needs root, /dev/loop-control and the squashfs and overlay filesystems"
}

/// Mounts made by a test through the system tools, undone in reverse order by `tearDown()`
/// (call it in a `defer`, so it runs when the test fails too).
public final class TestMounts: @unchecked Sendable {
    private var loops: [String] = []
    private var mountpoints: [String] = []
    private let lock = NSLock()

    public init() {}

    /// Attaches `image` read-only to a free loop device (with `sectorSize`-byte logical blocks).
    public func attachLoop(_ image: String, sectorSize: Int = 512) throws -> String {
        let result = try run(
            "/sbin/losetup", ["--find", "--show", "--read-only", "--sector-size", "\(sectorSize)", image])
        guard result.status == 0 else { throw TestFailure("losetup \(image): \(result.stderrText)") }
        let device = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        lock.withLock { loops.append(device) }
        return device
    }

    /// `mount -t TYPE -o OPTIONS SOURCE TARGET`.
    public func mount(_ type: String, _ source: String, _ target: String, options: String) throws {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let result = try run("/bin/mount", ["-t", type, "-o", options, source, target])
        guard result.status == 0 else {
            throw TestFailure("mount -t \(type) -o \(options) \(source) \(target): \(result.stderrText)")
        }
        lock.withLock { mountpoints.append(target) }
    }

    /// Unmounts everything (newest first) and detaches the loop devices.
    public func tearDown() {
        let (targets, devices) = lock.withLock { (mountpoints.reversed(), loops.reversed()) }
        for target in targets {
            // A busy mount (another test's process starting at that moment) is retried for up
            // to two seconds, then detached lazily, and said.
            var result = try? run("/bin/umount", [target])
            var attempts = 0
            while result?.status != 0 && attempts < 20 {
                usleep(100_000)
                result = try? run("/bin/umount", [target])
                attempts += 1
            }
            if result?.status != 0 {
                print(
                    "TestMounts: umount \(target) failed (\(result?.stderrText ?? "umount did not run")); detaching it lazily"
                )
                _ = try? run("/bin/umount", ["-l", target])
            }
        }
        for device in devices { _ = try? run("/sbin/losetup", ["--detach", device]) }
        lock.withLock {
            mountpoints = []
            loops = []
        }
    }

    /// Whether a path is a mount point now (from /proc/self/mountinfo).
    public static func isMounted(_ path: String) -> Bool {
        let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").contains {
            $0.split(separator: " ").dropFirst(4).first.map(String.init) == path
        }
    }

    /// Whether any loop device is backed by `image`.
    public static func loopAttached(to image: String) -> Bool {
        let result = try? run("/sbin/losetup", ["--associated", image])
        return !(result?.stdoutText.isEmpty ?? true)
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What of a test is still mounted under `directory`, or attached on a loop device backed by a
/// file in it (empty when everything was cleaned up).
public func nothingLeft(under directory: String) -> [String] {
    // A loop device autoclears when its last opener closes it; after a plain umount(8) that
    // can be a moment later (udev probing it), so loops get up to 3 s to go.
    var left: [String] = []
    for attempt in 0..<30 {
        left = mountsAndLoops(under: directory)
        if left.isEmpty || left.contains(where: { $0.hasPrefix("mounted:") }) || attempt == 29 { break }
        usleep(100_000)
    }
    return left
}

private func mountsAndLoops(under directory: String) -> [String] {
    let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
    var left = mountinfo.split(separator: "\n").compactMap { line -> String? in
        let point = line.split(separator: " ").dropFirst(4).first.map(String.init) ?? ""
        return point.hasPrefix(directory) ? "mounted: \(point)" : nil
    }
    let loops = (try? run("/sbin/losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"]))?.stdoutText ?? ""
    left += loops.split(separator: "\n").filter { $0.contains(directory) }.map { "loop: \($0)" }
    return left
}
