//! The `hr-bridge` binary: everything lives in the library.

// See `hr_bridge::alloc` for why mimalloc, and the defaults it runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hr_bridge::alloc::tune();
    hr_bridge::cli::main()
}
