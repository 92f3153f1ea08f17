import Dispatch

/// Frees `value` on a background thread: freeing a model of a million inodes (its arrays, one
/// inode at a time) takes a tenth of a second that the caller need not wait for, and that a
/// command about to exit does not spend at all. The caller hands over its last reference.
public func releaseInBackground<T>(_ value: consuming T) {
    let box = ReleaseBox(value)
    DispatchQueue.global(qos: .utility).async { box.value = nil }
}

/// Carries a value to the thread that frees it; only that thread touches it after `init`.
private final class ReleaseBox<T>: @unchecked Sendable {
    var value: T?
    init(_ value: consuming T) { self.value = value }
}
