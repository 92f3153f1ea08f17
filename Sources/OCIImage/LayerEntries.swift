import Archive
import ImageModel
import LinuxSys
import ObjectStore
import Verity

extension LayerImporter {
    static let whiteoutPrefix = Array(".wh.".utf8)
    static let opaqueMarker = Array(".wh..wh..opq".utf8)

    /// Applies one tar entry of `layer` (its data read from `tar`).
    func applyEntry(_ entry: ArchiveEntry, from tar: ArchiveReader, layer: ResolvedImage.Layer, index: Int) throws {
        let shown =
            entry.path.count > 200
            ? String(decoding: entry.path.prefix(200), as: UTF8.self) + "…"
            : String(decoding: entry.path, as: UTF8.self)
        func refuse(_ reason: String) -> ImportError { .entry(layer: layer.name, path: shown, reason: reason) }
        do {
            let components = try LayerTree.components(entry.path)
            let inode = try Self.inode(entry)
            if let name = components.last, name.starts(with: Self.whiteoutPrefix) {
                let parent = components.dropLast()
                if name == Self.opaqueMarker {
                    try tree.opaque(parent, layer: index, template: inode)
                } else if !name.starts(with: Array(".wh..wh.".utf8)) {
                    // .wh..wh.* other than the opaque marker are AUFS bookkeeping: ignored.
                    let hidden = Array(name.dropFirst(Self.whiteoutPrefix.count))
                    guard !hidden.isEmpty, hidden != [0x2E], hidden != [0x2E, 0x2E] else {
                        throw refuse("a whiteout of '\(String(decoding: hidden, as: UTF8.self))'")
                    }
                    tree.whiteout(hidden, in: parent, layer: index)
                }
                return
            }
            switch entry.type {
            case .hardLink:
                guard !components.isEmpty else { throw refuse("a hard link as the root directory") }
                try tree.link(components, to: try LayerTree.components(entry.linkTarget), layer: index, template: inode)
            case .regular:
                guard !components.isEmpty else { throw refuse("a regular file as the root directory") }
                var file = inode
                file.size = UInt64(max(0, entry.size))
                let (data, job) = try content(of: entry, from: tar, name: "\(layer.name): \(shown)")
                file.data = data
                try tree.put(components, inode: file, xattrs: Self.xattrs(entry), layer: index)
                // A file stored by a worker gets its digest once the worker is done.
                if let job, let node = tree.lookup(components) { writes.await(job, for: node.inode) }
            default:
                try tree.put(components, inode: inode, xattrs: Self.xattrs(entry), layer: index)
            }
        } catch let refusal as LayerTree.Refusal {
            throw refuse(refusal.reason)
        } catch let error as ModelError {
            throw refuse("\(error)")
        } catch let error as ArchiveError where error.cause == nil {
            throw refuse("\(error)")
        } catch let error as StoreError {
            throw refuse(error.reason)
        } catch let error as IOError {
            throw refuse("\(error)")
        }
    }

    /// The inode an entry describes (a regular file's data comes later).
    static func inode(_ entry: ArchiveEntry) throws(LayerTree.Refusal) -> ImageModel.Inode {
        // The model's limits, checked as each entry arrives: an image cannot make the import
        // hold more than the model would accept.
        guard UInt64(max(0, entry.size)) <= Limits.maxExternalFileSize else {
            throw LayerTree.Refusal(reason: "size \(entry.size) is larger than \(Limits.maxExternalFileSize)")
        }
        guard entry.linkTarget.count <= Limits.maxPathLength else {
            throw LayerTree.Refusal(reason: "link target of \(entry.linkTarget.count) bytes")
        }
        var budget = 0
        for (key, value) in entry.xattrs {
            guard !key.isEmpty, key.count <= Limits.maxXattrKeyLength, value.count <= Limits.maxXattrValueLength else {
                throw LayerTree.Refusal(
                    reason: "xattr '\(String(decoding: key.prefix(64), as: UTF8.self))': key or value too long")
            }
            budget += Xattr(key: key, value: value).budgetCost
        }
        guard budget <= Limits.maxXattrBudget else {
            throw LayerTree.Refusal(reason: "xattrs of \(budget) bytes, more than \(Limits.maxXattrBudget)")
        }
        guard let uid = UInt32(exactly: entry.uid), let gid = UInt32(exactly: entry.gid) else {
            throw LayerTree.Refusal(reason: "owner \(entry.uid):\(entry.gid) is out of range")
        }
        guard (0..<1_000_000_000).contains(entry.mtimeNanoseconds) else {
            throw LayerTree.Refusal(reason: "mtime nanoseconds \(entry.mtimeNanoseconds) out of range")
        }
        let type: FileType
        var data: FileData = .none
        var size: UInt64 = 0
        var rdev: UInt64 = 0
        switch entry.type {
        case .regular, .hardLink: type = .regular
        case .directory: type = .directory
        case .symlink:
            guard !entry.linkTarget.isEmpty, entry.linkTarget.count <= Limits.maxSymlinkTargetLength else {
                throw LayerTree.Refusal(reason: "a symlink target of \(entry.linkTarget.count) bytes")
            }
            type = .symlink
            data = .symlink(entry.linkTarget)
            size = UInt64(entry.linkTarget.count)
        case .characterDevice, .blockDevice:
            type = entry.type == .characterDevice ? .charDevice : .blockDevice
            rdev = Self.deviceNumber(major: entry.rdevMajor, minor: entry.rdevMinor)
        case .fifo: type = .fifo
        case .socket: type = .socket
        }
        var inode = ImageModel.Inode(
            type: type, permissions: entry.permissions, uid: uid, gid: gid, rdev: rdev, size: size,
            mtime: Timestamp(seconds: entry.mtimeSeconds, nanoseconds: UInt32(entry.mtimeNanoseconds)))
        inode.data = data
        return inode
    }

    /// Linux's `makedev`: the encoding `st_rdev` carries.
    static func deviceNumber(major: UInt32, minor: UInt32) -> UInt64 {
        let major = UInt64(major), minor = UInt64(minor)
        return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32)
    }

    static func xattrs(_ entry: ArchiveEntry) -> [Xattr] { entry.xattrs.map { Xattr(key: $0.key, value: $0.value) } }

    /// A regular file's content: inline when small (as directory ingest), otherwise stored as
    /// an object named by its fs-verity digest (holes stay holes). Files up to
    /// ``ObjectWrites/bufferedLimit`` are read here and hashed and written by a worker (the
    /// job returned; the data is a placeholder until it is done); larger ones are streamed
    /// from the tar straight into the store on this thread.
    func content(of entry: ArchiveEntry, from tar: ArchiveReader, name: String) throws -> (FileData, Int?) {
        guard entry.size > 0 else { return (.inline([]), nil) }
        let size = UInt64(entry.size)
        pendingBytes = pendingBytes.saturatingAdd(size)
        if size <= UInt64(options.inlineThreshold) {
            var bytes = [UInt8](repeating: 0, count: Int(size))
            while let (offset, block) = try tar.readBlock() {
                guard offset >= 0, UInt64(offset) + UInt64(block.count) <= size else {
                    throw LayerTree.Refusal(reason: "its data runs past its size (\(size))")
                }
                bytes.withUnsafeMutableBytes {
                    UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + block.count]).copyMemory(
                        from: block)
                }
            }
            return (.inline(bytes), nil)
        }
        try writes.checkFailure()
        if size <= ObjectWrites.bufferedLimit {
            var segments: [(offset: UInt64, bytes: [UInt8])] = []
            while let (offset, block) = try tar.readBlock() {
                guard offset >= 0 else { throw LayerTree.Refusal(reason: "a data block at offset \(offset)") }
                if let last = segments.last, last.offset + UInt64(last.bytes.count) == UInt64(offset) {
                    segments[segments.count - 1].bytes.append(contentsOf: block)
                } else {
                    segments.append((UInt64(offset), [UInt8](block)))
                }
            }
            let job = writes.submit(segments: segments, size: size, store: store, name: name)
            return (.external(ExternalObject(payload: nil, digest: nil)), job)
        }
        let writer = try ObjectWriter(size: size, store: store, name: name)
        while let (offset, block) = try tar.readBlock() {
            guard offset >= 0 else { throw LayerTree.Refusal(reason: "a data block at offset \(offset)") }
            try writer.write(block, at: UInt64(offset))
        }
        let (digest, added) = try writer.finish()
        writes.count(size: size, added: added, stored: store != nil)
        return (.external(ExternalObject(payload: .object(digest), digest: digest)), nil)
    }
}

extension UInt64 {
    /// The sum, or `.max` where it would overflow (counters for reports).
    func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
