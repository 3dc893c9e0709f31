//! The `dhub` binary: everything lives in the `dhub_cli` library; this file only turns
//! its result into an exit code.

fn main() -> std::process::ExitCode {
    dhub_cli::main()
}
