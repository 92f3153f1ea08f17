import Archive
import Foundation
import ImageModel
import LinuxSys
import SystemPackage
import Verity

/// An OCI content descriptor (image-spec descriptor.md).
struct Descriptor: Codable {
    var mediaType: String?
    var digest: String
    var size: Int64
    var annotations: [String: String]?
    var platform: PlatformJSON?
}

struct PlatformJSON: Codable {
    var os: String
    var architecture: String
    var variant: String?
}

/// `index.json`, or an image index blob (also Docker's manifest list).
struct IndexJSON: Codable {
    var manifests: [Descriptor]
}

struct ManifestJSON: Codable {
    var mediaType: String?
    var config: Descriptor
    var layers: [Descriptor]
}

struct ConfigJSON: Codable {
    struct RootFS: Codable {
        var type: String
        var diff_ids: [String]
    }
    var os: String?
    var architecture: String?
    var rootfs: RootFS
}

/// One image of `docker save`'s `manifest.json`.
struct DockerArchiveEntry: Codable {
    var Config: String
    var RepoTags: [String]?
    var Layers: [String]
}

/// A `sha256:<64 hex>` digest; any other algorithm or spelling is refused (it also names a
/// blob's path, so nothing but hex may reach one).
struct BlobDigest: Equatable, CustomStringConvertible {
    var bytes: [UInt8]

    init(_ text: String, context: @autoclosure () -> String) throws(ImportError) {
        guard text.hasPrefix("sha256:"), let bytes = Hex.decode(text.dropFirst(7), exactly: 32),
            text.dropFirst(7).allSatisfy({ $0.isNumber || ("a"..."f").contains($0) })
        else {
            throw ImportError.invalid(what: context(), reason: "digest '\(text)' is not sha256:<64 lowercase hex>")
        }
        self.bytes = bytes
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    var hex: String { Hex.encode(bytes) }
    var description: String { "sha256:" + hex }
    /// The blob's path inside an image layout.
    var layoutPath: String { "blobs/sha256/" + hex }
    /// A short form for messages.
    var short: String { "sha256:" + String(hex.prefix(12)) }
}

/// Where an image's blobs are: a layout directory, a tar (of a layout, or `docker save`'s),
/// or one rootfs tarball.
protocol BlobSource: AnyObject {
    /// The blob at `path` (inside the layout or archive), read front to back.
    func open(_ path: String) throws -> any ByteSource
    func contains(_ path: String) -> Bool
}

/// An OCI image layout directory; blobs are opened beneath it, never through a symlink.
final class LayoutDirectory: BlobSource {
    let directory: DirectoryHandle
    init(path: String) throws { directory = try DirectoryHandle(path: path) }

    func open(_ path: String) throws -> any ByteSource {
        let (fd, _) = try directory.openRegularFile(beneath: Array(path.utf8))
        return FileSource(descriptor: fd, path: directory.path + "/" + path)
    }

    /// Whether something is at `path`: only a missing file is absent; anything else (a symlink
    /// on the way, a FIFO) is present, and `open` then says what is wrong with it.
    func contains(_ path: String) -> Bool {
        do {
            let (fd, _) = try directory.openRegularFile(beneath: Array(path.utf8))
            try? fd.close()
            return true
        } catch {
            return error.errno != .noSuchFileOrDirectory
        }
    }
}

/// A tar holding a layout (`oci-archive:`) or `docker save` output. Its member names are read
/// once; each blob is read by a new pass that skips to it (the tar may list blobs in any order).
final class LayoutArchive: BlobSource {
    let path: String
    private(set) var members: Set<String> = []

    init(path: String) throws {
        self.path = path
        let reader = try Self.tarReader(path)
        while let entry = try reader.next() {
            if entry.type == .regular, let name = Self.normalised(entry.path) { members.insert(name) }
        }
    }

    /// A reader of the archive at `path`: a tar, plain or with one compression (no external
    /// decompressor, nothing stacked).
    static func tarReader(_ path: String) throws -> ArchiveReader {
        let file = try openFile(path)
        let head = try file.readPrefix(6)
        return try ArchiveReader(
            format: .tar, source: PrefixedSource(prefix: head, then: file), compression: Compression.detect(head))
    }

    static func openFile(_ path: String) throws -> FileSource {
        let input = try InputFile(path: path)
        guard input.isRegular else { throw ImportError.invalid(what: path, reason: "not a regular file") }
        return FileSource(descriptor: try input.duplicateDescriptor(), path: path)
    }

    /// A member name without `./` and leading `/`; nil if it has `..`.
    static func normalised(_ raw: [UInt8]) -> String? {
        guard let components = try? LayerTree.components(raw) else { return nil }
        return String(decoding: components.joined(separator: [0x2F]).map { $0 }, as: UTF8.self)
    }

    func contains(_ path: String) -> Bool { members.contains(path) }

    func open(_ member: String) throws -> any ByteSource {
        let reader = try Self.tarReader(path)
        while let entry = try reader.next() {
            if entry.type == .regular && Self.normalised(entry.path) == member {
                return EntryDataSource(reader: reader)
            }
        }
        throw ImportError.missing(what: "\(member) in \(path)")
    }
}

/// What an import reads, layer by layer.
struct ResolvedImage {
    struct Layer {
        /// The blob's path in its source.
        var path: String
        /// The blob's digest and size when a descriptor gives them.
        var digest: BlobDigest?
        var size: Int64?
        /// The sha256 of the uncompressed layer, from the config (nil for a plain rootfs tar).
        var diffID: BlobDigest?
        /// "layer 2/5 (sha256:0123456789ab)": how messages name it.
        var name: String
    }
    var layers: [Layer]
    /// The digest of the manifest chosen (nil for docker-archive and tar).
    var manifest: BlobDigest?
    var config: BlobDigest?
}

/// Resolves a reference to its layers, verifying every JSON blob it reads on the way.
struct Resolver {
    let source: any BlobSource
    let platform: Platform?
    static let jsonLimit = 16 << 20
    /// The most layers an image may have (overlayfs stacks at most 500 lower layers; Docker
    /// builds at most 127): bounds the passes over an archive.
    static let maxLayers = 256

    /// Reads a blob named by `descriptor`, checking its size and sha256.
    func verifiedBlob(_ descriptor: Descriptor, what: String) throws -> [UInt8] {
        let digest = try BlobDigest(descriptor.digest, context: what)
        guard source.contains(digest.layoutPath) else {
            throw ImportError.missing(what: "\(what) \(digest) (\(digest.layoutPath))")
        }
        guard descriptor.size >= 0, descriptor.size <= Self.jsonLimit else {
            throw ImportError.invalid(what: "\(what) \(digest)", reason: "size \(descriptor.size) is out of range")
        }
        let bytes = try source.open(digest.layoutPath).readAll(limit: Self.jsonLimit, name: digest.layoutPath)
        guard Int64(bytes.count) == descriptor.size else {
            throw ImportError.verification(
                blob: "\(what) \(digest)", reason: "it has \(bytes.count) bytes, its descriptor says \(descriptor.size)"
            )
        }
        let actual = BlobDigest(bytes: sha256(bytes))
        guard actual == digest else {
            throw ImportError.verification(blob: "\(what) \(digest)", reason: "its content has digest \(actual)")
        }
        return bytes
    }

    func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw ImportError.invalid(what: what, reason: "not the JSON expected: \(error)")
        }
    }

    func layoutImage(tag: String?) throws -> ResolvedImage {
        if source.contains("oci-layout") {
            let layout = try source.open("oci-layout").readAll(limit: 4096, name: "oci-layout")
            struct LayoutJSON: Decodable { var imageLayoutVersion: String }
            let version = try decode(LayoutJSON.self, layout, what: "oci-layout").imageLayoutVersion
            guard version == "1.0.0" else {
                throw ImportError.invalid(what: "oci-layout", reason: "image layout version \(version) (1.0.0 is read)")
            }
        }
        guard source.contains("index.json") else {
            throw ImportError.missing(what: "index.json (not an OCI image layout)")
        }
        let index = try decode(
            IndexJSON.self, try source.open("index.json").readAll(limit: Self.jsonLimit, name: "index.json"),
            what: "index.json")
        let tagged = index.manifests.filter { $0.annotations?["org.opencontainers.image.ref.name"] != nil }
        let chosen: Descriptor
        if let tag {
            let matches = index.manifests.filter { $0.annotations?["org.opencontainers.image.ref.name"] == tag }
            guard matches.count == 1, let match = matches.first else {
                let names = tagged.compactMap { $0.annotations?["org.opencontainers.image.ref.name"] }
                throw ImportError.missing(
                    what:
                        "tag '\(tag)' in index.json\(matches.count > 1 ? " (named \(matches.count) times)" : "") — tags there: \(names.isEmpty ? "none" : names.joined(separator: ", "))"
                )
            }
            chosen = match
        } else {
            guard index.manifests.count == 1, let only = index.manifests.first else {
                let names = tagged.compactMap { $0.annotations?["org.opencontainers.image.ref.name"] }
                throw ImportError.invalid(
                    what: "index.json",
                    reason:
                        "it lists \(index.manifests.count) images; name one with :TAG (tags: \(names.isEmpty ? "none" : names.joined(separator: ", ")))"
                )
            }
            chosen = only
        }
        return try image(from: chosen, depth: 0)
    }

    static let indexTypes: Set<String> = [
        "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    ]

    /// The image a descriptor names: a manifest, or an index to choose a platform from.
    func image(from descriptor: Descriptor, depth: Int) throws -> ResolvedImage {
        let what = Self.indexTypes.contains(descriptor.mediaType ?? "") ? "image index" : "manifest"
        let bytes = try verifiedBlob(descriptor, what: what)
        if what == "image index" {
            guard depth < 4 else { throw ImportError.invalid(what: "image index", reason: "nested more than 4 deep") }
            let index = try decode(IndexJSON.self, bytes, what: "image index \(descriptor.digest)")
            let wanted = platform ?? .linuxAMD64
            let matches = index.manifests.filter { candidate in
                guard let p = candidate.platform else { return false }
                return p.os == wanted.os && p.architecture == wanted.architecture
                    && (wanted.variant == nil || p.variant == wanted.variant)
            }
            guard let match = matches.first else {
                let offered = index.manifests.compactMap(\.platform).map {
                    Platform(os: $0.os, architecture: $0.architecture, variant: $0.variant).description
                }
                throw ImportError.missing(
                    what:
                        "platform \(wanted) in image index \(descriptor.digest) (it has \(offered.joined(separator: ", "))); choose one with --platform"
                )
            }
            return try image(from: match, depth: depth + 1)
        }
        let manifest = try decode(ManifestJSON.self, bytes, what: "manifest \(descriptor.digest)")
        let configBytes = try verifiedBlob(manifest.config, what: "config")
        let config = try decode(ConfigJSON.self, configBytes, what: "config \(manifest.config.digest)")
        guard manifest.layers.count <= Self.maxLayers else {
            throw ImportError.invalid(
                what: "manifest \(descriptor.digest)",
                reason: "\(manifest.layers.count) layers (at most \(Self.maxLayers) are read)")
        }
        guard config.rootfs.diff_ids.count == manifest.layers.count else {
            throw ImportError.invalid(
                what: "config \(manifest.config.digest)",
                reason: "it lists \(config.rootfs.diff_ids.count) diff_ids for \(manifest.layers.count) layers")
        }
        var layers: [ResolvedImage.Layer] = []
        for (index, layer) in manifest.layers.enumerated() {
            let digest = try BlobDigest(layer.digest, context: "layer \(index + 1)")
            let diffID = try BlobDigest(config.rootfs.diff_ids[index], context: "diff_id \(index + 1)")
            guard source.contains(digest.layoutPath) else {
                throw ImportError.missing(what: "layer \(index + 1) blob \(digest) (\(digest.layoutPath))")
            }
            layers.append(
                .init(
                    path: digest.layoutPath, digest: digest, size: layer.size, diffID: diffID,
                    name: "layer \(index + 1)/\(manifest.layers.count) (\(digest.short))"))
        }
        return ResolvedImage(
            layers: layers, manifest: try BlobDigest(descriptor.digest, context: "manifest"),
            config: try BlobDigest(manifest.config.digest, context: "config"))
    }

    /// `docker save` output: `manifest.json` lists images by config and layer paths.
    func dockerArchiveImage(reference: String?) throws -> ResolvedImage {
        guard source.contains("manifest.json") else {
            throw ImportError.missing(what: "manifest.json (not a docker-archive)")
        }
        let entries = try decode(
            [DockerArchiveEntry].self,
            try source.open("manifest.json").readAll(limit: Self.jsonLimit, name: "manifest.json"),
            what: "manifest.json")
        let entry: DockerArchiveEntry
        if let reference {
            let matches = entries.filter { ($0.RepoTags ?? []).contains { Self.sameImageName($0, reference) } }
            guard let match = matches.first else {
                throw ImportError.missing(
                    what:
                        "\(reference) in manifest.json (it has \(entries.flatMap { $0.RepoTags ?? [] }.joined(separator: ", ")))"
                )
            }
            entry = match
        } else {
            guard entries.count == 1, let only = entries.first else {
                throw ImportError.invalid(
                    what: "manifest.json", reason: "it lists \(entries.count) images; name one with :NAME:TAG")
            }
            entry = only
        }
        guard let configPath = LayoutArchive.normalised(Array(entry.Config.utf8)), source.contains(configPath) else {
            throw ImportError.missing(what: "config \(entry.Config)")
        }
        guard entry.Layers.count <= Self.maxLayers else {
            throw ImportError.invalid(
                what: "manifest.json", reason: "\(entry.Layers.count) layers (at most \(Self.maxLayers) are read)")
        }
        let configBytes = try source.open(configPath).readAll(limit: Self.jsonLimit, name: entry.Config)
        // The config's name is its digest: <hex>.json (older) or blobs/sha256/<hex> (newer).
        let configHex =
            configPath.split(separator: "/").last.flatMap { $0.split(separator: ".").first }.map(String.init) ?? ""
        let configDigest = BlobDigest(bytes: sha256(configBytes))
        if Hex.decode(configHex, exactly: 32) != nil && configHex != configDigest.hex {
            throw ImportError.verification(
                blob: "config \(entry.Config)", reason: "its content has digest \(configDigest)")
        }
        let config = try decode(ConfigJSON.self, configBytes, what: "config \(entry.Config)")
        guard config.rootfs.diff_ids.count == entry.Layers.count else {
            throw ImportError.invalid(
                what: "config \(entry.Config)",
                reason: "it lists \(config.rootfs.diff_ids.count) diff_ids for \(entry.Layers.count) layers")
        }
        var layers: [ResolvedImage.Layer] = []
        for (index, path) in entry.Layers.enumerated() {
            guard let normalised = LayoutArchive.normalised(Array(path.utf8)), source.contains(normalised) else {
                throw ImportError.missing(what: "layer \(index + 1) (\(path))")
            }
            let diffID = try BlobDigest(config.rootfs.diff_ids[index], context: "diff_id \(index + 1)")
            // A blob named by its digest is checked against it too.
            let parts = normalised.split(separator: "/")
            let digest: BlobDigest? =
                parts.count == 3 && parts[0] == "blobs" && parts[1] == "sha256"
                ? try BlobDigest("sha256:" + parts[2], context: "layer \(index + 1)") : nil
            layers.append(
                .init(
                    path: normalised, digest: digest, size: nil, diffID: diffID,
                    name: "layer \(index + 1)/\(entry.Layers.count) (\(path))"))
        }
        return ResolvedImage(layers: layers, manifest: nil, config: configDigest)
    }

    /// Whether two image names are the same: `docker.io/library/` is implied, as is `:latest`.
    static func sameImageName(_ a: String, _ b: String) -> Bool {
        func canonical(_ name: String) -> String {
            var name = name
            if !name.contains(":") || name.lastIndex(of: ":")! < (name.lastIndex(of: "/") ?? name.startIndex) {
                name += ":latest"
            }
            for prefix in ["docker.io/library/", "docker.io/", "localhost/"] where name.hasPrefix(prefix) {
                name.removeFirst(prefix.count)
            }
            if name.hasPrefix("library/") { name.removeFirst("library/".count) }
            return name
        }
        return canonical(a) == canonical(b)
    }
}
