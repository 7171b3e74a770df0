/// mimalloc: the engine allocates per message, and glibc's malloc took ~30 % of its CPU
/// under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sembang::ocr::ensure_single_threaded_openmp();
    sembang::cli::main()
}
