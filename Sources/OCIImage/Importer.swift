import Archive
import Foundation
import ImageModel
import LinuxSys
import ObjectStore
import Verity

/// How to import an image.
public struct ImportOptions: Sendable {
    /// `.copy` stores file contents; `.none` computes digests only (`.hardlink` cannot apply:
    /// the contents exist only in the layer streams).
    public var storeMode: StoreMode
    /// Non-empty files of at most this many bytes become inline content (as directory ingest).
    public var inlineThreshold: Int
    /// The platform to choose from a multi-platform index (default linux/amd64).
    public var platform: Platform?
    /// Threads that hash and write objects besides the two reading the layer.
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Called now and then with progress (from the importing thread).
    public var progress: (@Sendable (ImportProgress) -> Void)?

    public init(
        storeMode: StoreMode = .copy, inlineThreshold: Int = Limits.recommendedInlineContentLength,
        platform: Platform? = nil
    ) {
        self.storeMode = storeMode
        self.inlineThreshold = inlineThreshold
        self.platform = platform
    }
}

public struct ImportProgress: Sendable {
    public var layer: Int
    public var layers: Int
    /// Uncompressed layer bytes read so far, all layers.
    public var bytes: UInt64
    public var files: Int
    public var seconds: Double
}

public struct ImportResult: Sendable {
    public var image: Image
    public var layers: Int
    /// Regular files whose content went to the store (or was hashed, `--store-mode none`).
    public var filesStored: Int
    public var bytesStored: UInt64
    /// Uncompressed layer bytes read.
    public var layerBytes: UInt64
    public var objectsAdded: Int
    public var objectsPresent: Int
    /// The manifest and config chosen (`sha256:…`), where the image has them.
    public var manifest: String?
    public var config: String?
}

/// Reads an OCI image (or a docker-archive, or a rootfs tarball) into a model, layer by layer,
/// streaming file contents into the objects store.
///
/// Each layer is read by two threads: one reads the blob, hashes it (its digest), decompresses
/// it and hashes the result (its diff_id); the other parses the tar, applies the entries
/// (``LayerTree``) and writes contents into the store while computing their fs-verity digests.
/// A blob or diff_id that does not match refuses the whole import; the objects already stored
/// are content-addressed and harmless (and contents a later layer hides are stored too).
public enum OCIImport {
    public static func importImage(
        _ reference: ImageReference, store: ObjectStore?, options: ImportOptions = ImportOptions()
    ) throws -> ImportResult {
        if options.storeMode == .hardlink {
            throw ImportError.invalid(
                what: "\(reference)",
                reason: "--store-mode hardlink needs files on disk; an image's contents are streamed (use copy or none)"
            )
        }
        if options.storeMode != .none && store == nil {
            throw ImportError.invalid(
                what: "\(reference)", reason: "--store-mode copy needs an objects store (--objects)")
        }
        let source: any BlobSource
        let resolved: ResolvedImage
        switch reference {
        case .layout(let directory, let tag):
            source = try LayoutDirectory(path: directory)
            resolved = try Resolver(source: source, platform: options.platform).layoutImage(tag: tag)
        case .layoutArchive(let file, let tag):
            source = try LayoutArchive(path: file)
            resolved = try Resolver(source: source, platform: options.platform).layoutImage(tag: tag)
        case .dockerArchive(let file, let name):
            source = try LayoutArchive(path: file)
            resolved = try Resolver(source: source, platform: options.platform).dockerArchiveImage(reference: name)
        case .rootfsTar(let file):
            source = SingleFile(path: file)
            resolved = ResolvedImage(
                layers: [.init(path: file, digest: nil, size: nil, diffID: nil, name: "tar:\(file)")], manifest: nil,
                config: nil)
        }
        let importer = LayerImporter(
            store: options.storeMode == .none ? nil : store, options: options, layers: resolved.layers.count)
        for (index, layer) in resolved.layers.enumerated() {
            try importer.apply(layer, index: index, from: source)
        }
        try importer.writes.finish()
        let image: Image
        do {
            image = try importer.tree.build()
            try image.validate()
        } catch {
            throw ImportError.invalid(what: "\(reference)", reason: "\(error)")
        }
        return ImportResult(
            image: image, layers: resolved.layers.count, filesStored: importer.writes.filesStored,
            bytesStored: importer.writes.bytesStored, layerBytes: importer.layerBytes,
            objectsAdded: importer.writes.objectsAdded, objectsPresent: importer.writes.objectsPresent,
            manifest: resolved.manifest?.description,
            config: resolved.config?.description)
    }
}

/// A rootfs tarball: the one "blob" is the file itself.
final class SingleFile: BlobSource {
    let path: String
    init(path: String) { self.path = path }
    func open(_ path: String) throws -> any ByteSource { try LayoutArchive.openFile(path) }
    func contains(_ path: String) -> Bool { path == self.path }
}

/// What the reading thread of a layer leaves for the applying one.
final class BlobReading: @unchecked Sendable {
    /// The blob; only the reading thread touches it once it has started.
    let blob: any ByteSource
    init(blob: any ByteSource) { self.blob = blob }
    let blobHash = SHA256Stream()
    let diffHash = SHA256Stream()
    var error: (any Error)?
    let done = DispatchSemaphore(value: 0)
}

/// Applies layers to a ``LayerTree``, one after the other.
final class LayerImporter {
    let tree = LayerTree()
    let store: ObjectStore?
    let options: ImportOptions
    let layers: Int
    let writes: ObjectWrites
    var layerBytes: UInt64 = 0
    let started = ContinuousClock.now
    var lastProgress = ContinuousClock.now
    var currentLayer = 0

    init(store: ObjectStore?, options: ImportOptions, layers: Int) {
        self.store = store
        self.options = options
        self.layers = layers
        writes = ObjectWrites(workers: options.workers)
    }

    deinit { writes.abandon() }

    func apply(_ layer: ResolvedImage.Layer, index: Int, from source: any BlobSource) throws {
        currentLayer = index + 1
        pendingBytes = 0
        let channel = ChunkChannel()
        let reading = BlobReading(blob: try source.open(layer.path))
        let thread = Thread { Self.read(into: channel, reading: reading) }
        thread.start()
        do {
            let tar = try ArchiveReader(format: .tar, source: channel)
            while let entry = try tar.next() {
                try applyEntry(entry, from: tar, layer: layer, index: index)
                report(force: false)
            }
            try channel.drain()
        } catch {
            channel.cancel()
            reading.done.wait()
            throw Self.layerError(error, reading: reading, layer: layer)
        }
        reading.done.wait()
        if let error = reading.error { throw Self.layerError(error, reading: reading, layer: layer) }
        layerBytes = layerBytes.saturatingAdd(reading.diffHash.count)
        let blobBytes = reading.blobHash.count
        if let size = layer.size, Int64(blobBytes) != size {
            throw ImportError.verification(
                blob: layer.name, reason: "it has \(blobBytes) bytes, its descriptor says \(size)")
        }
        if let digest = layer.digest {
            let actual = BlobDigest(bytes: reading.blobHash.finalize())
            guard actual == digest else {
                throw ImportError.verification(blob: layer.name, reason: "its content has digest \(actual)")
            }
        }
        if let diffID = layer.diffID {
            let actual = BlobDigest(bytes: reading.diffHash.finalize())
            guard actual == diffID else {
                throw ImportError.verification(
                    blob: layer.name, reason: "its uncompressed content has digest \(actual), its diff_id is \(diffID)")
            }
        }
        report(force: true)
    }

    /// An error while reading a layer, said in terms of the layer (the reading thread's own
    /// error first: a truncated stream shows up on both sides).
    static func layerError(_ error: any Error, reading: BlobReading, layer: ResolvedImage.Layer) -> any Error {
        if error is ImportError || error is StoreError || error is IOError { return error }
        let cause = reading.error ?? error
        if let archive = cause as? ArchiveError, let inner = archive.cause { return Self.describe(inner, layer) }
        return Self.describe(cause, layer)
    }

    static func describe(_ error: any Error, _ layer: ResolvedImage.Layer) -> any Error {
        if error is ImportError || error is StoreError || error is IOError { return error }
        return ImportError.layer(layer: layer.name, reason: "\(error)")
    }

    /// The reading thread: blob → sha256 → decompress → sha256 → channel.
    private static func read(into channel: ChunkChannel, reading: BlobReading) {
        defer { reading.done.signal() }
        do {
            let compressed = ObservedSource(reading.blob) { reading.blobHash.update($0) }
            // Exactly one compression, told by its magic number, is undone: a layer compressed
            // twice is not a tar, whatever its diff_id says (containerd reads it so too).
            let head = try compressed.readPrefix(6)
            let compression = Compression.detect(head)
            let stream = PrefixedSource(prefix: head, then: compressed)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            let raw =
                compression == .none ? nil : try ArchiveReader(format: .raw, source: stream, compression: compression)
            if try raw?.next() != nil || raw == nil {
                while true {
                    let count = try buffer.withUnsafeMutableBytes {
                        if let raw { return try raw.read(into: $0) }
                        return try stream.read(into: $0)
                    }
                    if count == 0 { break }
                    try buffer.withUnsafeBytes {
                        let bytes = UnsafeRawBufferPointer(rebasing: $0[0..<count])
                        reading.diffHash.update(bytes)
                        try channel.send(bytes)
                    }
                }
            }
            // Whatever follows the compressed stream is part of the blob, and of its digest.
            var rest = [UInt8](repeating: 0, count: 64 << 10)
            while try rest.withUnsafeMutableBytes({ try compressed.read(into: $0) }) > 0 {}
            channel.close()
        } catch is ChunkChannel.Cancelled {
            channel.close()
        } catch {
            reading.error = error
            channel.close(error: error)
        }
    }

    func report(force: Bool) {
        guard let progress = options.progress else { return }
        let now = ContinuousClock.now
        guard force || now - lastProgress > .milliseconds(250) else { return }
        lastProgress = now
        let elapsed = now - started
        progress(
            ImportProgress(
                layer: currentLayer, layers: layers, bytes: layerBytes + pendingBytes, files: writes.filesStored,
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
    }

    /// Content bytes of the current layer so far (for progress).
    var pendingBytes: UInt64 = 0
}
