import ComposefsDump
import DiskImage
import ErofsWriter
import Foundation
import ImageModel
import LinuxSys
import OverlayTranslation
import SquashfsWriter

/// What a MODEL argument turned out to be.
enum ModelKind: String, Codable {
    case dump, squashfs, composefs, verityDisk
}

/// Loads a model from a path: a composefs dump (plain, gzip, `-`), a squashfs image written by
/// ovlcfs, or a composefs image (both read back and un-translated). Told apart by content.
func loadModel(_ path: String, options: DumpOptions) throws -> (Image, ModelKind) {
    if path != "-", let prefix = try? FileQueries.readPrefix(path, count: 4) {
        if SquashfsReader.hasMagic(prefix) {
            let (layer, _) = try SquashfsReader.read(path: path)
            return (try OverlayTranslation.untranslate(layer), .squashfs)
        }
        if VerityDisk.hasGPT(path) {
            // The model inside a verity disk: read the squashfs partition.
            let disk = try VerityDisk.open(path)
            let temporary = try TemporarySibling(destination: "/tmp/ovlcfs-disk-\(getpid()).sqfs")
            defer { temporary.discard() }
            let bytes = try InputReader(path: path).readAll()
            let writer = try AtomicFileWriter(destination: temporary.path)
            try writer.write(bytes[Int(disk.data.offset)..<Int(disk.data.offset + disk.data.size)])
            try writer.commit()
            let (layer, _) = try SquashfsReader.read(path: temporary.path)
            return (try OverlayTranslation.untranslate(layer), .verityDisk)
        }
        if ComposefsReader.hasMagic(prefix) {
            let bytes = try InputReader(path: path).readAll()
            do {
                return (try ComposefsReader.read(bytes).0, .composefs)
            } catch {
                throw IOError("read composefs image", path: path, detail: "\(error)")
            }
        }
    }
    return (try DumpFile.read(path: path, options: options), .dump)
}

/// Writes a line to standard error.
func printError(_ line: String) {
    let out = BufferedOutput.standardError()
    try? out.write(line + "\n")
    try? out.flush()
}

/// Bytes from hex digits (either case); nil when `text` is not an even run of hex digits or has
/// more than `maxBytes` bytes.
func bytes(fromHex text: String, maxBytes: Int) -> [UInt8]? {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0, chars.count <= 2 * maxBytes else { return nil }
    var out: [UInt8] = []
    for i in stride(from: 0, to: chars.count, by: 2) {
        guard let byte = UInt8(String(decoding: chars[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
        out.append(byte)
    }
    return out
}
