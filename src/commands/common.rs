//! Pieces several commands share: loading the config with `--db`, opening
//! the store, writing output, mapping a report to its exit code.

use crate::cli::Cli;
use crate::config::{self, Config, ConfigError};
use crate::error::{AppError, ExitCode};
use crate::report::{table, Format, Report, RunStatus};
use crate::store::{SqliteStore, StoreError};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Loads the config file (and `IDRECON__…` overrides); `--db` replaces `store.url`.
pub fn load_config(cli: &Cli) -> Result<Config, AppError> {
    let env = config::process_env();
    let mut cfg = Config::load(&cli.config, &env)?;
    for warning in crate::file_safety::permission_warnings(&cli.config, &env) {
        tracing::warn!("{warning}");
    }
    if let Some(db) = db_override(cli)? {
        cfg.store.url = db;
    }
    Ok(cfg)
}

/// The store URL of commands that only need the store (`history`, `show`,
/// `migrate`): `--db` when given (then the rest of the config may be
/// absent), else `store.url` of the config.
pub fn store_url(cli: &Cli) -> Result<String, AppError> {
    match db_override(cli)? {
        Some(db) => Ok(db),
        None => Ok(load_config(cli)?.store.url),
    }
}

/// `--db`, checked.
fn db_override(cli: &Cli) -> Result<Option<String>, AppError> {
    match &cli.db {
        Some(db) => {
            config::validate_store_url(db).map_err(|m| ConfigError::invalid("--db", m))?;
            Ok(Some(db.clone()))
        }
        None => Ok(None),
    }
}

/// Opens (creating and migrating) the store at `url`.
pub async fn open_store(url: &str) -> Result<SqliteStore, AppError> {
    SqliteStore::open(url)
        .await
        .map_err(|e| store_error(e, "opening the store"))
}

/// Maps a store error to an application error (a held lock is exit 4).
pub fn store_error(e: StoreError, doing: &str) -> AppError {
    match e {
        StoreError::LockHeld { .. } => AppError::Aborted(e.to_string()),
        other => AppError::Other(anyhow::anyhow!("{doing}: {other}")),
    }
}

/// The report format to use: the one given, else a table on a terminal and JSON otherwise.
pub fn report_format(given: Option<Format>) -> Format {
    Format::or_default(given, std::io::stdout().is_terminal())
}

/// Writes `text` to `output` (a new owner-only file, see
/// [`crate::file_safety::write_private`]), or to stdout.
pub fn write_output(text: &str, output: Option<&Path>) -> Result<(), AppError> {
    match output {
        Some(path) => crate::file_safety::write_private(path, text.as_bytes())
            .map_err(|e| AppError::Other(anyhow::anyhow!("writing {}: {e}", path.display()))),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .or_else(|e| {
                    // A closed pipe (`idrecon … | head`) is not a failure.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| AppError::Other(anyhow::anyhow!("writing the report: {e}")))
        }
    }
}

/// Renders and writes a report; `all` lists every finding in the terminal
/// table (the other formats always have every finding).
pub fn emit_report(
    report: &Report,
    format: Format,
    output: Option<&Path>,
    all: bool,
) -> Result<(), AppError> {
    if format == Format::Json && output.is_none() {
        // Streamed: a large report is never held as one string.
        let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        return match crate::report::json::write(report, out) {
            Err(crate::report::ReportError::Json(e))
                if e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe) =>
            {
                // A closed pipe (`idrecon … | head`) is not a failure.
                Ok(())
            }
            Err(e) => Err(AppError::Other(anyhow::anyhow!("writing the report: {e}"))),
            Ok(()) => Ok(()),
        };
    }
    let text = match format {
        Format::Table => table::render_with(
            report,
            table::terminal_width(),
            table::Shown::from_all_flag(all),
        ),
        other => crate::report::render(report, other)
            .map_err(|e| AppError::Other(anyhow::anyhow!("rendering the report: {e}")))?,
    };
    write_output(&text, output)
}

/// The exit code of a finished run (docs/contract.md): 0 nothing left to fix,
/// 2 findings still open, 4 aborted for safety, 1 failed.
pub fn exit_code_for(report: &Report) -> ExitCode {
    match report.status {
        RunStatus::Aborted => ExitCode::Aborted,
        RunStatus::Failed => ExitCode::Failure,
        RunStatus::Completed => {
            if crate::job::open_findings(report) > 0 {
                ExitCode::FindingsOpen
            } else {
                ExitCode::Ok
            }
        }
    }
}
