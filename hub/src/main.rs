use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    wardhub::cli::main()
}

/// glibc's malloc gives every thread its own arena; under the hub's many-threaded write load
/// they fragment to ~3x the live heap (measured with 1,000 devices: ~1 GiB RSS with the
/// default, ~360 MiB with two arenas, at the same throughput; see BENCHMARKS.md). The arena
/// count can only be set before the first allocation, so the hub re-executes itself once with
/// `MALLOC_ARENA_MAX=2` unless the variable is already set (an operator's value is kept).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        use std::os::unix::process::CommandExt;
        if let Ok(exe) = std::env::current_exe() {
            let err = std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("MALLOC_ARENA_MAX", "2")
                .exec();
            eprintln!("wardhub: cannot re-execute with MALLOC_ARENA_MAX=2 ({err}); going on");
        }
    }
}
