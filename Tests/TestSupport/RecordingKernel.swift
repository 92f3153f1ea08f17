import Foundation
import LinuxSys
import MountDriver
import SystemPackage

/// A kernel that records every call and fails at a chosen step.
public final class RecordingKernel: KernelOps, @unchecked Sendable {
    public var calls: [String] = []
    public var failAt: MountStep?
    public var mounted: Set<String> = []
    public var verity = false
    public var liveLoops = 0
    public var liveMounts = 0

    public init() {}

    public struct Injected: Error, CustomStringConvertible {
        public init() {}
        public var description: String { "injected failure" }
    }

    final class Loop: LoopHandle {
        let kernel: RecordingKernel
        let path = "/dev/loop7"
        let sequence: UInt64? = 42
        var attached = true
        init(_ kernel: RecordingKernel) {
            self.kernel = kernel
            kernel.liveLoops += 1
        }
        func release() { kernel.calls.append("release \(path)") }
        func detach() throws {
            if attached {
                kernel.calls.append("detach \(path)")
                attached = false
                kernel.liveLoops -= 1
            }
        }
        deinit { if attached { kernel.liveLoops -= 1 } }
    }

    final class Mount: MountHandle {
        let kernel: RecordingKernel
        let procPath: String
        init(_ kernel: RecordingKernel, _ n: Int) {
            self.kernel = kernel
            procPath = "/proc/self/fd/\(n)"
            kernel.liveMounts += 1
        }
        deinit { kernel.liveMounts -= 1 }
        func attach(at target: String) throws {
            if kernel.failAt == .attach { throw Injected() }
            kernel.calls.append("attach \(procPath) at \(target)")
            kernel.mounted.insert(target)
        }
    }

    public func attachLoop(file: String, offset: UInt64, sizeLimit: UInt64, blockSize: UInt32) throws -> any LoopHandle
    {
        if failAt == .loopAttach { throw Injected() }
        calls.append("loop \(file) bs=\(blockSize)")
        return Loop(self)
    }

    /// EROFS refuses a regular file as its source (a kernel without file-backed mounts).
    public var erofsFromFileFails = false

    public func mountFilesystem(type: String, source: String, options: [(String, String?)], attributes: MountAttributes)
        throws -> any MountHandle
    {
        if erofsFromFileFails && type == "erofs" && !source.hasPrefix("/dev/") {
            throw MountError(operation: "fsconfig(erofs, source=\(source))", errno: .notBlockDevice, kernelMessages: [])
        }
        if failAt == .filesystemMount && type != "overlay" { throw Injected() }
        if failAt == .overlayMount && type == "overlay" { throw Injected() }
        calls.append(
            "\(type) \(source) "
                + options.map { option in option.1.map { "\(option.0)=\($0)" } ?? option.0 }.joined(separator: ",")
                + (attributes == [.readOnly] ? "" : " attributes=\(attributes.rawValue)"))
        return Mount(self, 10 + calls.count)
    }

    public func unmount(_ target: String, mountID: Int?) throws {
        calls.append("umount \(target)")
        mounted.remove(target)
    }

    /// How many times `isLoopAttached` answers yes after an unmount (udev holding the device).
    public var loopLingers = 0
    public var loopChecks: [String] = []
    public func isLoopAttached(_ device: String, sequence: UInt64) -> Bool {
        loopChecks.append("\(device) #\(sequence)")
        guard loopLingers > 0 else { return false }
        loopLingers -= 1
        return true
    }

    public func detachMount(_ target: String) throws {
        calls.append("umount -l \(target)")
        mounted.remove(target)
    }

    /// `/proc/self/mountinfo` cannot be read: every question about mounts throws.
    public var mountTableUnreadable = false
    public func isMounted(_ target: String) throws -> Bool {
        if mountTableUnreadable { throw Injected() }
        return mounted.contains(target) || foreign[target] != nil
    }
    /// Mounts made by someone else: target → type.
    public var foreign: [String: String] = [:]
    public func mountStack(at target: String) throws -> [MountIdentity] {
        if mountTableUnreadable { throw Injected() }
        var stack: [MountIdentity] = []
        if mounted.contains(target) {
            stack.append(MountIdentity(id: 100 + target.utf8.count, type: "overlay", source: "ovlcfs"))
        }
        if let type = foreign[target] { stack.append(MountIdentity(id: 900, type: type, source: "none")) }
        return stack
    }
    public func hasFsVerity(_ directory: String) -> Bool { verity }
    public var deviceMapper = false
    public var activeVerity: Set<String> = []
    public var removed: [String] = []
    public func hasDeviceMapper() -> Bool { deviceMapper }
    public func verityMappings() -> [String] { activeVerity.sorted() }
    public var detachedLayers = true
    public func acceptsDetachedLayers() -> Bool { detachedLayers }
    public var kernelRelease = "6.18.0-test"
    public func release() -> String { kernelRelease }
    public func activateVerity(data: String, hash: String, rootHash: [UInt8], name: String) throws -> String {
        calls.append("verity \(data) \(hash) \(rootHash.map { String(format: "%02x", $0) }.joined())")
        activeVerity.insert(name)
        return "/dev/mapper/\(name)"
    }
    public func deactivateVerity(name: String, deferred: Bool) throws {
        calls.append(deferred ? "deferred-remove" : "remove")
        removed.append(name)
        activeVerity.remove(name)
    }
}
