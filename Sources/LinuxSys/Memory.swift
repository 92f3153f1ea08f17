import CLinux

/// The process's heap.
public enum Memory {
    /// Gives the pages that freed allocations left in the heap back to the kernel
    /// (`malloc_trim(0)`): after a phase that made and dropped much (parsing, translating),
    /// so that the next phase's peak is not stacked on the last one's garbage.
    public static func releaseFreePages() { _ = malloc_trim(0) }
}
