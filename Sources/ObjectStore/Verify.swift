import Dispatch
import Foundation
import ImageModel
import LinuxSys
import SystemPackage
import Verity

/// What `verify` found wrong in an objects store.
public struct VerifyReport: Sendable, Codable {
    public var checked = 0
    public var missing: [String] = []
    public var wrongSize: [String] = []
    public var wrongDigest: [String] = []
    public var unreadable: [String] = []
    /// Store entries that are not objects: names that are no digest, anything but a regular
    /// file where an object belongs. Never hashed, never counted as checked.
    public var foreign: [String] = []

    public var isClean: Bool {
        missing.isEmpty && wrongSize.isEmpty && wrongDigest.isEmpty && unreadable.isEmpty && foreign.isEmpty
    }
}

extension ObjectStore {
    /// One object to check: its path in the store, expected size (if known) and digest.
    struct Expectation: Sendable {
        var relativePath: String
        var size: UInt64?
        var digest: Digest?
    }

    /// Re-hashes the store — every object, or only those `model` references — and reports
    /// missing objects, wrong sizes and wrong digests by path.
    public func verify(model: Image? = nil, workers: Int = ProcessInfo.processInfo.activeProcessorCount) throws
        -> VerifyReport
    {
        var expectations: [Expectation] = []
        var foreign: [String] = []
        if let model {
            var seen = Set<[UInt8]>()
            for inode in model.inodes where inode.type == .regular && inode.size > 0 {
                guard let object = inode.externalObject, let payload = object.payload else { continue }
                guard seen.insert(payload.bytes).inserted else { continue }
                var digest = object.digest
                if digest == nil, case .object(let named) = payload { digest = named }
                expectations.append(
                    Expectation(
                        relativePath: String(decoding: payload.bytes, as: UTF8.self), size: inode.size, digest: digest))
            }
        } else {
            for fan in try root.entries() where !fan.starts(with: [UInt8(ascii: ".")]) {
                let fanPath = path + "/" + String(decoding: fan, as: UTF8.self)
                guard fan.count == 2, fan.allSatisfy({ hexDigit($0) }), (try? root.status(fan))?.isDirectory == true
                else {
                    foreign.append(fanPath)
                    continue
                }
                let dir = try root.openDirectory(fan)
                for leaf in try dir.entries() {
                    let relative = fan + [0x2F] + leaf
                    guard let digest = Digest(objectPath: relative) else {
                        foreign.append(fanPath + "/" + String(decoding: leaf, as: UTF8.self))
                        continue
                    }
                    expectations.append(
                        Expectation(relativePath: String(decoding: relative, as: UTF8.self), size: nil, digest: digest))
                }
            }
        }
        let report = LockedReport()
        let storePath = path
        let work = expectations
        DispatchQueue.concurrentPerform(iterations: max(1, workers)) { worker in
            for index in stride(from: worker, to: work.count, by: max(1, workers)) {
                let expectation = work[index]
                let full = storePath + "/" + expectation.relativePath
                do {
                    // Confined to the store, no symlinks, no FIFOs: only regular files are hashed.
                    let (fd, status) = try root.openRegularFile(beneath: Array(expectation.relativePath.utf8))
                    defer { try? fd.close() }
                    if let size = expectation.size, status.size != size {
                        report.add { $0.wrongSize.append("\(full): \(status.size) bytes, expected \(size)") }
                        continue
                    }
                    let digest = try FsVerity.digest(of: fd, size: status.size, path: full).digest
                    // Without a digest (a payload not named by one), existence and size are all we check.
                    if let expected = expectation.digest, digest != expected {
                        report.add {
                            $0.wrongDigest.append("\(full): fs-verity digest \(digest.hex), expected \(expected.hex)")
                        }
                    }
                    report.add { $0.checked += 1 }
                } catch let error as IOError where error.errno == .noSuchFileOrDirectory {
                    report.add { $0.missing.append(full) }
                } catch {
                    report.add { $0.unreadable.append("\(error)") }
                }
            }
        }
        var result = report.value
        result.foreign = foreign.sorted()
        result.missing.sort()
        result.wrongSize.sort()
        result.wrongDigest.sort()
        result.unreadable.sort()
        return result
    }
}

func hexDigit(_ byte: UInt8) -> Bool {
    (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)
}

private final class LockedReport: @unchecked Sendable {
    private let lock = NSLock()
    private var report = VerifyReport()
    func add(_ body: (inout VerifyReport) -> Void) {
        lock.lock()
        body(&report)
        lock.unlock()
    }
    var value: VerifyReport {
        lock.lock()
        defer { lock.unlock() }
        return report
    }
}
