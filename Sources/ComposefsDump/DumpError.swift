/// The fields of a dump line, for error reporting.
public enum DumpField: String, Sendable, CaseIterable {
    case path, size, mode, nlink, uid, gid, rdev, mtime, payload, content, digest, xattr, line
}

/// A rejected dump: the input, the 1-based line, the field and the reason.
///
/// Rendered as `model.dump:17: xattr key is empty`.
public struct DumpError: Error, Sendable, Equatable, CustomStringConvertible {
    public var input: String
    public var line: Int
    public var field: DumpField
    public var reason: String

    public init(input: String, line: Int, field: DumpField, reason: String) {
        self.input = input
        self.line = line
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(input):\(line): \(reason)" }
}
