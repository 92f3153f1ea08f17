import Archive
import Foundation
import ImageModel
import Testing

@testable import OCIImage

/// The OCI image spec's layer rules, applied to a ``LayerTree`` entry by entry.
@Suite("Layer rules")
struct LayerRulesTests {
    func file(_ text: String = "x") -> ImageModel.Inode {
        var inode = ImageModel.Inode(type: .regular, permissions: 0o644, size: UInt64(text.utf8.count))
        inode.data = .inline(Array(text.utf8))
        return inode
    }
    let directory = ImageModel.Inode(type: .directory, permissions: 0o755)

    func path(_ text: String) throws -> [[UInt8]] { try LayerTree.components(Array(text.utf8)) }

    /// The paths in the tree, depth first, sorted.
    func paths(_ tree: LayerTree) throws -> [String] {
        let image = try tree.build()
        return image.depthFirstOrder.dropFirst().map { image.displayPath(of: $0) }
    }

    @Test("an opaque marker hides the lower layers' entries, whatever its position; the same layer's stay")
    func opaque() throws {
        let tree = LayerTree()
        for name in ["a/x", "a/sub/deep", "b/y"] { try tree.put(try path(name), inode: file(), xattrs: [], layer: 0) }
        try tree.put(try path("a/before"), inode: file(), xattrs: [], layer: 1)
        try tree.put(try path("a/sub/new"), inode: file(), xattrs: [], layer: 1)
        try tree.opaque(try path("a")[...], layer: 1, template: directory)
        try tree.put(try path("a/after"), inode: file(), xattrs: [], layer: 1)
        #expect(try paths(tree) == ["/a", "/a/after", "/a/before", "/a/sub", "/a/sub/new", "/b", "/b/y"])
    }

    @Test("a whiteout removes a lower entry (a whole directory), never one its own layer wrote")
    func whiteouts() throws {
        let tree = LayerTree()
        try tree.put(try path("d/f"), inode: file(), xattrs: [], layer: 0)
        try tree.put(try path("g"), inode: file(), xattrs: [], layer: 0)
        try tree.put(try path("same"), inode: file(), xattrs: [], layer: 1)
        tree.whiteout(Array("d".utf8), in: [], layer: 1)
        tree.whiteout(Array("same".utf8), in: [], layer: 1)
        tree.whiteout(Array("absent".utf8), in: [], layer: 1)
        #expect(try paths(tree) == ["/g", "/same"])
    }

    @Test("whiteouts and opaque markers neither create nor count as writing their directory (order does not matter)")
    func whiteoutsDoNotTouch() throws {
        let tree = LayerTree()
        for name in ["d/a", "d/b", "e/sub/g", "e/sub/k"] {
            try tree.put(try path(name), inode: file(), xattrs: [], layer: 0)
        }
        tree.whiteout(Array("a".utf8), in: try path("d")[...], layer: 1)
        tree.whiteout(Array("d".utf8), in: [], layer: 1)
        tree.whiteout(Array("x".utf8), in: try path("nowhere")[...], layer: 1)
        #expect(try paths(tree) == ["/e", "/e/sub", "/e/sub/g", "/e/sub/k"])
        for whiteoutFirst in [true, false] {
            let tree = LayerTree()
            for name in ["e/sub/g", "e/sub/k"] { try tree.put(try path(name), inode: file(), xattrs: [], layer: 0) }
            let whiteout = { tree.whiteout(Array("g".utf8), in: try self.path("e/sub")[...], layer: 1) }
            if whiteoutFirst { try whiteout() }
            try tree.opaque(try path("e")[...], layer: 1, template: directory)
            if !whiteoutFirst { try whiteout() }
            #expect(try paths(tree) == ["/e"], "whiteout first: \(whiteoutFirst)")
        }
    }

    @Test("a path 30,000 deep is refused; a tree 8,000 deep is built, hidden and released without recursion")
    func deep() throws {
        #expect(throws: LayerTree.Refusal.self) { try path(String(repeating: "a/", count: 30000) + "f") }
        let tree = LayerTree()
        try tree.put(try path(String(repeating: "a/", count: 8000) + "f"), inode: file(), xattrs: [], layer: 0)
        tree.whiteout(Array("a".utf8), in: [], layer: 1)
        try tree.put(try path(String(repeating: "b/", count: 8000) + "f"), inode: file(), xattrs: [], layer: 1)
        #expect(try tree.lookup(path(String(repeating: "b/", count: 8000) + "f")) != nil)
        #expect(try tree.lookup(path("a")) == nil)
    }

    @Test(
        "a file replaces a directory and its subtree; a directory replaces a file; a directory over a directory keeps its children"
    )
    func replacements() throws {
        let tree = LayerTree()
        try tree.put(try path("d/child"), inode: file(), xattrs: [], layer: 0)
        try tree.put(try path("f"), inode: file(), xattrs: [], layer: 0)
        try tree.put(try path("k/kept"), inode: file(), xattrs: [], layer: 0)
        try tree.put(try path("d"), inode: file("now a file"), xattrs: [], layer: 1)
        try tree.put(try path("f"), inode: directory, xattrs: [], layer: 1)
        var updated = directory
        updated.permissions = 0o700
        try tree.put(try path("k"), inode: updated, xattrs: [Xattr("user.k", "v")], layer: 1)
        #expect(try paths(tree) == ["/d", "/f", "/k", "/k/kept"])
        let k = try #require(tree.lookup(try path("k")))
        #expect(k.inode.value.permissions == 0o700 && k.inode.xattrs == [Xattr("user.k", "v")])
    }

    @Test("hard links share an inode; the smallest path is primary; a link to nothing or to a directory is refused")
    func hardLinks() throws {
        let tree = LayerTree()
        try tree.put(try path("z/orig"), inode: file("content"), xattrs: [], layer: 0)
        try tree.link(try path("a/link"), to: try path("z/orig"), layer: 0, template: directory)
        let image = try tree.build()
        let link = try #require(image.lookup(path: Array("/a/link".utf8)))
        #expect(image.isPrimary(link))
        #expect(image.nlink(of: image.inodeID(of: link)) == 2)
        #expect(throws: LayerTree.Refusal.self) {
            try tree.link(try path("b"), to: try path("missing"), layer: 0, template: directory)
        }
        #expect(throws: LayerTree.Refusal.self) {
            try tree.link(try path("b"), to: try path("z"), layer: 0, template: directory)
        }
    }

    @Test("paths: ./ and leading / go, '..' is refused, a symlink parent is refused, never followed")
    func paths() throws {
        #expect(try path("./a//b/./c") == [Array("a".utf8), Array("b".utf8), Array("c".utf8)])
        #expect(try path("/abs/x") == [Array("abs".utf8), Array("x".utf8)])
        #expect(try path("./") == [])
        #expect(throws: LayerTree.Refusal.self) { try path("a/../../etc/passwd") }
        let tree = LayerTree()
        var link = ImageModel.Inode(type: .symlink, permissions: 0o777, size: 4)
        link.data = .symlink(Array("/tmp".utf8))
        try tree.put(try path("etc"), inode: link, xattrs: [], layer: 0)
        #expect(throws: LayerTree.Refusal.self) {
            try tree.put(try path("etc/passwd"), inode: file(), xattrs: [], layer: 0)
        }
    }

    @Test("references in skopeo's syntax, and platforms")
    func references() {
        #expect(ImageReference("oci:/srv/img:v1") == .layout(directory: "/srv/img", tag: "v1"))
        #expect(ImageReference("oci:img") == .layout(directory: "img", tag: nil))
        #expect(ImageReference("oci-archive:a.tar") == .layoutArchive(file: "a.tar", tag: nil))
        #expect(
            ImageReference("docker-archive:a.tar:example/app:1")
                == .dockerArchive(file: "a.tar", reference: "example/app:1"))
        #expect(ImageReference("tar:/x/rootfs.tar.zst") == .rootfsTar(file: "/x/rootfs.tar.zst"))
        #expect(ImageReference("/plain/path.dump") == nil)
        #expect(ImageReference("docker://busybox") == nil)
        #expect(Platform("linux/arm64/v8") == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(Platform("linux") == nil)
        #expect(Resolver.sameImageName("docker.io/library/busybox:latest", "busybox"))
        #expect(!Resolver.sameImageName("example/a:1", "example/a:2"))
    }
}
