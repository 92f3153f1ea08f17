import Cryptsetup
import DiskImage
import Foundation
import LinuxSys
import SystemPackage
import TestSupport
import Testing
import Verity

func patternFile(_ count: Int, in dir: TemporaryDirectory, name: String) -> String {
    let path = dir.path(name)
    FileManager.default.createFile(atPath: path, contents: Data((0..<count).map { UInt8($0 % 251) }))
    return path
}

func sha256(file: String) throws -> String {
    String(try run("/usr/bin/sha256sum", [file]).stdoutText.prefix(64))
}

let vectorSalt = (0..<32).map(UInt8.init)
let vectorUUID = "12345678-1234-5678-1234-567812345678"

@Suite("dm-verity and the GPT disk image")
struct DiskImageTests {
    @Test("CRC-32 known answer")
    func crc() { #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926) }

    @Test(
        "libcryptsetup writes veritysetup's hash files; the userspace tree gives the same root",
        arguments: [
            (
                4096, true, "4ce3ecf32c133bf6321901b6092219474b6ac91a19d0304621d629e6bb9987dc",
                "938708c2271b137019829925028e52b10ab1edc3e742577aa6e2687ae4bbb0fd"
            ),
            (
                32768, false, "681ed6a84f8986bc2b56aec4e0d9e8c2860bd37fc08dd9dfc623235fea289a7c",
                "d26795d0e77cbc8930a1c4ba91d45a3f93982fe411e5c00fd98c7ba8036360a3"
            ),
            (
                1048576, false, "e854e642001d2fe840f32378986ab89dcd574401f61519b97d58bb25b4df6a3c",
                "a2c743658066e0596a17659a92feda5d508bec59fc6777b682d41dc00f59ef9c"
            ),
        ])
    func verityVectors(size: Int, zeros: Bool, root: String, hashFile: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let data = dir.path("data")
        if zeros {
            FileManager.default.createFile(atPath: data, contents: Data(count: size))
        } else {
            _ = patternFile(size, in: dir, name: "data")
        }
        let computed = try VeritySetup.format(
            data: data, hash: dir.path("data.hash"), salt: vectorSalt, uuid: vectorUUID)
        #expect(computed.map { String(format: "%02x", $0) }.joined() == root)
        #expect(try sha256(file: dir.path("data.hash")) == hashFile)
        let userspace = try DmVerity.rootHash(ofFile: data, offset: 0, blocks: UInt64(size / 4096), salt: vectorSalt)
        #expect(userspace == computed)
    }

    @Test("libcryptsetup failures are typed: the operation, the file and the errno, and a hint from them")
    func verityErrors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let error = try #require(throws: VeritySetup.Error.self) {
            try VeritySetup.format(data: dir.path("missing"), hash: dir.path("hash"), salt: vectorSalt)
        }
        guard case .failed(.format, let subject, let errno) = error else {
            Issue.record("expected a failed format, got \(error)")
            return
        }
        #expect(subject == dir.path("missing"))
        #expect(errno != .notPermitted)
        #expect(throws: VeritySetup.Error.saltTooLong(bytes: 257)) {
            try VeritySetup.format(
                data: dir.path("missing"), hash: dir.path("hash"), salt: Array(repeating: 1, count: 257))
        }
        let noMapper = VeritySetup.Error.failed(.activate, subject: "x", errno: .operationNotSupportedByDevice)
        #expect(noMapper.hint?.contains("device-mapper") == true)
        #expect(VeritySetup.Error.failed(.format, subject: "x", errno: .ioError).hint == nil)
    }

    @Test("the GPT image of reference 07 §6, byte for byte")
    func gptVector() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let data = patternFile(32768, in: dir, name: "data")
        let root = try VeritySetup.format(data: data, hash: dir.path("hash"), salt: vectorSalt, uuid: vectorUUID)
        let parts = try GPT.write(
            to: dir.path("disk.raw"), diskGUID: GUID("00000000-0000-4000-8000-000000000001")!,
            partitions: [
                (PartitionType.usr, GUID(bytes: Array(root[0..<16])), "ovlopt_usr", data),
                (PartitionType.usrVerity, GUID(bytes: Array(root[16...])), "ovlopt_usr_verity", dir.path("hash")),
            ])
        #expect(parts.map(\.firstLBA) == [2048, 4096] && parts.map(\.lastLBA) == [2111, 4111])
        #expect(parts[0].uuid.description == "681ed6a8-4f89-86bc-2b56-aec4e0d9e8c2")
        #expect(try FileStatus(path: dir.path("disk.raw")).size == 3_163_136)
        #expect(
            try sha256(file: dir.path("disk.raw")) == "9c3133cdf3afd132348a85d6df81d9dbbc03132345616e453be384a8cedc65e3"
        )
        #expect(try GPT.read(path: dir.path("disk.raw")) == parts)
    }

    @Test(
        "sfdisk accepts a built disk with the DPS types and root-hash UUIDs",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/sfdisk"), "sfdisk is not installed (apt: fdisk)"
        ))
    func sfdiskAccepts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let data = patternFile(1 << 20, in: dir, name: "data")
        let disk = try VerityDisk.build(dataImage: data, destination: dir.path("disk.raw"), salt: vectorSalt)
        let dump = try run("/usr/sbin/sfdisk", ["--dump", dir.path("disk.raw")])
        #expect(dump.status == 0, "\(dump.stderrText)")
        #expect(dump.stdoutText.contains("label: gpt"))
        #expect(
            dump.stdoutText.contains(
                "type=8484680C-9521-48C6-9C11-B0720656F69E, uuid=\(disk.data.uuid.description.uppercased())"))
        #expect(
            dump.stdoutText.contains(
                "type=77FF5F63-E7B6-4633-ACF4-1565B864C0E6, uuid=\(disk.hash.uuid.description.uppercased())"))
        #expect(disk.rootHashHex == "e854e642001d2fe840f32378986ab89dcd574401f61519b97d58bb25b4df6a3c")
        let reopened = try VerityDisk.open(dir.path("disk.raw"))
        #expect(reopened.rootHash == disk.rootHash)
        try reopened.verify()
    }

    @Test("userspace verification finds a single flipped byte anywhere in the data partition")
    func flippedByte() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let data = patternFile(3 << 20, in: dir, name: "data")
        let disk = try VerityDisk.build(dataImage: data, destination: dir.path("disk.raw"))
        try disk.verify()
        var rng = SeededGenerator(seed: 11)
        let positions: [UInt64] =
            [0, 4095, 4096, (3 << 20) - 1] + (0..<6).map { _ in UInt64.random(in: 0..<(3 << 20), using: &rng) }
        for position in positions {
            let handle = try FileHandle(forUpdating: dir.url.appendingPathComponent("disk.raw"))
            try handle.seek(toOffset: disk.data.offset + position)
            let original = try handle.read(upToCount: 1)![0]
            try handle.seek(toOffset: disk.data.offset + position)
            try handle.write(contentsOf: Data([original ^ 0x01]))
            #expect(throws: DiskImageError.self, "flip at \(position) not detected") { try disk.verify() }
            try handle.seek(toOffset: disk.data.offset + position)
            try handle.write(contentsOf: Data([original]))
            try handle.close()
        }
        try disk.verify()
        #expect(throws: DiskImageError.self) { try disk.verify(rootHash: [UInt8](repeating: 7, count: 32)) }
    }
}
