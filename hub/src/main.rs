fn main() -> std::process::ExitCode {
    wardhub::cli::main()
}
