import ArgumentParser
import SquashfsWriter

/// How squashfs metadata tables are stored.
enum MetadataCompression: String, ExpressibleByArgument, CaseIterable {
    /// Uncompressed: inodes, directories, xattrs and ids.
    case none
    /// With --compression, as the data.
    case same
}

/// The options of a squashfs image (the overlay option), for every command that writes one.
struct SquashfsOptionGroup: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            Compressor for data and metadata: none, gzip, lz4, zstd or xz. lz4 (default) is the \
            fastest to read (cold random stat through overlay 3.1x composefs vs 6.3x with zstd; \
            docs/performance.md); zstd makes the smallest images (~0.6x of lz4's) and is the one to \
            choose for unsquashfs 4.5, which cannot read libsquashfs's lz4 images (the kernel, \
            rdsquashfs and ovlcfs inspect can).
            """))
    var compression: SquashfsOptions.Compression = .lz4

    @Option(
        help: ArgumentHelp("Compression level (gzip 1–9, default 6; zstd 1–22, default 3; xz 0–9).", valueName: "N"))
    var compressionLevel: Int?

    @Option(help: "none stores inodes, directories, xattrs and ids uncompressed; same uses --compression.")
    var metadataCompression: MetadataCompression = .same

    @Option(
        help: ArgumentHelp(
            "Tables to store uncompressed, comma-separated: data, inodes, directories, xattrs, ids.", valueName: "LIST")
    )
    var uncompressedTables: String?

    @Option(help: ArgumentHelp("Data block size in bytes (power of two, 4096–1048576).", valueName: "BYTES"))
    var blockSize: Int = 1 << 20

    @Option(
        help: ArgumentHelp(
            """
            Inode table order: directories (each directory's children together, subdirectories \
            included: the order ls -l and lookups visit them), grouped (a directory's files together, \
            each subdirectory after its subtree) or name (post-order by name, as gensquashfs).
            """))
    var inodeOrder: SquashfsOptions.InodeOrder = .directories

    @Option(
        help: ArgumentHelp(
            """
            Directory index: dense (an index entry every √n entries, so the kernel's lookup reads \
            ~2√n entries instead of up to ~250; cold ls -lR about 2× faster) or blocks (one per \
            8 KiB metadata block, as mksquashfs).
            """))
    var directoryIndex: SquashfsOptions.DirectoryIndex = .dense

    func options() throws -> SquashfsOptions {
        var tables = Set<SquashfsOptions.Table>()
        if metadataCompression == .none { tables.formUnion(SquashfsOptions.Table.metadata) }
        for name in (uncompressedTables ?? "").split(separator: ",") {
            guard let table = SquashfsOptions.Table(rawValue: String(name)) else {
                throw ValidationError(
                    "unknown table '\(name)' in --uncompressed-tables (data, inodes, directories, xattrs, ids).")
            }
            tables.insert(table)
        }
        var options = SquashfsOptions(
            compression: compression, compressionLevel: compressionLevel,
            uncompressedTables: tables, blockSize: blockSize)
        options.inodeOrder = inodeOrder
        options.directoryIndex = directoryIndex
        do { try options.validate() } catch { throw ValidationError(error.description) }
        return options
    }

}
