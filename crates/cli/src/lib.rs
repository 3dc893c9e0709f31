//! # dhub-cli: the `dhub` command
//!
//! A thin layer over the library crates: argument parsing (clap derive in `args`, every
//! global flag and every `dhub serve` limit also settable from the environment, the
//! fixed-word options as `ValueEnum`s in `choices`), progress bars, human summaries and
//! exit codes.
//! Errors are reported with their context chain on stderr and exit code 1; usage
//! errors exit with 2; a closed stdout (`dhub pseudonym … | head`) ends quietly.
//!
//! Nothing here prints a key byte or a value of an identifiable column.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod choices;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command, Global};

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    // first: everything dhub writes is private to its account (0600 files, 0700 dirs)
    commands::private::restrict_umask();
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dhub: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("DHUB_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
