import CCryptsetup
import Foundation

/// dm-verity activation through libcryptsetup (reference 05 §6): the data and hash devices are
/// block devices (loops over a disk's two partitions); the mapped device is `/dev/mapper/NAME`.
/// Needs device-mapper with the verity target, and root.
extension DmVerity {
    /// Maps `data` through dm-verity with the hash tree on `hash` (superblock at offset 0),
    /// trusting `rootHash`. Returns the mapped device path.
    public static func activate(data: String, hash: String, rootHash: [UInt8], name: String) throws -> String {
        var device: OpaquePointer?
        var rc = crypt_init_data_device(&device, hash, data)
        guard rc == 0, let device else { throw failure("open \(hash) and \(data) for dm-verity", rc) }
        defer { crypt_free(device) }
        var params = crypt_params_verity()
        params.hash_area_offset = 0
        rc = crypt_load(device, CRYPT_VERITY, &params)
        guard rc == 0 else { throw failure("read the verity superblock on \(hash)", rc) }
        rc = rootHash.withUnsafeBufferPointer { hashBytes in
            hashBytes.withMemoryRebound(to: CChar.self) {
                crypt_activate_by_volume_key(device, name, $0.baseAddress, $0.count, 1 /* CRYPT_ACTIVATE_READONLY */)
            }
        }
        guard rc >= 0 else { throw failure("activate dm-verity device \(name) (wrong root hash?)", rc) }
        return "/dev/mapper/" + name
    }

    /// Removes the mapping; `deferred` removes it once its last user (the mount) goes away.
    public static func deactivate(name: String, deferred: Bool) throws {
        var device: OpaquePointer?
        var rc = crypt_init_by_name(&device, name)
        guard rc == 0, let device else { throw failure("find dm-verity device \(name)", rc) }
        defer { crypt_free(device) }
        rc = crypt_deactivate_by_name(device, name, deferred ? 1 /* CRYPT_DEACTIVATE_DEFERRED */ : 0)
        guard rc == 0 else { throw failure("remove dm-verity device \(name)", rc) }
    }

    static func failure(_ what: String, _ rc: Int32) -> Error {
        Error(description: "cannot \(what): \(String(cString: strerror(-rc)))")
    }
}
