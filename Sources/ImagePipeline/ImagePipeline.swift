import DiskImage
import ErofsWriter
import ImageModel
import LinuxSys
import OverlayTranslation
import SquashfsWriter
import Verity

/// The one way a model becomes an image file, for `build` and `bench` alike: the overlay
/// option (a squashfs of metacopy stubs, optionally inside a GPT verity disk) or a composefs
/// image. Every output is written atomically; the model passes the validator on the way
/// (through the translation).
public enum ImagePipeline {
    /// What to write.
    public enum Recipe: Sendable {
        /// The overlay option; with `disk`, a GPT disk holding it and its dm-verity hash tree.
        case squashfs(layout: OverlayLayout, options: SquashfsOptions, disk: Disk?)
        /// A composefs (EROFS) image, byte-identical to mkcomposefs 1.0.8's, of the lowest
        /// format version in the range the model allows.
        case composefs(minVersion: Int, maxVersion: Int, digest: Bool)
    }

    /// A verity disk's parameters.
    public struct Disk: Sendable {
        /// dm-verity salt (nil: 32 random bytes).
        public var salt: [UInt8]?
        public init(salt: [UInt8]? = nil) { self.salt = salt }
    }

    /// What was written.
    public struct Written: Sendable {
        public var bytes: UInt64
        public var entries: Int
        public var inodes: Int
        /// squashfs: the sparse stubs written.
        public var stubs: Int = 0
        /// Verity disks: the dm-verity root hash (hex).
        public var rootHash: String?
        /// composefs: the format version chosen, and the image's fs-verity digest if asked for.
        public var composefsVersion: Int?
        public var digest: Digest?
    }

    /// Writes `model` to `destination` as `recipe` says, translating on `jobs` threads (hand
    /// the model over with `consume` and the translation rewrites it in place);
    /// `lap` is told when each phase (`translate`, for composefs `layout`, `write`) ends.
    public static func write(
        _ model: consuming Image, as recipe: Recipe, to destination: String, jobs: Int = 1,
        lap: (String) -> Void = { _ in }
    ) throws -> Written {
        // What reading the model made and dropped goes back before the peak ahead.
        Memory.releaseFreePages()
        switch recipe {
        case .squashfs(let layout, let options, let disk):
            let layer = try OverlayTranslation.translate(consume model, options: .init(layout: layout), jobs: jobs)
            Memory.releaseFreePages()
            lap("translate")
            var written: Written
            if let disk {
                let temporary = try TemporarySibling(destination: destination + ".sqfs")
                defer { temporary.discard() }
                let result = try SquashfsWriter.write(layer, into: temporary, options: options, jobs: jobs)
                let built = try VerityDisk.build(dataImage: temporary.path, destination: destination, salt: disk.salt)
                written = Written(
                    bytes: try FileStatus(path: destination).size, entries: result.entries, inodes: result.inodes,
                    stubs: result.stubs, rootHash: built.rootHashHex)
            } else {
                let result = try SquashfsWriter.write(layer, to: destination, options: options, jobs: jobs)
                written = Written(
                    bytes: result.bytes, entries: result.entries, inodes: result.inodes, stubs: result.stubs)
            }
            lap("write")
            releaseInBackground(consume layer)
            return written
        case .composefs(let minVersion, let maxVersion, let digest):
            // Streamed: the image goes to the file (and the hasher) on another thread while
            // the next piece is made.
            let output = try BackgroundWriter(destination: destination, digest: digest)
            let (entries, inodes) = (model.entryCount, model.inodeCount)
            let version: Int
            do {
                version = try ComposefsImage.write(
                    consume model, minVersion: minVersion, maxVersion: maxVersion, jobs: jobs,
                    lap: { phase in
                        if phase == "translate" { Memory.releaseFreePages() }
                        lap(phase)
                    }
                ) { try output.write($0) }
            } catch {
                output.abandon()
                throw error
            }
            let (bytes, imageDigest) = try output.finish()
            lap("write")
            return Written(
                bytes: bytes, entries: entries, inodes: inodes, composefsVersion: version,
                digest: imageDigest)
        }
    }
}
