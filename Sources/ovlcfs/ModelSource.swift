import Bench
import ComposefsDump
import DiskImage
import ErofsWriter
import Foundation
import ImageModel
import ImagePipeline
import LinuxSys
import OCIImage
import ObjectStore
import OverlayTranslation
import SquashfsWriter

/// What a MODEL argument turned out to be.
typealias ModelKind = ImageKind

/// The largest composefs image read back into memory as a model.
let maxComposefsImageBytes: UInt64 = 1 << 30

/// Loads a model from a path: a composefs dump (plain, gzip, `-`, a pipe or FIFO), a squashfs
/// image written by ovlcfs, a verity disk, or a composefs image (images read back and
/// un-translated). The input is opened once and told apart by content; whatever it held, the
/// model passes ``Image/validate()`` before anyone uses it.
/// An image reference (`oci:DIR`, `oci-archive:FILE`, …) is imported with digests only;
/// `synthetic:ENTRIES[:LARGEST_DIR]` is generated (``SyntheticModel``).
/// Threads reading a dump's lines when the command line does not say: one per core.
let defaultDumpJobs = ProcessInfo.processInfo.activeProcessorCount

func loadModel(_ path: String, options: DumpOptions, platform: Platform? = nil) throws -> (Image, ModelKind) {
    if let synthetic = try SyntheticModel.parse(path) { return (try synthetic.image(), .dump) }
    if let reference = imageReference(path) {
        return (try importImage(reference, objects: nil, storeMode: .none, platform: platform, quiet: true), .dump)
    }
    let input = try InputFile(path: path)
    let kind = input.isRegular ? ImageKind.detect(prefix: try input.prefix(ImageKind.prefixLength)) : .dump
    let image: Image
    switch kind {
    case .squashfs:
        let (layer, _) = try SquashfsReader.read(input)
        image = try OverlayTranslation.untranslate(layer)
    case .verityDisk:
        // The model inside a verity disk: its squashfs partition, read in place.
        let disk = try VerityDisk.open(fd: input.descriptor, size: input.size, path: input.name)
        let (layer, _) = try SquashfsReader.read(input, offset: disk.data.offset, size: disk.data.size)
        image = try OverlayTranslation.untranslate(layer)
    case .composefs:
        let bytes = try input.readAll(limit: maxComposefsImageBytes)
        do {
            image = try ComposefsReader.read(bytes).0
        } catch {
            throw IOError("read composefs image", path: input.name, detail: "\(error)")
        }
    case .dump:
        image = try DumpFile.read(input, options: options)
    }
    do {
        try image.validate()
    } catch {
        throw IOError("use the model in", path: input.name, detail: "\(error)")
    }
    return (image, kind)
}

/// Writes a line to standard error.
func printError(_ line: String) {
    let out = BufferedOutput.standardError()
    try? out.write(line + "\n")
    try? out.flush()
}

/// `value` as pretty-printed JSON with sorted keys (dates in ISO 8601) and a newline: the one
/// shape of every `--json` output, printed or written to a file.
func jsonBytes(_ value: some Encodable) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    return Array(try encoder.encode(value)) + [0x0A]
}

extension BufferedOutput {
    /// Writes `value` as ``jsonBytes(_:)`` shapes it.
    func writeJSON(_ value: some Encodable) throws { try write(jsonBytes(value)) }
}
