fn main() -> std::process::ExitCode {
    ward_sim::cli::main()
}
