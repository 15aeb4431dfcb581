//! The `hr-bridge` binary: everything lives in the library.

// mimalloc returns freed memory to the system far more readily than glibc's
// per-thread arenas, which keeps the peak RSS of large /sync answers down.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hr_bridge::cli::main()
}
