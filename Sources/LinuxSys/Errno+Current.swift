import Glibc
import SystemPackage

extension Errno {
    /// The calling thread's `errno`.
    public static var current: Errno { Errno(rawValue: Glibc.errno) }
}
