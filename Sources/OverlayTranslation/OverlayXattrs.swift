import ImageModel

/// The overlayfs xattr names and values the translation writes (reference 02 §1, 03).
public enum OverlayXattr {
    public static let prefix = Array("trusted.overlay.".utf8)
    /// `trusted.overlay.` + `overlay.`: an escaped name, shown one level up as `trusted.overlay.`.
    public static let escapedPrefix = Array("trusted.overlay.overlay.".utf8)
    public static let metacopy = Array("trusted.overlay.metacopy".utf8)
    public static let redirect = Array("trusted.overlay.redirect".utf8)
    public static let opaque = Array("trusted.overlay.opaque".utf8)
    public static let escapedWhiteout = Array("trusted.overlay.overlay.whiteout".utf8)
    public static let escapedWhiteouts = Array("trusted.overlay.overlay.whiteouts".utf8)
    public static let escapedOpaque = Array("trusted.overlay.overlay.opaque".utf8)
    public static let userWhiteout = Array("user.overlay.whiteout".utf8)
    public static let userWhiteouts = Array("user.overlay.whiteouts".utf8)
    public static let userOpaque = Array("user.overlay.opaque".utf8)
    public static let selinux = Array("security.selinux".utf8)

    /// `struct ovl_metacopy` (reference 03 §1): version 0, length 36, flags 0, algorithm 1
    /// (SHA-256), then the 32-byte fs-verity digest. No digest: an empty value.
    public static func metacopyValue(digest: Digest?) -> [UInt8] {
        guard let digest else { return [] }
        return digest.bytes(prefix: metacopyHeader)
    }

    /// A stub's metacopy and redirect when its payload is its digest's object path: the
    /// metacopy value above and `/` + the object path, made from the digest.
    public static let stubXattrs = DigestXattrs([
        .init(key: metacopy, prefix: metacopyHeader, encoding: .bytes),
        .init(key: redirect, prefix: [UInt8(ascii: "/")], encoding: .objectPath),
    ])

    /// The digest ``stubXattrs`` are made from for `inode`: a regular file of size > 0 whose
    /// content is the object its digest names. Nil for every other inode.
    @Sendable public static func stubDigest(_ inode: Inode) -> Digest? {
        guard inode.type == .regular, inode.size > 0, case .external(let object) = inode.data,
            let digest = object.digest, object.payload == .object(digest)
        else { return nil }
        return digest
    }

    /// `struct ovl_metacopy`'s header: version 0, length 36, flags 0, algorithm 1 (SHA-256).
    static let metacopyHeader: [UInt8] = [0x00, 0x24, 0x00, 0x01]

    /// The digest in a metacopy value, if it carries a SHA-256 one.
    public static func digest(fromMetacopy value: [UInt8]) -> Digest? {
        guard value.count == 36, value[0] == 0, value[1] == 0x24, value[3] == 1 else { return nil }
        return Digest(bytes: value[4...])
    }

    /// `trusted.overlay.X` → `trusted.overlay.overlay.X`; other names unchanged.
    public static func escape(_ key: [UInt8]) -> [UInt8] {
        key.starts(with: prefix) ? escapedPrefix + key[prefix.count...] : key
    }
}
