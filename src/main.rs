/// jemalloc: the engine allocates per message, and glibc's malloc took ~30 % of its CPU
/// under load; mimalloc (v3) was as fast but kept freed memory, 14.6 GB resident where
/// jemalloc held 1.3 GB under the same backlog (BENCHMARKS.md).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    sembang::ocr::ensure_single_threaded_openmp();
    sembang::cli::main()
}
