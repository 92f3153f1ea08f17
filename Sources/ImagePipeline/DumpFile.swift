import ComposefsDump
import ImageModel
import LinuxSys

/// Reading and writing dump files (plain, gzip-compressed or standard input).
public enum DumpFile {
    /// Reads a dump from `path` (`-` for standard input; gzip is detected by content).
    public static func read(path: String, options: DumpOptions = .lenient) throws -> Image {
        try read(try InputFile(path: path), options: options)
    }

    /// Reads a dump from an open input (from its current position).
    public static func read(_ input: InputFile, options: DumpOptions = .lenient) throws -> Image {
        let reader = try input.reader()
        let parser = DumpParser(input: reader.name, options: options)
        // The size of a regular file, as a hint for the room to make; never more than an
        // eighth of the machine's memory, so a huge (or sparse) file cannot ask for more
        // room than the machine has before its lines are read.
        if input.isRegular, let memory = Memory.physicalBytes {
            parser.sizeHint = Int(clamping: min(input.size, memory / 8))
        }
        try reader.forEachChunk { chunk in try parser.feed(chunk) }
        return try parser.finish()
    }

    /// Writes the canonical dump of `image` to `path` atomically (`-` for standard output).
    public static func write(_ image: Image, to path: String) throws {
        if path == "-" {
            let out = BufferedOutput.standardOutput()
            try DumpWriter.write(image) { try out.write($0) }
            try out.flush()
            return
        }
        let file = try AtomicFileWriter(destination: path)
        try DumpWriter.write(image) { try file.write($0) }
        try file.commit()
    }
}
