import CCryptsetup
import Foundation
import SystemPackage

/// libcryptsetup, the one module that calls it: writing a dm-verity hash tree in veritysetup's
/// format 1 (SHA-256, 4096-byte data and hash blocks, a 512-byte superblock at the start of the
/// hash area) — which libcryptsetup does for plain files, without device-mapper — and
/// activating and removing dm-verity mappings, which need the kernel's device-mapper.
public enum VeritySetup {
    public static let blockSize = 4096

    /// What failed, on which file or device, and the errno libcryptsetup returned.
    public enum Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        case saltTooLong(bytes: Int)
        case failed(Operation, subject: String, errno: Errno)

        public enum Operation: String, Sendable {
            case open = "open"
            case format = "write the dm-verity hash tree of"
            case rootHash = "get the root hash of"
            case load = "read the verity superblock on"
            case activate = "activate dm-verity device"
            case find = "find dm-verity device"
            case remove = "remove dm-verity device"
        }

        /// What the errno means for that operation, if anything more than its text (the mount
        /// driver shows it as its hint).
        public var hint: String? {
            guard case .failed(let operation, _, let errno) = self else { return nil }
            switch (operation, errno) {
            case (_, .notPermitted), (_, .permissionDenied): return "dm-verity needs root (CAP_SYS_ADMIN)"
            case (.activate, .noSuchFileOrDirectory), (.activate, .operationNotSupportedByDevice):
                return "the kernel has no device-mapper or no dm-verity target (modprobe dm_verity)"
            case (.activate, .invalidArgument):
                return "the root hash is not this hash tree's, or the hash device is not a verity superblock"
            case (.remove, .resourceBusy): return "still in use (mounted?); a deferred removal waits for the last user"
            default: return nil
            }
        }

        public var description: String {
            switch self {
            case .saltTooLong(let bytes): return "dm-verity salt of \(bytes) bytes is longer than 256"
            case .failed(let operation, let subject, let errno):
                return "libcryptsetup cannot \(operation.rawValue) \(subject): \(errno)"
            }
        }
    }

    /// Writes the hash tree of `data` (size a multiple of 4096) to `hash` (created) and returns
    /// the root hash.
    public static func format(data: String, hash: String, salt: [UInt8], uuid: String? = nil) throws -> [UInt8] {
        guard salt.count <= 256 else {
            throw Error.saltTooLong(bytes: salt.count)
        }
        FileManager.default.createFile(atPath: hash, contents: nil)
        var device: OpaquePointer?
        var rc = crypt_init(&device, hash)
        guard rc == 0, let device else {
            throw failure(.open, hash, rc)
        }
        defer { crypt_free(device) }
        let root: [UInt8] = try data.withCString { dataPath in
            try salt.withUnsafeBufferPointer { saltBytes in
                try saltBytes.withMemoryRebound(to: CChar.self) { saltChars in
                    var params = crypt_params_verity()
                    let name = strdup("sha256")
                    defer { free(name) }
                    params.hash_name = UnsafePointer(name)
                    params.data_device = dataPath
                    params.salt = saltChars.baseAddress
                    params.salt_size = UInt32(salt.count)
                    params.hash_type = 1
                    params.data_block_size = UInt32(blockSize)
                    params.hash_block_size = UInt32(blockSize)
                    params.flags = 1 << 2  // CRYPT_VERITY_CREATE_HASH
                    rc = crypt_format(device, CRYPT_VERITY, nil, nil, uuid, nil, 0, &params)
                    guard rc == 0 else {
                        throw failure(.format, data, rc)
                    }
                    var key = [CChar](repeating: 0, count: 64)
                    var length = 64
                    rc = crypt_volume_key_get(device, CRYPT_ANY_SLOT, &key, &length, nil, 0)
                    guard rc >= 0 else {
                        throw failure(.rootHash, data, rc)
                    }
                    return key[0..<length].map { UInt8(bitPattern: $0) }
                }
            }
        }
        return root
    }

    /// Maps `data` through dm-verity with the hash tree on `hash` (superblock at offset 0),
    /// trusting `rootHash`. Returns the mapped device path.
    public static func activate(data: String, hash: String, rootHash: [UInt8], name: String) throws -> String {
        var device: OpaquePointer?
        var rc = crypt_init_data_device(&device, hash, data)
        guard rc == 0, let device else { throw failure(.open, "\(hash) and \(data)", rc) }
        defer { crypt_free(device) }
        var params = crypt_params_verity()
        params.hash_area_offset = 0
        rc = crypt_load(device, CRYPT_VERITY, &params)
        guard rc == 0 else { throw failure(.load, hash, rc) }
        rc = rootHash.withUnsafeBufferPointer { hashBytes in
            hashBytes.withMemoryRebound(to: CChar.self) {
                crypt_activate_by_volume_key(device, name, $0.baseAddress, $0.count, 1 /* CRYPT_ACTIVATE_READONLY */)
            }
        }
        guard rc >= 0 else { throw failure(.activate, name, rc) }
        return "/dev/mapper/" + name
    }

    /// Removes the mapping; `deferred` removes it once its last user (the mount) goes away.
    public static func deactivate(name: String, deferred: Bool) throws {
        var device: OpaquePointer?
        var rc = crypt_init_by_name(&device, name)
        guard rc == 0, let device else { throw failure(.find, name, rc) }
        defer { crypt_free(device) }
        rc = crypt_deactivate_by_name(device, name, deferred ? 1 /* CRYPT_DEACTIVATE_DEFERRED */ : 0)
        guard rc == 0 else { throw failure(.remove, name, rc) }
    }

    /// libcryptsetup returns -errno.
    static func failure(_ operation: Error.Operation, _ subject: String, _ rc: Int32) -> Error {
        .failed(operation, subject: subject, errno: Errno(rawValue: rc < 0 ? -rc : rc))
    }
}
