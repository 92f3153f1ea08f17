import Foundation
import TestSupport
import Testing

/// What this machine's kernel cannot show (no device-mapper, no fs-verity) checked under Debian's
/// 6.12 kernel in QEMU (../shared/tools/kernel-vm, prepared by its setup-host.sh; `scripts/test`
/// runs that when the tool is there): `scripts/vm-checks.sh` builds a verity disk and an ext4
/// objects store with the verity feature, and inside the VM mounts them with `ovlcfs mount
/// --verity require` (dm-verity mapping, overlay verity=require), tampers, and checks teardown.
@Suite("Kernel truth: dm-verity and fs-verity under a 6.12 VM")
struct KernelVMTests {
    static let tools = TestPaths.shared.appendingPathComponent("tools/kernel-vm")
    static let work =
        ProcessInfo.processInfo.environment["KVM_WORK"]
        ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kernel-vm").path
    static let binary = TestPaths.productsDirectory.appendingPathComponent("ovlcfs").path

    static var missing: String? {
        if !HostCapabilities.isRoot { return "needs root (the host side runs mkfs and the guest mounts)" }
        if !FileManager.default.isExecutableFile(atPath: tools.appendingPathComponent("vmrun.sh").path) {
            return "no \(tools.path)"
        }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") {
            return "qemu-system-x86 is not installed (run \(tools.path)/setup-host.sh)"
        }
        if !FileManager.default.fileExists(atPath: work + "/initramfs.cpio.gz") {
            return "no kernel/initramfs in \(work) (run \(tools.path)/setup-host.sh)"
        }
        if !FileManager.default.isExecutableFile(atPath: binary) { return "ovlcfs is not built" }
        return nil
    }

    @Test(
        "ovlcfs mount --verity require maps the disk through dm-verity and requires fs-verity objects; tampering is refused; nothing is left",
        .enabled(if: missing == nil, "\(missing ?? "")"))
    func verityUnderRealKernel() throws {
        let result = try run(TestPaths.packageRoot.appendingPathComponent("scripts/vm-checks.sh").path, [Self.binary])
        let lines = result.stdoutText.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let failures = lines.filter { $0.hasPrefix("not ok") }
        #expect(
            result.status == 0,
            "vm-checks exited \(result.status):\n\(result.stdoutText.suffix(4000))\n\(result.stderrText.suffix(2000))")
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        // All checks ran: a VM that never booted would report no "ok" lines at all.
        #expect(lines.filter { $0.hasPrefix("ok ") }.count == 41, "\(result.stdoutText.suffix(4000))")
    }

    @Test(
        "scripts/vm-bench.sh measures composefs-verity and overlay-disk-lz4 in the VM and brings the report back",
        .enabled(if: missing == nil, "\(missing ?? "")"))
    func verifiedBench() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try run(
            TestPaths.packageRoot.appendingPathComponent("scripts/vm-bench.sh").path,
            [
                Self.binary, "synthetic:1500", "--runs", "1", "--warmups", "0", "--workloads", "ls-lR,read-all",
                "--json", dir.path("r.json"), "--quiet",
            ])
        #expect(result.status == 0, "vm-bench exited \(result.status):\n\(result.stderrText.suffix(3000))")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("r.json")))
                as? [String: Any])
        let results = try #require(object["results"] as? [[String: Any]])
        let arms = Set(results.compactMap { $0["arm"] as? String })
        #expect(arms == ["composefs", "composefs-verity", "overlay-data-only-lz4", "overlay-disk-lz4"])
        #expect((object["skipped"] as? [Any])?.isEmpty == true, "\(object["skipped"] ?? "")")
        // The disk arm read through dm-verity: its cold reads show on a dm device.
        let diskCold = try #require(
            results.first { $0["arm"] as? String == "overlay-disk-lz4" && $0["cache"] as? String == "cold" })
        let bytes = try #require(diskCold["blockReadBytes"] as? [String: [Double]])
        #expect((bytes["dm"]?.first ?? 0) > 0, "no dm reads: \(bytes)")
        #expect(((object["system"] as? [String: Any])?["note"] as? String)?.contains("QEMU") == true)
        #expect(((object["system"] as? [String: Any])?["kernel"] as? String)?.hasPrefix("6.12") == true)
    }
}
