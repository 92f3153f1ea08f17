import ImageModel

/// Writes an ``Image`` as the canonical dump `composefs-info dump` prints: depth-first,
/// children in name order, hard links as `@` lines that name the primary path and repeat
/// its fields.
public enum DumpWriter {
    /// Renders the whole dump, handing out chunks of about `chunkSize` bytes.
    public static func write(_ image: Image, chunkSize: Int = 1 << 20, to sink: ([UInt8]) throws -> Void) rethrows {
        var out: [UInt8] = []
        out.reserveCapacity(chunkSize + 8192)
        try image.forEachDepthFirst { entry in
            appendLine(for: entry, of: image, to: &out)
            if out.count >= chunkSize {
                try sink(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        if !out.isEmpty { try sink(out) }
    }

    /// The whole dump as bytes.
    public static func render(_ image: Image) -> [UInt8] {
        var all: [UInt8] = []
        write(image) { all.append(contentsOf: $0) }
        return all
    }

    /// Appends the dump line of one entry (LF-terminated).
    public static func appendLine(for entry: EntryID, of image: Image, to out: inout [UInt8]) {
        let inodeID = image.inodeID(of: entry)
        let inode = image[inode: inodeID]
        let isPrimary = image.isPrimary(entry)
        let path = image.path(of: entry)
        DumpEscaping.encode(path, into: &out)
        out.append(0x20)
        appendDecimal(inode.size, to: &out)
        out.append(0x20)
        if !isPrimary { out.append(UInt8(ascii: "@")) }
        appendOctal(inode.mode, to: &out)
        out.append(0x20)
        appendDecimal(UInt64(image.nlink(of: inodeID)), to: &out)
        out.append(0x20)
        appendDecimal(UInt64(inode.uid), to: &out)
        out.append(0x20)
        appendDecimal(UInt64(inode.gid), to: &out)
        out.append(0x20)
        appendDecimal(inode.rdev, to: &out)
        out.append(0x20)
        if inode.mtime.seconds < 0 { out.append(UInt8(ascii: "-")) }
        appendDecimal(inode.mtime.seconds.magnitude, to: &out)
        out.append(UInt8(ascii: "."))
        appendDecimal(UInt64(inode.mtime.nanoseconds), to: &out)
        out.append(0x20)

        // PAYLOAD
        if !isPrimary {
            let target = image.path(of: image.primaryEntry(of: inodeID))
            DumpEscaping.encode(target, into: &out, escapeLoneDash: true)
        } else {
            switch inode.data {
            case .external(let object):
                if let payload = object.payload {
                    DumpEscaping.encode(payload.bytes, into: &out, escapeLoneDash: true)
                } else {
                    out.append(dash)
                }
            case .symlink(let target): DumpEscaping.encode(target, into: &out, escapeLoneDash: true)
            default: out.append(dash)
            }
        }
        out.append(0x20)
        // CONTENT
        if case .inline(let content) = inode.data, !content.isEmpty {
            DumpEscaping.encode(content, into: &out, escapeLoneDash: true)
        } else {
            out.append(dash)
        }
        out.append(0x20)
        // DIGEST
        if let digest = inode.externalObject?.digest {
            out.append(contentsOf: digest.hexBytes)
        } else {
            out.append(dash)
        }
        for xattr in image.xattrs(of: inode) {
            out.append(0x20)
            DumpEscaping.encode(xattr.key, into: &out, escapeEquals: true)
            out.append(UInt8(ascii: "="))
            DumpEscaping.encode(xattr.value, into: &out, escapeEquals: true)
        }
        out.append(0x0A)
    }

    @inline(__always)
    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        var divisor: UInt64 = 1
        while value / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value / divisor % 10))
            divisor /= 10
        }
    }

    @inline(__always)
    static func appendOctal(_ value: UInt32, to out: inout [UInt8]) {
        var shift = 30
        while shift > 0 && value >> UInt32(shift) == 0 { shift -= 3 }
        while shift >= 0 {
            out.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: (value >> UInt32(shift)) & 7))
            shift -= 3
        }
    }
}

private let dash = UInt8(ascii: "-")
