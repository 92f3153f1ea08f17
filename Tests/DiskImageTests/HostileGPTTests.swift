import DiskImage
import Foundation
import LinuxSys
import TestSupport
import Testing

/// GPT disks whose CRCs are valid but whose fields are hostile (issue 12 #6): each must be an
/// error naming the field, never an arithmetic trap or an out-of-range slice.
@Suite("hostile GPT fields")
struct HostileGPTTests {
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
    func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    /// A disk whose primary header and entries are rewritten by `edit` (header, entry array),
    /// with both CRCs recomputed, and whose backup header is destroyed.
    func craft(_ dir: TemporaryDirectory, _ edit: (inout [UInt8], inout [UInt8]) -> Void) throws -> String {
        let source = patternFile(8192, in: dir, name: "part")
        let disk = dir.path("disk.raw")
        let uuid = GUID("12345678-1234-5678-1234-567812345678")!
        _ = try GPT.write(to: disk, diskGUID: uuid, partitions: [(PartitionType.usr, uuid, "p", source)])
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: disk)))
        var header = Array(bytes[512..<604])
        var entries = Array(bytes[1024..<1024 + 128 * 128])
        edit(&header, &entries)
        header.replaceSubrange(88..<92, with: le32(CRC32.checksum(entries)))
        header.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        header.replaceSubrange(16..<20, with: le32(CRC32.checksum(header)))
        bytes.replaceSubrange(512..<604, with: header)
        bytes.replaceSubrange(1024..<1024 + entries.count, with: entries)
        bytes.replaceSubrange(bytes.count - 512..<bytes.count - 504, with: Array("NOT PART".utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: disk))
        return disk
    }

    @Test(
        "hostile fields are errors naming what is wrong",
        arguments: [
            "last before first", "first LBA 2^55", "beyond the end", "count × size overflow", "entries LBA overflow",
            "entries past the end",
        ])
    func hostile(_ name: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let disk = try craft(dir) { header, entries in
            switch name {
            case "last before first":
                entries.replaceSubrange(40..<48, with: le64(5))
            case "first LBA 2^55":
                entries.replaceSubrange(32..<40, with: le64(1 << 55))
                entries.replaceSubrange(40..<48, with: le64(UInt64.max))
            case "beyond the end":
                entries.replaceSubrange(40..<48, with: le64(1 << 40))
            case "count × size overflow":
                header.replaceSubrange(80..<84, with: le32(0xFFFF_FFFF))
                header.replaceSubrange(84..<88, with: le32(0xFFFF_FFFF))
            case "entries LBA overflow":
                header.replaceSubrange(72..<80, with: le64(1 << 62))
            default:
                header.replaceSubrange(72..<80, with: le64(1 << 20))
            }
        }
        #expect(throws: DiskImageError.self) { try GPT.read(path: disk) }
        #expect(throws: (any Error).self) { try VerityDisk.open(disk) }
    }

    @Test("an untouched crafted disk reads (the edits above are what fail)")
    func control() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let disk = try craft(dir) { _, _ in }
        #expect(try GPT.read(path: disk).count == 1)
    }
}
