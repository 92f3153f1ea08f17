/// Format limits of the image model, each with the reason it exists.
///
/// The values are composefs's (reference `01-composefs-dump.md` §5): a model that passes them
/// can be written as a composefs image, and every limit here is also within what squashfs and
/// the Linux VFS accept.
public enum Limits {
    /// Longest path component. `NAME_MAX` on Linux; composefs answers ENAMETOOLONG above it.
    public static let maxNameLength = 255
    /// Longest absolute path of an entry, in bytes. Deeper trees exist, but a dump line holds a
    /// path (and a hard link's target path) escaped up to four times over, and every line must
    /// fit the dump reader's line limit: so the model, whatever its source, stops here.
    public static let maxPathLength = 16384
    /// Longest symlink target. Targets must be shorter than `PATH_MAX` (4096, NUL included).
    public static let maxSymlinkTargetLength = 4095
    /// Longest object payload path, for the same reason as symlink targets.
    public static let maxPayloadLength = 4095
    /// Longest xattr name (`XATTR_NAME_MAX`); the kernel rejects longer names with ERANGE.
    public static let maxXattrKeyLength = 255
    /// Longest xattr value (`XATTR_SIZE_MAX` is 65536; composefs stores the length in 16 bits).
    public static let maxXattrValueLength = 65535
    /// Per-inode xattr budget: Σ(`xattrEntryOverhead` + key + value) + `xattrHeaderOverhead`
    /// must not exceed this. composefs stores an inode's xattr area size in 16 bits and halves
    /// it (`LCFS_INODE_EXTERNAL_XATTR_MAX` = UINT16_MAX / 2).
    public static let maxXattrBudget = 32767
    /// What readers of images accept for an inode's xattrs as stored: the model's budget plus
    /// room for what the overlay translation adds (escaped keys, metacopy, redirect and
    /// whiteout markers). A bound on the work a crafted image can ask per inode.
    public static let maxStoredXattrBudget = 2 * maxXattrBudget
    /// Bytes an xattr entry costs against `maxXattrBudget` beyond its key and value.
    public static let xattrEntryOverhead = 7
    /// Bytes an inode's xattr header costs against `maxXattrBudget`.
    public static let xattrHeaderOverhead = 12
    /// Largest inline file content composefs accepts (`LCFS_INLINE_CONTENT_MAX`).
    public static let maxInlineContentLength = 5000
    /// Threshold below which `mkcomposefs` inlines file content when it builds from a
    /// directory (`LCFS_RECOMMENDED_INLINE_CONTENT_MAX`): files of 1…64 bytes are inlined.
    public static let recommendedInlineContentLength = 64
    /// Largest external (stub) file: 1024 EROFS chunks of at most 2^43 bytes each.
    public static let maxExternalFileSize: UInt64 = 1 << 53
}
