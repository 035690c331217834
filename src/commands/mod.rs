//! One function per CLI command. `main.rs` parses the arguments and calls
//! [`dispatch`]; every command returns the exit code of docs/contract.md.

pub mod check;
mod common;
#[cfg(feature = "sim")]
pub mod demo;
pub mod history;
pub mod migrate;
pub mod reconcile;
pub mod show;
#[cfg(feature = "sim")]
pub mod sim;
pub mod snapshot;
pub mod worker;

pub use common::{exit_code_for, load_config, open_store, store_url};

use crate::cli::{Cli, Command};
use crate::error::ExitCode;

/// Runs the parsed command line and returns the process exit code. Errors
/// are printed to stderr with what went wrong; nothing panics.
pub async fn dispatch(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Reconcile(args) => reconcile::run(&cli, args).await,
        Command::Run => worker::run(&cli).await,
        Command::Check => check::run(&cli).await,
        Command::History(args) => history::run(&cli, args).await,
        Command::Show(args) => show::run(&cli, args).await,
        #[cfg(feature = "sim")]
        Command::Demo(args) => demo::run(args).await,
        #[cfg(feature = "sim")]
        Command::Sim(args) => sim::run(args).await,
        Command::Migrate => migrate::run(&cli).await,
        Command::Snapshot(command) => snapshot::run(&cli, command).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("idrecon: {e:#}");
            e.exit_code()
        }
    }
}
