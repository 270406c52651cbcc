import CMalloc

/// The process's heap.
enum Memory {
    /// Returns the heap's free pages to the system (glibc's `malloc_trim`; elsewhere nothing).
    static func returnFreed() {
        _ = cmalloc_trim()
    }
}
