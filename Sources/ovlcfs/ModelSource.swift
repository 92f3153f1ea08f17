import ComposefsDump
import ImageModel
import LinuxSys
import OverlayTranslation
import SquashfsWriter

/// What a MODEL argument turned out to be.
enum ModelKind: String, Codable {
    case dump, squashfs
}

/// Loads a model from a path: a composefs dump (plain, gzip, `-`) or a squashfs image written
/// by ovlcfs (read back and un-translated). Told apart by content, not name.
func loadModel(_ path: String, options: DumpOptions) throws -> (Image, ModelKind) {
    if path != "-", let prefix = try? FileQueries.readPrefix(path, count: 4), SquashfsReader.hasMagic(prefix) {
        let (layer, _) = try SquashfsReader.read(path: path)
        return (try OverlayTranslation.untranslate(layer), .squashfs)
    }
    return (try DumpFile.read(path: path, options: options), .dump)
}

/// Writes a line to standard error.
func printError(_ line: String) {
    let out = BufferedOutput.standardError()
    try? out.write(line + "\n")
    try? out.flush()
}
