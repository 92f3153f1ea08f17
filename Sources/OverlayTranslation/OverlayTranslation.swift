import ImageModel

/// How the objects store is stacked under the image.
public enum OverlayLayout: String, Sendable, CaseIterable, Codable {
    /// Objects as a data-only lower layer (`lowerdir+` image, `datadir+` objects; kernel ≥ 6.5).
    case dataOnly = "data-only"
    /// Objects as an ordinary lower layer, for kernels without data-only layers: the image root
    /// carries a whiteout for each of `00`…`ff` it lacks, so nothing of the store shows through.
    case legacy
}

/// A model the translation refuses.
public struct TranslationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Model → overlay layer, and back. A pure pass (reference 02 §1, 06 §4):
///
/// - every `trusted.overlay.X` xattr of the model becomes `trusted.overlay.overlay.X`, which the
///   mount shows as `trusted.overlay.X` again;
/// - a regular file of size > 0 whose content is an external object keeps its size (the writer
///   stores it as a sparse stub) and gains `trusted.overlay.metacopy` (the fs-verity digest, or
///   an empty value) and `trusted.overlay.redirect` = `/` + payload;
/// - a whiteout (character device 0/0) becomes an escaped xwhiteout: an empty regular file with
///   `trusted.overlay.overlay.whiteout` and `user.overlay.whiteout`; its directory gains
///   `trusted.overlay.overlay.whiteouts`, `user.overlay.whiteouts` and (format ≥ 1) the `x`
///   opaque markers — so the mount shows the model as a composefs mount of it does;
/// - legacy layout: 256 real whiteouts `00`…`ff` in the root.
public enum OverlayTranslation {
    public struct Options: Sendable, Equatable {
        public var layout: OverlayLayout
        /// composefs format version whose whiteout markers to write (1 adds `opaque=x`).
        public var formatVersion: Int
        /// Translate exactly as mkcomposefs 1.0.8 does (reference 09 §5), for byte-identical
        /// composefs images: the root always gets `trusted.overlay.opaque=y` and the 256
        /// whiteouts (the store's private names are not hidden), and whiteout markers replace
        /// whatever the directory had under those names.
        public var composefsCompatible: Bool

        public init(layout: OverlayLayout = .dataOnly, formatVersion: Int = 1, composefsCompatible: Bool = false) {
            self.layout = layout
            self.formatVersion = formatVersion
            self.composefsCompatible = composefsCompatible
        }

        /// What mkcomposefs writes at `formatVersion`.
        public static func composefs(version: Int) -> Options {
            Options(layout: .legacy, formatVersion: version, composefsCompatible: true)
        }
    }

    /// The overlay layer for `image` (`jobs`: threads for the inodes; the layer is the same
    /// for any number).
    public static func translate(_ image: consuming Image, options: Options = Options(), jobs: Int = 1) throws
        -> Image
    {
        // Every writer comes through here: nothing a reader would refuse gets written.
        try image.validate()
        var parents = Set<EntryID>()
        for index in 1..<image.entryCount where image.isWhiteout(EntryID(index)) {
            parents.insert(image.parent(of: EntryID(index)))
        }
        let whiteoutParents = parents
        let paths = image.paths
        // A stub's xattrs name its object: unique, not worth deduplicating.
        let isStub: (Inode) -> Bool = { $0.type == .regular && $0.externalObject != nil && $0.size > 0 }
        // The tree stays as it is (the legacy layout's root whiteouts are added after): only
        // inodes and xattrs change, in place.
        // A stub whose payload is its digest's object path (nearly all) gets its metacopy and
        // redirect as the digest: made when a writer reads them, not stored per file.
        var builder = try ImageBuilder(
            rewriting: consume image, jobs: jobs, isUnique: isStub,
            deriving: Derivation(OverlayXattr.stubXattrs, digest: OverlayXattr.stubDigest)
        ) {
            entry, inode, xattrs in
            if xattrs.contains(where: { $0.key.starts(with: OverlayXattr.prefix) }) {
                xattrs = xattrs.map { Xattr(key: OverlayXattr.escape($0.key), value: $0.value) }
            }
            if let long = xattrs.first(where: { $0.key.count > Limits.maxXattrKeyLength }) {
                throw TranslationError(
                    path: paths.displayPath(of: entry),
                    reason:
                        "xattr \(String(decoding: long.key, as: UTF8.self)) is longer than \(Limits.maxXattrKeyLength) bytes once escaped for overlayfs"
                )
            }
            switch inode.type {
            case .regular:
                guard case .external(let object) = inode.data else { break }
                guard inode.size > 0 else {
                    // composefs keeps no overlay xattrs on empty files: they are plain empty files.
                    inode.data = .inline([])
                    break
                }
                // Escaped above, no key of the model's is the metacopy or redirect key.
                if OverlayXattr.stubDigest(inode) != nil { break }
                xattrs.reserveCapacity(xattrs.count + 2)
                xattrs.append(
                    Xattr(key: OverlayXattr.metacopy, value: OverlayXattr.metacopyValue(digest: object.digest)))
                switch object.payload {
                case .object(let digest):
                    xattrs.append(Xattr(key: OverlayXattr.redirect, value: digest.objectPath(prefix: [0x2F])))
                case .path(let bytes):
                    let redirect = try redirectValue(bytes, path: paths.displayPath(of: entry))
                    xattrs.append(Xattr(key: OverlayXattr.redirect, value: redirect))
                case nil:
                    break
                }
            case .charDevice where inode.isWhiteout:
                inode.type = .regular
                inode.size = 0
                inode.rdev = 0
                inode.data = .inline([])
                setXattr(&xattrs, OverlayXattr.escapedWhiteout, [])
                setXattr(&xattrs, OverlayXattr.userWhiteout, [])
            case .directory where whiteoutParents.contains(entry):
                setXattr(&xattrs, OverlayXattr.escapedWhiteouts, [])
                setXattr(&xattrs, OverlayXattr.userWhiteouts, [])
                // A directory the model marks opaque already hides everything below it; its
                // `y` marker stays (an `x` would replace it).
                if options.formatVersion >= 1
                    && (options.composefsCompatible
                        || !xattrs.contains(where: { $0.key == OverlayXattr.escapedOpaque }))
                {
                    setXattr(&xattrs, OverlayXattr.escapedOpaque, Array("x".utf8))
                    setXattr(&xattrs, OverlayXattr.userOpaque, Array("x".utf8))
                }
            default:
                break
            }
        }
        if options.composefsCompatible {
            let root = builder.inodeID(of: .root)
            var rootXattrs = builder.xattrs(of: root)
            setXattr(&rootXattrs, OverlayXattr.opaque, Array("y".utf8))
            builder.setXattrs(rootXattrs, of: root)
        }
        if options.layout == .legacy {
            try addRootWhiteouts(&builder, hideStoreNames: !options.composefsCompatible)
        }
        return try builder.build()
    }

    /// The model an overlay layer describes: the inverse of ``translate(_:options:)``.
    ///
    /// What cannot be told apart afterwards: a model's own `user.overlay.whiteout(s)` and
    /// `user.overlay.opaque=x` next to one of its whiteouts are dropped with the markers.
    public static func untranslate(_ layer: Image) throws -> Image {
        // Real whiteouts only ever come from the translation (a model's own are escaped).
        var whiteoutDirectories = Set<EntryID>()
        for entry in layer.entryIDs where entry != .root {
            let inode = layer.inode(of: entry)
            if inode.type == .regular, inode.size == 0,
                layer.xattrs(of: inode).contains(where: { $0.key == OverlayXattr.escapedWhiteout })
            {
                whiteoutDirectories.insert(layer.parent(of: entry))
            }
        }
        let builder = try ImageBuilder(copying: layer, keep: { !layer.inode(of: $0).isWhiteout }) {
            entry, inode, xattrs in
            switch inode.type {
            case .regular:
                if let index = xattrs.firstIndex(where: { $0.key == OverlayXattr.escapedWhiteout }), inode.size == 0 {
                    xattrs.remove(at: index)
                    xattrs.removeAll { $0.key == OverlayXattr.userWhiteout }
                    inode.type = .charDevice
                    inode.rdev = 0
                    inode.data = .none
                } else if let metacopy = xattrs.first(where: { $0.key == OverlayXattr.metacopy }) {
                    let redirect = xattrs.first(where: { $0.key == OverlayXattr.redirect })?.value
                    let payload = redirect.map { Payload(Array($0.drop(while: { $0 == UInt8(ascii: "/") }))) }
                    inode.data = .external(
                        ExternalObject(payload: payload, digest: OverlayXattr.digest(fromMetacopy: metacopy.value)))
                }
            case .directory where whiteoutDirectories.contains(entry):
                xattrs.removeAll {
                    $0.key == OverlayXattr.escapedWhiteouts || $0.key == OverlayXattr.userWhiteouts
                        || ($0.key == OverlayXattr.escapedOpaque || $0.key == OverlayXattr.userOpaque)
                            && $0.value == Array("x".utf8)
                }
            default:
                break
            }
            // Unescape one level; drop the overlay's own (unescaped) xattrs.
            xattrs = xattrs.compactMap { xattr in
                if xattr.key.starts(with: OverlayXattr.escapedPrefix) {
                    return Xattr(
                        key: OverlayXattr.prefix + xattr.key[OverlayXattr.escapedPrefix.count...], value: xattr.value)
                }
                return xattr.key.starts(with: OverlayXattr.prefix) ? nil : xattr
            }
        }
        return try builder.build()
    }

    /// `/` + payload, checked against overlayfs's rules for absolute redirects (reference 03 §2).
    static func redirectValue(_ payload: [UInt8], path: String) throws -> [UInt8] {
        if let reason = Payload.problem(with: payload) { throw TranslationError(path: path, reason: reason) }
        return [UInt8(ascii: "/")] + payload
    }

    /// Names an ovlcfs objects store keeps at its root besides the `xx` fan-out directories
    /// (its metadata and staging directory); the legacy layout hides them too.
    public static let storePrivateNames = [".ovlcfs-store.json", ".ovlcfs-tmp"]

    /// Adds a real whiteout for every name `00`…`ff` (and the store's private names) the root
    /// lacks (legacy layout).
    static func addRootWhiteouts(_ builder: inout ImageBuilder, hideStoreNames: Bool) throws {
        let rootID = builder.inodeID(of: .root)
        let root = builder[inode: rootID]
        let selinux = builder.xattrs(of: rootID).filter { $0.key == OverlayXattr.selinux }
        let xattrs = builder.internXattrs(selinux)
        let digits = Array("0123456789abcdef".utf8)
        let names =
            (0..<256).map { [digits[$0 >> 4], digits[$0 & 0xF]] }
            + (hideStoreNames ? storePrivateNames.map { Array($0.utf8) } : [])
        let present = builder.childIndex(of: .root)
        for name in names {
            guard present[name] == nil else { continue }
            try builder.add(
                name: name, in: .root,
                inode: Inode(
                    type: .charDevice, permissions: 0o644, uid: root.uid, gid: root.gid, nlink: 1,
                    rdev: 0, size: 0, mtime: root.mtime, xattrs: xattrs, data: .none))
        }
    }

    private static func setXattr(_ xattrs: inout [Xattr], _ key: [UInt8], _ value: [UInt8]) {
        if let index = xattrs.firstIndex(where: { $0.key == key }) {
            xattrs[index].value = value
        } else {
            xattrs.append(Xattr(key: key, value: value))
        }
    }
}
