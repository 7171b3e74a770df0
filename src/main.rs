fn main() -> std::process::ExitCode {
    sembang::cli::main()
}
