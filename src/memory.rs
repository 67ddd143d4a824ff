//! Allocator settings for a server whose largest allocations are short-lived and big: a 19 MiB
//! Argon2 block per password hash, a whole tarball per publish.

/// Makes glibc serve allocations of 1 MiB and more with their own `mmap` and unmap them when freed.
///
/// glibc raises its mmap threshold each time such a block is freed (up to 32 MiB), after which
/// later 19 MiB hashes come from per-thread arenas that keep the memory: a login flood left the
/// process at several hundred MiB. A fixed threshold turns the adjustment off, so RSS falls back
/// once a hash or a publish ends. The price is a few page faults per large allocation, small
/// beside the ~20 ms of hashing it serves.
///
/// Fixing the threshold also freezes the trim threshold at its 128 KiB default, so every request's
/// small allocations would shrink and regrow the heap top (syscalls and page faults on the hot
/// path; `malloc_consolidate` showed in profiles of downloads). 8 MiB of free heap top is kept,
/// as the dynamic setting would have done after the first large free.
///
/// At most 4 arenas. glibc gives each new thread that contends an arena of its own, up to 8 per
/// core, and sqlx-sqlite runs one thread per pooled connection (16 by default): each arena keeps
/// its own fragments and up to the trim threshold of free top, so the heap crept up over a soak
/// (+5.8 MB from 1:00 to 10:00 at a4ec8de, decelerating). Four arenas
/// are the default; whether they cost throughput through malloc lock contention is not measured
/// (`MALLOC_ARENA_MAX` in the environment overrides it, e.g. to compare).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called once at start, before the
    // runtime spawns threads that allocate, and any value is valid for these parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        // An operator's own MALLOC_ARENA_MAX (read by glibc itself) wins.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
}

/// Gives the kernel back what the heap holds free: called once after start-up's big transient
/// allocations (the search index is built from every package row, then those rows are dropped),
/// which otherwise stay in the process's RSS as free heap.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's heaps to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
