//! One module per command; each turns parsed arguments into library calls.

mod extract;
mod govern;
mod ingest;
mod keys;
pub(crate) mod private;
mod pseudonym;
mod quickstart;
mod release;
mod serve;
mod synth;

use crate::args::{Cli, Command};

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    private::check(&cli)?;
    match cli.command {
        Command::Quickstart(args) => quickstart::run(&cli.global, &args),
        Command::Keys(cmd) => keys::run(&cli.global, cmd),
        Command::Pseudonym(args) => pseudonym::run(&cli.global, &args),
        Command::Synth(args) => synth::run(&args).map(|_| ()),
        Command::Ingest(args) => ingest::run(&cli.global, &args).map(|_| ()),
        Command::Release(cmd) => release::run(&cli.global, cmd),
        Command::Project(cmd) => govern::project(&cli.global, cmd),
        Command::Researcher(cmd) => govern::researcher(&cli.global, cmd),
        Command::Audit(cmd) => govern::audit(&cli.global, cmd),
        Command::Partner(cmd) => govern::partner(&cli.global, cmd),
        Command::Extract(cmd) => extract::run(&cli.global, cmd),
        Command::Serve(args) => serve::run(&cli.global, &args),
        Command::QueryWorker { config } => serve::worker(&config),
    }
}

/// A Tokio runtime for commands that talk to object storage.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
