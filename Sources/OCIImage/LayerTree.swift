import ImageModel

/// The root filesystem being assembled from layers, as the OCI image spec's layer rules
/// say ("Applying Changesets"): entries apply in order; `.wh.NAME` removes NAME from the
/// lower layers; `.wh..wh..opq` hides everything the lower layers had in its directory,
/// wherever it stands in its layer; a non-directory replaces whatever was at its path, a
/// directory replaces a non-directory and updates an existing directory's metadata.
///
/// Paths are never looked up on disk: nothing here can reach outside the image, and a
/// parent that is not a directory (a symlink, say) is refused, not followed.
final class LayerTree {
    /// One inode; hard links share it.
    final class Node {
        var inode: Inode
        /// Children of a directory, by name.
        var children: [[UInt8]: Node]
        /// The layer that last wrote this entry itself.
        var written: Int
        /// The last layer that wrote this entry or anything below it.
        var touched: Int
        init(inode: Inode, layer: Int) {
            self.inode = inode
            children = [:]
            written = layer
            touched = layer
        }
        var isDirectory: Bool { inode.value.type == .directory }
    }

    /// Shared by the names of one inode (hard links), so a later change reaches all of them.
    final class Inode {
        var value: ImageModel.Inode
        var xattrs: [Xattr]
        init(_ value: ImageModel.Inode, xattrs: [Xattr] = []) {
            self.value = value
            self.xattrs = xattrs
        }
    }

    let root: Node

    init() {
        root = Node(
            inode: Inode(ImageModel.Inode(type: .directory, permissions: 0o755, mtime: Timestamp(seconds: 0))),
            layer: -1)
    }

    deinit { Self.discard(root) }

    /// Takes a subtree apart one node at a time: releasing a deep tree recursively (a node's
    /// children dictionary releasing nodes, each releasing theirs) would run out of stack.
    static func discard(_ node: Node) {
        var stack = [node]
        while let next = stack.popLast() {
            stack.append(contentsOf: next.children.values)
            next.children = [:]
        }
    }

    /// Replaces (or removes, with nil) the child `name` of `parent`, discarding the old subtree.
    static func replace(_ name: [UInt8], in parent: Node, with node: Node?) {
        if let old = parent.children[name], old !== node { discard(old) }
        parent.children[name] = node
    }

    /// Why an entry cannot apply.
    struct Refusal: Error { var reason: String }

    /// Splits a tar path into components: leading `/` and `./` go, as do empty and `.`
    /// components; `..` is refused (an entry never names anything outside the image).
    static func components(_ path: [UInt8]) throws(Refusal) -> [[UInt8]] {
        guard path.count <= Limits.maxPathLength else {
            throw Refusal(reason: "its path is \(path.count) bytes, longer than \(Limits.maxPathLength)")
        }
        var parts: [[UInt8]] = []
        for part in path.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if part.count == 1 && part.first == 0x2E { continue }
            if part.count == 2 && part.allSatisfy({ $0 == 0x2E }) {
                throw Refusal(reason: "its path has a '..' component")
            }
            do { try ImageBuilder.validate(name: part) } catch { throw Refusal(reason: "\(error)") }
            parts.append(Array(part))
        }
        return parts
    }

    /// The directory at `components`, creating missing ones (as a tar extraction would) and
    /// marking the path touched by `layer`.
    func directory(_ components: ArraySlice<[UInt8]>, layer: Int, template: ImageModel.Inode) throws(Refusal) -> Node {
        var node = root
        node.touched = max(node.touched, layer)
        var walked: [[UInt8]] = []
        for name in components {
            walked.append(name)
            if let child = node.children[name] {
                guard child.isDirectory else {
                    throw Refusal(
                        reason:
                            "its parent \(String(decoding: walked.joined(separator: [0x2F]).map { $0 }, as: UTF8.self)) is a \(child.inode.value.type.jsonName), not a directory"
                    )
                }
                node = child
            } else {
                let inode = ImageModel.Inode(type: .directory, permissions: 0o755, mtime: template.mtime)
                let child = Node(inode: Inode(inode), layer: layer)
                node.children[name] = child
                node = child
            }
            node.touched = max(node.touched, layer)
        }
        return node
    }

    /// Removes what the layers below `layer` put under `node` (its children that `layer`
    /// did not touch; inside those it touched, recursively).
    static func hideLower(in node: Node, below layer: Int) {
        var stack = [node]
        while let directory = stack.popLast() {
            for (name, child) in directory.children {
                if child.touched < layer {
                    replace(name, in: directory, with: nil)
                } else if child.isDirectory {
                    stack.append(child)
                }
            }
        }
    }

    /// Applies a whiteout of `name` in the directory at `parent`. A whiteout is about the layers
    /// below: it neither creates its directory nor counts as this layer writing it.
    func whiteout(_ name: [UInt8], in parent: ArraySlice<[UInt8]>, layer: Int) {
        guard let directory = lookup(Array(parent)), directory.isDirectory, let node = directory.children[name] else {
            return
        }
        if node.touched < layer {
            Self.replace(name, in: directory, with: nil)
        } else if node.isDirectory {
            Self.hideLower(in: node, below: layer)
        }
    }

    /// Applies an opaque marker to the directory at `path` (created if the layers below lack it:
    /// the marker says this layer has it).
    func opaque(_ path: ArraySlice<[UInt8]>, layer: Int, template: ImageModel.Inode) throws(Refusal) {
        if let existing = lookup(Array(path)) {
            guard existing.isDirectory else { return }
            Self.hideLower(in: existing, below: layer)
        } else {
            Self.hideLower(in: try directory(path, layer: layer, template: template), below: layer)
        }
    }

    /// Puts an entry at `components` (non-empty): a directory over a directory updates its
    /// metadata and keeps its children; anything else replaces what was there.
    func put(_ components: [[UInt8]], inode: ImageModel.Inode, xattrs: [Xattr], layer: Int) throws(Refusal) {
        guard let name = components.last else {
            // The root itself ("./"): a directory header updates its metadata.
            guard inode.type == .directory else { throw Refusal(reason: "it would replace the root directory") }
            root.inode = Inode(inode, xattrs: xattrs)
            root.written = layer
            root.touched = max(root.touched, layer)
            return
        }
        let parent = try directory(components.dropLast(), layer: layer, template: inode)
        if inode.type == .directory, let existing = parent.children[name], existing.isDirectory {
            existing.inode = Inode(inode, xattrs: xattrs)
            existing.written = layer
            existing.touched = layer
            return
        }
        Self.replace(name, in: parent, with: Node(inode: Inode(inode, xattrs: xattrs), layer: layer))
    }

    /// Puts a hard link at `components` to the non-directory at `target`.
    func link(_ components: [[UInt8]], to target: [[UInt8]], layer: Int, template: ImageModel.Inode) throws(Refusal) {
        guard let existing = lookup(target) else {
            throw Refusal(
                reason:
                    "it is a hard link to \(String(decoding: target.joined(separator: [0x2F]).map { $0 }, as: UTF8.self)), which is not in the image"
            )
        }
        guard !existing.isDirectory else { throw Refusal(reason: "it is a hard link to a directory") }
        if target == components { return }
        let parent = try directory(components.dropLast(), layer: layer, template: template)
        Self.replace(components.last!, in: parent, with: Node(inode: existing.inode, layer: layer))
    }

    /// The node at `components` (no symlinks followed), or nil.
    func lookup(_ components: [[UInt8]]) -> Node? {
        var node = root
        for name in components {
            guard node.isDirectory, let child = node.children[name] else { return nil }
            node = child
        }
        return node
    }

    /// The model: every directory sorted, hard links sharing an inode whose primary name is
    /// the smallest path in byte order (as directory ingest chooses), link counts counted.
    func build() throws -> Image {
        // Count links first: nlink is part of each inode.
        var links: [ObjectIdentifier: UInt32] = [:]
        var stack: [Node] = [root]
        while let node = stack.popLast() {
            for child in node.children.values {
                if child.isDirectory {
                    stack.append(child)
                } else {
                    links[ObjectIdentifier(child.inode), default: 0] += 1
                }
            }
        }
        var builder = try ImageBuilder(root: root.inode.value)
        builder.setXattrs(root.inode.xattrs, of: InodeID(0))
        var seen: [ObjectIdentifier: (inode: InodeID, path: [UInt8], entry: EntryID)] = [:]
        var pending: [(node: Node, entry: EntryID, path: [UInt8])] = [(root, .root, [])]
        while let (node, entry, path) = pending.popLast() {
            for (name, child) in node.children {
                let childPath = path + [0x2F] + name
                let key = ObjectIdentifier(child.inode)
                if !child.isDirectory, let first = seen[key] {
                    let link = try builder.addHardLink(name: name, in: entry, to: first.inode)
                    if childPath.lexicographicallyPrecedes(first.path) {
                        builder.makePrimary(link)
                        seen[key] = (first.inode, childPath, link)
                    }
                    continue
                }
                var inode = child.inode.value
                inode.xattrs = builder.internXattrs(child.inode.xattrs)
                if !child.isDirectory { inode.nlink = links[key] ?? 1 }
                let added = try builder.add(name: name, in: entry, inode: inode)
                if child.isDirectory {
                    pending.append((child, added, childPath))
                } else {
                    seen[key] = (builder.inodeID(of: added), childPath, added)
                }
            }
        }
        return try builder.build()
    }
}
