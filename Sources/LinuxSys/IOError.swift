import SystemPackage

/// A failed system call on a named file: the operation, the path and the kernel's errno.
public struct IOError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Errno?
    public var detail: String?

    public init(_ operation: String, path: String, errno: Errno? = nil, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "cannot \(operation) \(path)"
        if let errno { text += ": \(errno.description)" }
        if let detail { text += ": \(detail)" }
        return text
    }
}
