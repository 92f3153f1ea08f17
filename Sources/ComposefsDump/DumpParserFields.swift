import ImageModel

/// The fields of a dump line, one parser each, and the messages that name them.
extension DumpParser {
    // MARK: - Fields

    func checkRawBytes(_ line: Span<UInt8>) throws(DumpError) {
        if Self.firstControlByte(line, from: 0) == line.count { return }
        for i in line.indices {
            let byte = line[i]
            if byte >= 0x20 && byte != 0x7F { continue }
            if byte == 0 {
                throw error(.line, "invalid embedded NUL character at position \(i)")
            }
            let hint = byte == 0x0D ? " (CRLF line endings? the format uses LF only)" : ""
            throw error(
                .line,
                "raw control byte 0x\(String(byte, radix: 16)) at position \(i); write it escaped as \\x\(String(format2: byte))\(hint)"
            )
        }
    }

    /// The index of the first byte at or after `start` that is below 0x20 or 0x7F (DEL), or
    /// `span.count`; eight bytes at a time: a word holds a byte below n exactly when
    /// `(w - n·0x01…01) & ~w & 0x80…80` is not zero.
    static func firstControlByte(_ span: Span<UInt8>, from start: Int) -> Int {
        let bytes = span.bytes
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let n = span.count
        var i = start
        while i + 8 <= n {
            let w = UInt64(littleEndian: bytes.unsafeLoadUnaligned(fromByteOffset: i, as: UInt64.self))
            let del = w ^ (0x7F &* ones)
            let hits = ((w &- 0x20 &* ones) & ~w | (del &- ones) & ~del) & highs
            // The lowest flagged byte is a real hit (borrows only run upwards).
            if hits != 0 { return i + hits.trailingZeroBitCount / 8 }
            i += 8
        }
        while i < n, span[i] >= 0x20, span[i] != 0x7F { i += 1 }
        return i
    }

    func unescape(_ field: Span<UInt8>, _ name: DumpField) throws(DumpError) -> [UInt8] {
        do {
            return try DumpEscaping.decode(field)
        } catch {
            switch error {
            case .unsupportedEscape(let kind):
                throw self.error(
                    name,
                    "unsupported escape type \\\(String(decoding: [kind], as: UTF8.self)) in \(name.rawValue.uppercased())"
                )
            case .danglingBackslash:
                throw self.error(name, "\(name.rawValue.uppercased()) ends in a lone backslash")
            case .incompleteHexEscape:
                throw self.error(name, "incomplete \\x escape in \(name.rawValue.uppercased()) (two hex digits needed)")
            }
        }
    }

    func optionalField(_ field: Span<UInt8>, _ name: DumpField) throws(DumpError) -> [UInt8]? {
        if field.count == 1 && field[0] == UInt8(ascii: "-") { return nil }
        return try unescape(field, name)
    }

    func checkedPayload(_ bytes: [UInt8]) throws(DumpError) -> Payload {
        if let digestPath = Digest(objectPath: bytes) { return .object(digestPath) }
        if let reason = Payload.problem(with: bytes) { throw error(.payload, reason) }
        return .path(bytes)
    }

    func parseDigest(_ field: Span<UInt8>) throws(DumpError) -> Digest? {
        if field.count == 1 && field[0] == UInt8(ascii: "-") { return nil }
        guard let digest = Digest(hex: field) else {
            throw error(.digest, "DIGEST \(text(field)) is not 64 hex digits (or '-')")
        }
        return digest
    }

    func parseDecimal(_ field: Span<UInt8>, _ name: DumpField, max: UInt64 = .max, bits: Int = 64)
        throws(DumpError) -> UInt64
    {
        guard !field.isEmpty else { throw error(name, "\(name.rawValue.uppercased()) is empty") }
        var value: UInt64 = 0
        for i in field.indices {
            let digit = field[i] &- UInt8(ascii: "0")
            guard digit < 10 else {
                if i == 0 && field[i] == UInt8(ascii: "-") {
                    throw error(name, "\(name.rawValue.uppercased()) \(text(field)) is negative")
                }
                throw error(name, "invalid integer \(text(field)) in \(name.rawValue.uppercased())")
            }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            guard !o1, !o2, sum <= max else {
                throw error(name, "\(name.rawValue.uppercased()) \(text(field)) does not fit in \(bits) bits")
            }
            value = sum
        }
        return value
    }

    func parseOctal(_ field: Span<UInt8>, _ name: DumpField) throws(DumpError) -> UInt64 {
        guard !field.isEmpty else { throw error(name, "\(name.rawValue.uppercased()) is empty") }
        var value: UInt64 = 0
        for i in field.indices {
            let digit = field[i] &- UInt8(ascii: "0")
            guard digit < 8 else { throw error(name, "invalid mode \(text(field)): not an octal number") }
            guard value <= UInt64(UInt32.max) else { throw error(name, "mode \(text(field)) does not fit in 32 bits") }
            value = value << 3 | UInt64(digit)
        }
        return value
    }

    func parseMtime(_ field: Span<UInt8>) throws(DumpError) -> Timestamp {
        var dot: Int? = nil
        for i in field.indices where field[i] == UInt8(ascii: ".") {
            dot = i
            break
        }
        guard let dot else { throw error(.mtime, "MTIME \(text(field)) must be SECONDS.NANOSECONDS") }
        // Before 1970 the seconds are negative (the dump writer prints them so).
        let negative = dot > 0 && field[0] == UInt8(ascii: "-")
        let magnitude = try parseDecimal(
            field.extracting((negative ? 1 : 0)..<dot), .mtime,
            max: negative ? UInt64(Int64.max) + 1 : UInt64(Int64.max), bits: 64)
        let seconds = negative ? Int64(bitPattern: 0 &- magnitude) : Int64(magnitude)
        let nanos = try parseDecimal(field.extracting((dot + 1)...), .mtime, max: UInt64(UInt32.max), bits: 32)
        guard nanos < 1_000_000_000 else {
            throw error(.mtime, "MTIME nanoseconds \(nanos) must be below 1000000000")
        }
        return Timestamp(seconds: seconds, nanoseconds: UInt32(nanos))
    }

    /// The xattr list of a line's xattr text, by its index in `xattrLists` (each distinct
    /// text is parsed once).
    func parseXattrs(_ region: Span<UInt8>) throws(DumpError) -> Int32 {
        guard region.count <= 65535 else {
            throw error(.xattr, "too many xattrs: \(region.count) bytes of xattrs, the limit is 65535")
        }
        for recent in recentXattrs where equal(region, recent.text) { return recent.index }
        var text: [UInt8] = []
        text.reserveCapacity(region.count)
        text.append(copying: region)
        if let index = xattrCache[ByteKey(text)] {
            remember(text, index)
            return index
        }
        var xattrs: [Xattr] = []
        var budget = Limits.xattrHeaderOverhead
        var tokenStart = 0
        for i in 0...region.count {
            guard i == region.count || region[i] == 0x20 else { continue }
            let token = region.extracting(tokenStart..<i)
            tokenStart = i + 1
            var equals: Int? = nil
            for j in token.indices where token[j] == UInt8(ascii: "=") {
                equals = j
                break
            }
            guard let equals else {
                if token.isEmpty { throw error(.xattr, "empty xattr (two spaces in a row?)") }
                throw error(.xattr, "missing = in xattr \(self.text(token))")
            }
            let key = try unescape(token.extracting(..<equals), .xattr)
            let value = try unescape(token.extracting((equals + 1)...), .xattr)
            guard !key.isEmpty else { throw error(.xattr, "xattr key is empty") }
            guard key.count <= Limits.maxXattrKeyLength else {
                throw error(.xattr, "xattr key of \(key.count) bytes is longer than \(Limits.maxXattrKeyLength)")
            }
            guard value.count <= Limits.maxXattrValueLength else {
                throw error(.xattr, "xattr value of \(value.count) bytes is longer than \(Limits.maxXattrValueLength)")
            }
            let xattr = Xattr(key: key, value: value)
            if let existing = xattrs.firstIndex(where: { $0.key == key }) {
                budget -= xattrs[existing].budgetCost
                xattrs[existing] = xattr
            } else {
                xattrs.append(xattr)
            }
            budget += xattr.budgetCost
            guard budget <= Limits.maxXattrBudget else {
                throw error(
                    .xattr, "xattrs need \(budget) bytes, more than the per-inode maximum of \(Limits.maxXattrBudget)")
            }
        }
        let index = Int32(xattrLists.count)
        xattrLists.append(xattrs)
        xattrCache[ByteKey(text)] = index
        remember(text, index)
        return index
    }

    /// Keeps an xattr text among the recent ones (replacing them in turn once full).
    private func remember(_ text: [UInt8], _ index: Int32) {
        if recentXattrs.count < Self.recentXattrCount {
            recentXattrs.append((text, index))
        } else {
            recentXattrs[nextRecent] = (text, index)
            nextRecent = (nextRecent + 1) % Self.recentXattrCount
        }
    }

    func equal(_ span: Span<UInt8>, _ bytes: [UInt8]) -> Bool { sameBytes(span, bytes.span) }

    // MARK: - Messages

    func error(_ field: DumpField, _ reason: String) -> DumpError {
        DumpError(input: input, line: lineNumber, field: field, reason: reason)
    }

    func text(_ span: Span<UInt8>) -> String {
        var bytes: [UInt8] = []
        for i in span.indices.prefix(80) { bytes.append(span[i]) }
        return displayBytes(bytes) + (span.count > 80 ? "…" : "")
    }

    func typeName(_ type: FileType) -> String { type.jsonName }
}

extension String {
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef".utf8)
        self = String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }
}
