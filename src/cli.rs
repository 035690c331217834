//! Command-line definitions (docs/contract.md, "Commands"), clap derive.
//!
//! Only the shape of the command line lives here; `main.rs` dispatches.
//! Argument errors exit with code 3 (configuration error), never 2, which
//! the contract reserves for "findings open": see [`Cli::parse_or_exit`].

use crate::error::ExitCode;
use crate::logging::LogFormat;
use crate::report::Format;
use clap::builder::NonEmptyStringValueParser;
use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest `--users` for `demo` and `sim`.
pub const MAX_SIM_USERS: u32 = 1_000_000;

/// idrecon keeps Flow User IDs equal to IFS Directory IDs, with Azure AD as
/// the source of who people are.
#[derive(Debug, Parser)]
#[command(name = "idrecon", version, about, long_about = None)]
pub struct Cli {
    /// Config file (default: ./idrecon.toml; on Windows
    /// %ProgramData%\idrecon\idrecon.toml).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "IDRECON_CONFIG",
        default_value_os_t = crate::paths::default_config_path()
    )]
    pub config: PathBuf,

    /// Store URL (sqlite://PATH), overrides store.url.
    #[arg(long, global = true, value_name = "URL", value_parser = NonEmptyStringValueParser::new())]
    pub db: Option<String>,

    /// More log output (repeat for more).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (repeat for less).
    #[arg(short = 'q', long = "quiet", global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Log line format (default: text on a terminal, json otherwise).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One run now (report mode unless --apply).
    Reconcile(ReconcileArgs),
    /// Long-running worker: reconcile on schedule.cron, serve /healthz and /metrics.
    Run,
    /// Validate config, test connections and permissions, print the next scheduled times.
    Check,
    /// List past runs.
    History(HistoryArgs),
    /// Show a past run's report.
    Show(ShowArgs),
    #[cfg(feature = "sim")]
    /// Reconcile against the built-in simulator (no config, no network).
    Demo(DemoArgs),
    #[cfg(feature = "sim")]
    /// Run the simulator as a standalone server and print a config for it.
    Sim(SimArgs),
    /// Apply store migrations and exit.
    Migrate,
    /// Record what a run reads, to replay it with `sim --from`.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

/// `idrecon snapshot …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write what one run reads from Azure AD, IFS and Flow to a JSON file
    /// (nothing is stored, nothing is changed).
    Export(SnapshotExportArgs),
}

/// `idrecon snapshot export`.
#[derive(Debug, Args)]
pub struct SnapshotExportArgs {
    /// The JSON file to write.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace names and addresses by keyed pseudonyms (consistent across
    /// the three systems, so the drift patterns survive).
    #[arg(long)]
    pub pseudonymise: bool,
    /// The pseudonymisation key, read from this file (default: a random
    /// key that is never shown).
    #[arg(long, value_name = "PATH", requires = "pseudonymise")]
    pub key_file: Option<PathBuf>,
}

/// Formats of `history`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    Table,
    Json,
}

/// `idrecon reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Apply the planned fixes to Flow (default: report only).
    #[arg(long)]
    pub apply: bool,
    /// Report format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Mail the report as configured in [report].
    #[arg(long)]
    pub email: bool,
    /// Ignore the stored delta link: read every Azure user.
    #[arg(long)]
    pub full: bool,
    /// Only this person (UPN or Azure object ID).
    #[arg(long, value_name = "UPN_OR_ID", value_parser = NonEmptyStringValueParser::new())]
    pub user: Option<String>,
    /// Override fix.max_changes for this run.
    #[arg(long, value_name = "N")]
    pub max_changes: Option<u32>,
    /// Go on although a source lists more than safety.max_source_drop_percent
    /// fewer users than the last completed run (for this run only).
    #[arg(long)]
    pub allow_drop: bool,
    /// Exit code of a completed run with findings open (default
    /// report.findings_exit_code, else 2). 0 makes such a night green in
    /// schedulers that count every non-zero exit as failed; 1, 3 and 4 keep
    /// their meaning and may not be used.
    #[arg(long, value_name = "N", value_parser = parse_findings_exit_code)]
    pub findings_exit_code: Option<u8>,
    /// Terminal table: list every finding, not only the first 20 of each kind.
    #[arg(long)]
    pub all: bool,
}

fn parse_findings_exit_code(s: &str) -> Result<u8, String> {
    let n: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    crate::error::check_findings_exit_code(n)
}

/// `idrecon history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many runs, newest first.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<HistoryFormat>,
}

/// `idrecon show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id (see `idrecon history`).
    #[arg(value_name = "RUN_ID", value_parser = clap::value_parser!(i64).range(1..))]
    pub run_id: i64,
    /// Report format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Terminal table: list every finding, not only the first 20 of each kind.
    #[arg(long)]
    pub all: bool,
}

/// `idrecon demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of generated people.
    #[arg(long, value_name = "N", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..=MAX_SIM_USERS as i64))]
    pub users: u32,
    /// Random seed of the generated data.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Apply the fixes to the simulated Flow.
    #[arg(long)]
    pub apply: bool,
    /// Override fix.max_changes for this run (generated tenants are over
    /// the default safety limits, so `--apply` alone stops at them).
    #[arg(long, value_name = "N")]
    pub max_changes: Option<u32>,
    /// Report format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Terminal table: list every finding, not only the first 20 of each kind.
    #[arg(long)]
    pub all: bool,
}

/// `idrecon sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Number of generated people.
    #[arg(long, value_name = "N", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..=MAX_SIM_USERS as i64))]
    pub users: u32,
    /// Random seed of the generated data.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Faults to inject (format defined by the simulator).
    #[arg(long, value_name = "SPEC", value_parser = NonEmptyStringValueParser::new())]
    pub faults: Option<String>,
    /// Serve a file written by `snapshot export` instead of generated people.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["users", "seed"])]
    pub from: Option<PathBuf>,
    /// Register the app's certificate (PEM): client assertions must then be
    /// signed with its key.
    #[arg(long, value_name = "PEM")]
    pub certificate: Option<PathBuf>,
}

impl Cli {
    /// `-v` count minus `-q` count, clamped to the `i8` range.
    pub fn verbosity(&self) -> i8 {
        let v = i16::from(self.verbose) - i16::from(self.quiet);
        v.clamp(i16::from(i8::MIN), i16::from(i8::MAX)) as i8
    }

    /// Parses the process arguments; on error prints clap's message and
    /// exits with [`usage_exit_code`] (0 for --help/--version, 3 otherwise).
    pub fn parse_or_exit() -> Cli {
        Self::parse_from_or_exit(std::env::args_os())
    }

    /// Like [`Cli::parse_or_exit`] with the given arguments (first = program name).
    pub fn parse_from_or_exit<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(err) => {
                let code = usage_exit_code(&err);
                // Printing goes to stdout for help/version, stderr otherwise.
                let _ = err.print();
                std::process::exit(code.as_i32())
            }
        }
    }
}

/// The exit code for a clap error: `--help` and `--version` succeed (0);
/// every usage error is a configuration error (3), never 2 (which the
/// contract reserves for "findings open").
pub fn usage_exit_code(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::Ok,
        _ => ExitCode::Config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
