import Foundation
import ImageModel
import LinuxSys
import SystemPackage

// A GPT disk with 512-byte LBAs (reference 07 §5):
//
//   LBA 0            protective MBR
//   LBA 1            primary GPT header (92 bytes + zeros)
//   LBA 2…33         primary entry array (128 entries × 128 bytes)
//   LBA 2048…        partitions, each starting on a 2048-LBA (1 MiB) boundary
//   total−33…total−2 backup entry array
//   total−1          backup GPT header
//
// The image ends 34 LBAs after the first 2048-LBA boundary past the last partition.

/// A GUID in its textual byte order (`681ed6a8-4f89-…` → 68 1e d6 a8 4f 89 …).
public struct GUID: Hashable, Sendable, CustomStringConvertible, Codable {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a GUID has 16 bytes")
        self.bytes = bytes
    }

    public init?(_ text: String) {
        guard text.count == 36, let bytes = Hex.decode(text.replacingOccurrences(of: "-", with: "")), bytes.count == 16
        else { return nil }
        self.bytes = bytes
    }

    public var description: String {
        let hex = Hex.encode(bytes)
        let c = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(c[$0]) }.joined(separator: "-")
    }

    /// GPT's on-disk form: the first three fields little-endian, the last eight bytes as is.
    public var mixedEndian: [UInt8] {
        [bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4], bytes[7], bytes[6]] + bytes[8...]
    }

    init(mixedEndian b: ArraySlice<UInt8>) {
        let b = Array(b)
        bytes = [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]] + b[8...]
    }

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
}

/// Discoverable Partitions Specification type GUIDs (x86-64).
public enum PartitionType {
    public static let usr = GUID("8484680c-9521-48c6-9c11-b0720656f69e")!
    public static let usrVerity = GUID("77ff5f63-e7b6-4633-acf4-1565b864c0e6")!
    public static let root = GUID("4f68bce3-e8cd-4db1-96e7-fbcaf984b709")!
    public static let rootVerity = GUID("2c7357ed-ebd2-46d9-aec1-23d437ec2bf5")!

    public static func name(_ type: GUID) -> String {
        switch type {
        case usr: "usr (x86-64)"
        case usrVerity: "usr-verity (x86-64)"
        case root: "root (x86-64)"
        case rootVerity: "root-verity (x86-64)"
        default: type.description
        }
    }
}

/// One GPT partition entry.
public struct Partition: Sendable, Equatable, Codable {
    public var type: GUID
    public var uuid: GUID
    public var firstLBA: UInt64
    /// Inclusive.
    public var lastLBA: UInt64
    public var attributes: UInt64
    public var name: String

    public var offset: UInt64 { firstLBA * 512 }
    public var size: UInt64 { (lastLBA - firstLBA + 1) * 512 }

    /// Read-only (bit 60), as the specification recommends for verity partitions.
    public static let readOnly: UInt64 = 1 << 60
}

public struct DiskImageError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum GPT {
    static let lba: UInt64 = 512
    static let alignment: UInt64 = 2048

    /// Lays out partitions of the given byte sizes: returns their LBA ranges and the total size in LBAs.
    public static func layout(sizes: [UInt64]) -> (ranges: [(UInt64, UInt64)], totalLBAs: UInt64) {
        var next = alignment
        var ranges: [(UInt64, UInt64)] = []
        for size in sizes {
            let sectors = max(1, (size + lba - 1) / lba)
            ranges.append((next, next + sectors - 1))
            next = (next + sectors + alignment - 1) / alignment * alignment
        }
        return (ranges, next + 34)
    }

    /// Writes a disk image: the partitions' contents come from files. Written to a temporary
    /// file and renamed into place.
    public static func write(
        to destination: String, diskGUID: GUID, partitions: [(type: GUID, uuid: GUID, name: String, source: String)]
    ) throws -> [Partition] {
        let sizes = try partitions.map { try FileStatus(following: $0.source).size }
        let (ranges, total) = layout(sizes: sizes)
        var entries: [Partition] = []
        for (index, part) in partitions.enumerated() {
            entries.append(
                Partition(
                    type: part.type, uuid: part.uuid, firstLBA: ranges[index].0, lastLBA: ranges[index].1,
                    attributes: Partition.readOnly, name: part.name))
        }
        let entryArray = encodeEntries(entries)
        let temporary = try TemporarySibling(destination: destination)
        let fd = try FileDescriptor.open(
            temporary.path, .writeOnly, options: [.create, .truncate, .closeOnExec],
            permissions: [.ownerReadWrite, .groupRead, .otherRead])
        do {
            try FileIO.truncate(fd, to: total * lba, path: temporary.path)
            try FileIO.write(fd, at: 0, protectiveMBR(totalLBAs: total), count: 512, path: temporary.path)
            let primary = header(
                myLBA: 1, alternateLBA: total - 1, entriesLBA: 2, totalLBAs: total, diskGUID: diskGUID,
                entries: entryArray)
            let backup = header(
                myLBA: total - 1, alternateLBA: 1, entriesLBA: total - 33, totalLBAs: total, diskGUID: diskGUID,
                entries: entryArray)
            try FileIO.write(fd, at: lba, primary, count: primary.count, path: temporary.path)
            try FileIO.write(fd, at: 2 * lba, entryArray, count: entryArray.count, path: temporary.path)
            try FileIO.write(fd, at: (total - 33) * lba, entryArray, count: entryArray.count, path: temporary.path)
            try FileIO.write(fd, at: (total - 1) * lba, backup, count: backup.count, path: temporary.path)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            for (index, part) in partitions.enumerated() {
                let source = try FileDescriptor.open(part.source, .readOnly, options: [.closeOnExec])
                defer { try? source.close() }
                var offset: UInt64 = 0
                while true {
                    let count = try FileIO.read(source, into: &buffer, path: part.source)
                    if count == 0 { break }
                    try FileIO.write(fd, at: entries[index].offset + offset, buffer, count: count, path: temporary.path)
                    offset += UInt64(count)
                }
            }
            try FileIO.sync(fd, path: temporary.path)
            try fd.close()
        } catch {
            try? fd.close()
            throw error
        }
        try temporary.commit()
        return entries
    }

    static func protectiveMBR(totalLBAs: UInt64) -> [UInt8] {
        var mbr = [UInt8](repeating: 0, count: 512)
        let record: [UInt8] =
            [0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF] + le32(1) + le32(UInt32(min(totalLBAs - 1, 0xFFFF_FFFF)))
        mbr.replaceSubrange(446..<462, with: record)
        mbr[510] = 0x55
        mbr[511] = 0xAA
        return mbr
    }

    static func header(
        myLBA: UInt64, alternateLBA: UInt64, entriesLBA: UInt64, totalLBAs: UInt64, diskGUID: GUID, entries: [UInt8]
    ) -> [UInt8] {
        var h: [UInt8] = Array("EFI PART".utf8) + le32(0x0001_0000) + le32(92) + le32(0) + le32(0)
        h += le64(myLBA) + le64(alternateLBA) + le64(34) + le64(totalLBAs - 34) + diskGUID.mixedEndian
        h += le64(entriesLBA) + le32(128) + le32(128) + le32(CRC32.checksum(entries))
        let crc = CRC32.checksum(h)
        h.replaceSubrange(16..<20, with: le32(crc))
        return h + [UInt8](repeating: 0, count: 512 - h.count)
    }

    static func encodeEntries(_ partitions: [Partition]) -> [UInt8] {
        var array = [UInt8](repeating: 0, count: 128 * 128)
        for (index, p) in partitions.enumerated() {
            var name = [UInt8](repeating: 0, count: 72)
            for (i, unit) in p.name.utf16.prefix(36).enumerated() {
                name[2 * i] = UInt8(truncatingIfNeeded: unit)
                name[2 * i + 1] = UInt8(truncatingIfNeeded: unit >> 8)
            }
            let entry =
                p.type.mixedEndian + p.uuid.mixedEndian + le64(p.firstLBA) + le64(p.lastLBA) + le64(p.attributes) + name
            array.replaceSubrange(index * 128..<(index + 1) * 128, with: entry)
        }
        return array
    }

    /// Reads and validates the GPT of a disk image (primary header, falling back to the backup).
    public static func read(path: String) throws -> [Partition] {
        let fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking])
        defer { try? fd.close() }
        let status = try FileStatus(fd: fd)
        guard status.isRegular else { throw DiskImageError("\(path): not a regular file") }
        return try read(fd: fd, size: status.size, name: path)
    }

    /// Reads and validates the GPT in the first `size` bytes of `fd`.
    ///
    /// Every on-disk number is checked before use — LBAs and counts whose products overflow,
    /// entry arrays past the end, partitions that end before they start or beyond the image —
    /// and each is refused with the field's name; nothing traps, and nothing is read whole.
    public static func read(fd: FileDescriptor, size: UInt64, name path: String) throws -> [Partition] {
        guard size >= 68 * lba else { throw DiskImageError("\(path): too small for a GPT disk (\(size) bytes)") }
        var failures: [String] = []
        for headerLBA in [UInt64(1), size / lba - 1] {
            var buffer = [UInt8](repeating: 0, count: 512)
            _ = try FileIO.read(fd, at: headerLBA * lba, into: &buffer, count: 512, path: path)
            do {
                return try parse(header: buffer, fd: fd, imageSize: size, path: path, expectedLBA: headerLBA)
            } catch {
                failures.append("\(error)")
            }
        }
        throw DiskImageError("\(path): no valid GPT (\(failures.joined(separator: "; ")))")
    }

    /// `a * b`, or an error naming `field` when it overflows.
    static func product(_ a: UInt64, _ b: UInt64, _ field: String) throws -> UInt64 {
        let (value, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw DiskImageError("\(field) \(a) × \(b) overflows 64 bits") }
        return value
    }

    static func parse(header h: [UInt8], fd: FileDescriptor, imageSize: UInt64, path: String, expectedLBA: UInt64)
        throws -> [Partition]
    {
        guard Array(h[0..<8]) == Array("EFI PART".utf8) else {
            throw DiskImageError("no GPT signature at LBA \(expectedLBA)")
        }
        let headerSize = Int(u32(h, 12))
        guard headerSize >= 92, headerSize <= 512 else { throw DiskImageError("GPT header size \(headerSize)") }
        var zeroed = Array(h[0..<headerSize])
        zeroed.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        guard CRC32.checksum(zeroed) == u32(h, 16) else {
            throw DiskImageError("GPT header CRC mismatch at LBA \(expectedLBA)")
        }
        guard u64(h, 24) == expectedLBA else {
            throw DiskImageError("GPT header at LBA \(expectedLBA) says it is at \(u64(h, 24))")
        }
        let entriesLBA = u64(h, 72), count = UInt64(u32(h, 80)), entrySize = UInt64(u32(h, 84))
        guard entrySize >= 128, entrySize <= 4096, entrySize % 8 == 0, count > 0, count <= 4096,
            count * entrySize <= 1 << 20
        else {
            throw DiskImageError(
                "GPT entry array of \(count) × \(entrySize) bytes (entries of 128…4096 bytes, at most 1 MiB)")
        }
        let arrayOffset = try product(entriesLBA, lba, "GPT entry array LBA")
        guard arrayOffset <= imageSize, count * entrySize <= imageSize - arrayOffset else {
            throw DiskImageError(
                "GPT entry array at LBA \(entriesLBA) lies beyond the end of the \(imageSize)-byte image")
        }
        var array = [UInt8](repeating: 0, count: Int(count * entrySize))
        let read = try FileIO.read(fd, at: arrayOffset, into: &array, count: array.count, path: path)
        guard read == array.count, CRC32.checksum(array) == u32(h, 88) else {
            throw DiskImageError("GPT entry array CRC mismatch")
        }
        var partitions: [Partition] = []
        for i in 0..<Int(count) {
            let start = i * Int(entrySize)
            let e = Array(array[start..<start + 128])
            let type = GUID(mixedEndian: e[0..<16])
            if type.isZero { continue }
            var units: [UInt16] = []
            for j in stride(from: 56, to: 128, by: 2) {
                let unit = UInt16(e[j]) | UInt16(e[j + 1]) << 8
                if unit == 0 { break }
                units.append(unit)
            }
            let first = u64(e, 32), last = u64(e, 40)
            guard first <= last else {
                throw DiskImageError("GPT partition \(i + 1): last LBA \(last) is before its first LBA \(first)")
            }
            let end = try product(last, lba, "GPT partition \(i + 1) last LBA")
            guard end < imageSize, imageSize - end >= lba else {
                throw DiskImageError(
                    "GPT partition \(i + 1) (LBA \(first)…\(last)) lies beyond the end of the \(imageSize)-byte image")
            }
            partitions.append(
                Partition(
                    type: type, uuid: GUID(mixedEndian: e[16..<32]), firstLBA: first, lastLBA: last,
                    attributes: u64(e, 48), name: String(decoding: units, as: UTF16.self)))
        }
        return partitions
    }
}

func le32(_ v: UInt32) -> [UInt8] { LittleEndian.bytes(v) }
func le64(_ v: UInt64) -> [UInt8] { LittleEndian.bytes(v) }
/// A field of a fixed-size header (the caller's buffer holds it: reading past it is a bug).
func u32(_ b: [UInt8], _ at: Int) -> UInt32 { LittleEndian.read(UInt32.self, from: b, at: at)! }
func u64(_ b: [UInt8], _ at: Int) -> UInt64 { LittleEndian.read(UInt64.self, from: b, at: at)! }

/// CRC-32 (IEEE 802.3, reflected, as zlib): `checksum("123456789") == 0xCBF43926`.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
