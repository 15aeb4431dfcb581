//! The `hr-bridge` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    hr_bridge::cli::main()
}
