import ArgumentParser
import ImageModel
import LinuxSys
import OCIImage
import ObjectStore

/// The image reference `model` names (`oci:`, `oci-archive:`, `docker-archive:`, `tar:`),
/// unless a file or directory of that very name exists.
func imageReference(_ model: String) -> ImageReference? {
    guard let reference = ImageReference(model), !FileQueries.exists(model) else { return nil }
    return reference
}

/// Parses `--platform`.
func parsePlatform(_ text: String?) throws -> Platform? {
    guard let text else { return nil }
    guard let platform = Platform(text) else {
        throw ValidationError("--platform \(text): expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8")
    }
    return platform
}

/// Imports an image reference into a model (and, with a store, its contents into the store),
/// with progress on a terminal and a one-line summary unless `quiet`.
func importImage(
    _ reference: ImageReference, objects: String?, storeMode: StoreMode, platform: Platform?, quiet: Bool
) throws -> Image {
    if storeMode != .none && objects == nil {
        throw ValidationError(
            "building from \(reference) needs --objects OBJECTS (or --store-mode none for digests only).")
    }
    let store = try objects.map { path in
        try ObjectStore(path: path, create: storeMode != .none) {
            printError("ovlcfs: waiting for ovlcfs gc on \(path) to finish…")
        }
    }
    var options = ImportOptions(storeMode: storeMode, platform: platform)
    let showProgress = !quiet && FileIO.standardErrorIsTerminal
    if showProgress {
        options.progress = { progress in
            let rate = progress.seconds > 0 ? Double(progress.bytes) / progress.seconds : 0
            let line =
                "\r\u{1B}[Kimport: layer \(progress.layer)/\(progress.layers), \(progress.files) files, "
                + "\(formatBytes(progress.bytes)) (\(formatBytes(UInt64(rate)))/s)"
            let out = BufferedOutput.standardError()
            try? out.write(line)
            try? out.flush()
        }
    }
    let result = try OCIImport.importImage(reference, store: store, options: options)
    if showProgress { printError("") }
    if !quiet {
        printError(
            "imported \(reference): \(result.layers) layer\(result.layers == 1 ? "" : "s") verified "
                + "(\(formatBytes(result.layerBytes)) uncompressed), \(result.filesStored) files stored "
                + "(\(formatBytes(result.bytesStored))), \(result.objectsAdded) objects added, "
                + "\(result.objectsPresent) already present")
    }
    return result.image
}
