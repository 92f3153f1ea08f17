import ComposefsDump
import ImageModel
import OverlayTranslation
import SquashfsWriter

// How a model should read back from each image kind: shared by the writers' round-trip tests
// and the writers' fuzz target, which compare what a reader returns with what was written.

/// The model as a squashfs round trip should return it, given what `SquashfsLosses` reported:
/// each reported loss applied, directory sizes (format-defined) and xattr order ignored.
public func expectedAfterRoundTrip(_ image: Image, losses: SquashfsLosses) throws -> Image {
    let builder = try ImageBuilder(copying: image) { _, inode, xattrs in
        if losses.count(.nanosecondMtime) > 0 { inode.mtime.nanoseconds = 0 }
        if losses.count(.mtimeOutOfRange) > 0 {
            inode.mtime.seconds = min(max(inode.mtime.seconds, 0), Int64(UInt32.max))
        }
        if losses.count(.unsupportedXattr) > 0 { xattrs = xattrs.filter { SquashfsLosses.isStorable($0.key) } }
        if losses.count(.specialFileSize) > 0, [.blockDevice, .charDevice, .fifo, .socket].contains(inode.type) {
            inode.size = 0
        }
        if losses.count(.emptyFileObject) > 0, inode.size == 0, inode.externalObject != nil { inode.data = .inline([]) }
    }
    return try builder.build()
}

/// A canonical form for comparing squashfs round trips: directory sizes (format-defined)
/// zeroed, xattrs sorted (filesystems keep their own order), primaries the first path in
/// depth-first order.
public func normalized(_ image: Image) throws -> [UInt8] {
    let builder = try ImageBuilder(copying: image.withFirstPathsPrimary()) { _, inode, xattrs in
        if inode.type == .directory { inode.size = 0 }
        xattrs.sort { $0.key.lexicographicallyPrecedes($1.key) }
    }
    return DumpWriter.render(try builder.build())
}

/// What reading a composefs image back can return of `model` (reference 09 §11.4): directory
/// sizes are EROFS's, device/fifo/socket sizes 0, device numbers 32-bit, empty files carry no
/// object, primaries are the first path in depth-first order, xattrs in the image's order.
public func comparable(_ model: Image) throws -> [UInt8] {
    let builder = try ImageBuilder(copying: model.withFirstPathsPrimary()) { _, inode, xattrs in
        switch inode.type {
        case .directory: inode.size = 0
        case .blockDevice, .charDevice, .fifo, .socket:
            inode.size = 0
            inode.rdev = UInt64(UInt32(truncatingIfNeeded: inode.rdev))
        case .regular where inode.size == 0: inode.data = .inline([])
        default: break
        }
        xattrs.sort { $0.key.lexicographicallyPrecedes($1.key) }
    }
    return DumpWriter.render(try builder.build())
}

/// `image` less what the overlay translation with `options` cannot carry back (see
/// ``OverlayTranslation/untranslate(_:)``): in a directory that holds a whiteout, the model's
/// own whiteout markers, and its opaque markers where the translation's `x` markers replace
/// them (format 1: always for composefs, else when the model has no `trusted.overlay.opaque`)
/// or where they read `x` themselves.
public func expectedAfterUntranslate(_ image: Image, options: OverlayTranslation.Options) throws -> Image {
    var whiteoutParents = Set<EntryID>()
    for entry in image.entryIDs where entry != .root && image.inode(of: entry).isWhiteout {
        whiteoutParents.insert(image.parent(of: entry))
    }
    // The model's own keys (the translation escapes them below its markers).
    let whiteouts = OverlayXattr.prefix + Array("whiteouts".utf8)
    let builder = try ImageBuilder(copying: image) { entry, _, xattrs in
        guard whiteoutParents.contains(entry) else { return }
        let replaced =
            options.formatVersion >= 1
            && (options.composefsCompatible || !xattrs.contains { $0.key == OverlayXattr.opaque })
        xattrs.removeAll { xattr in
            if xattr.key == whiteouts || xattr.key == OverlayXattr.userWhiteouts { return true }
            if xattr.key == OverlayXattr.opaque || xattr.key == OverlayXattr.userOpaque {
                return replaced || xattr.value == Array("x".utf8)
            }
            return false
        }
    }
    return try builder.build()
}
