/// mimalloc: hoard allocates from many threads at once (HTTP workers, job threads,
/// compression threads), where glibc's allocator spent a fifth of the API's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
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
