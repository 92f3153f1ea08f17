/// What a model or image file holds, told from its first bytes: the one place ovlcfs sniffs
/// formats (build, inspect, verify, mount and bench all ask it).
public enum ImageKind: String, Sendable, Codable, CaseIterable {
    /// A composefs dump (plain text, or gzip: the dump reader undoes it), or anything else.
    case dump
    /// A squashfs image (the overlay option).
    case squashfs
    /// A composefs (EROFS) image.
    case composefs
    /// A GPT disk image (squashfs partition + dm-verity hash partition).
    case verityDisk

    /// Bytes of a file's start that ``detect(prefix:)`` needs to see.
    public static let prefixLength = 520

    /// The kind of a file that starts with `prefix` (at least ``prefixLength`` bytes of it, or
    /// the whole file when shorter).
    public static func detect(prefix: [UInt8]) -> ImageKind {
        if prefix.starts(with: [0x68, 0x73, 0x71, 0x73]) { return .squashfs }  // "hsqs"
        if prefix.starts(with: [0x9A, 0x62, 0x78, 0xD0]) { return .composefs }  // LCFS_EROFS_MAGIC
        if prefix.count >= 520, prefix[510] == 0x55, prefix[511] == 0xAA,
            prefix[512..<520].elementsEqual("EFI PART".utf8)
        {
            return .verityDisk  // protective MBR + GPT header at LBA 1
        }
        return .dump
    }
}
