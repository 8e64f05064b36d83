/// mimalloc: hoard allocates from many threads at once (HTTP workers, job threads,
/// compression threads), where glibc's allocator spent a fifth of the API's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hoard::cli::main()
}
