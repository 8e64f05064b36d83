/// mimalloc: hoard allocates from many threads at once (HTTP workers, job threads,
/// compression threads), where glibc's allocator spent a fifth of the API's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keep_the_heap_out_of_huge_pages();
    keep_large_c_allocations_out_of_arenas();
    hoard::cli::main()
}

/// zstd allocates its multi-megabyte windows with the C allocator, on threads that live
/// for one job. glibc raises its mmap threshold after the first such buffer is freed, so
/// the next ones land in per-thread arenas, which keep them: a few megabytes more resident
/// after every backup or restore. A fixed threshold keeps them mapped and unmapped whole.
fn keep_large_c_allocations_out_of_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// mimalloc asks for transparent huge pages on its heap (`MADV_HUGEPAGE`), and the kernel
/// then backs every touched 2 MiB of it and never gives it back while idle: after a burst of
/// connections hoard grew to 251 MB, 217 MB of it huge pages. Turning THP off for the process
/// keeps the heap in 4 KiB pages that mimalloc can return. Hooks turn it back on for
/// what they start (see `jobs::hooks`).
fn keep_the_heap_out_of_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
