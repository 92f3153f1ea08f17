import CLinux
import Glibc

/// The process's heap.
public enum Memory {
    /// Gives the pages that freed allocations left in the heap back to the kernel
    /// (`malloc_trim(0)`): after a phase that made and dropped much (parsing, translating),
    /// so that the next phase's peak is not stacked on the last one's garbage.
    public static func releaseFreePages() { _ = malloc_trim(0) }
}

extension Memory {
    /// The machine's physical memory in bytes (`sysconf`), or nil when it cannot tell.
    public static var physicalBytes: UInt64? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return nil }
        return UInt64(pages) * UInt64(size)
    }
}
