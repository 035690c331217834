//! `idrecon history`: past runs, newest first.

use super::common::{load_config, open_store, store_error, write_output};
use crate::cli::{Cli, HistoryArgs, HistoryFormat};
use crate::error::{AppError, ExitCode};
use crate::store::{RunRow, Store};
use chrono::SecondsFormat;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use std::io::IsTerminal;

pub async fn run(cli: &Cli, args: &HistoryArgs) -> Result<ExitCode, AppError> {
    let url = match &cli.db {
        Some(db) => db.clone(),
        None => load_config(cli)?.store.url,
    };
    let store = open_store(&url).await?;
    let runs = store
        .list_runs(args.limit)
        .await
        .map_err(|e| store_error(e, "reading the run history"))?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        HistoryFormat::Table
    } else {
        HistoryFormat::Json
    });
    let text = match format {
        HistoryFormat::Json => serde_json::to_string_pretty(&runs)
            .map(|s| s + "\n")
            .map_err(|e| AppError::Other(anyhow::anyhow!("encoding the history: {e}")))?,
        HistoryFormat::Table => table(&runs),
    };
    write_output(&text, None)?;
    Ok(ExitCode::Ok)
}

/// The history as a terminal table.
pub fn table(runs: &[RunRow]) -> String {
    if runs.is_empty() {
        return "No runs yet.\n".to_string();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(crate::report::table::terminal_width())
        .set_header([
            "run",
            "started (UTC)",
            "trigger",
            "mode",
            "status",
            "people",
            "findings",
            "new",
            "resolved",
            "applied",
            "failed",
            "mail",
        ]);
    for r in runs {
        let mail = match (&r.mail_status, &r.mail_error) {
            (Some(s), Some(e)) => format!("{} ({e})", s.as_str()),
            (Some(s), None) => s.as_str().to_string(),
            (None, _) => "-".to_string(),
        };
        let status = match &r.abort_reason {
            Some(reason) => format!("{}: {reason}", r.status.as_str()),
            None => r.status.as_str().to_string(),
        };
        t.add_row([
            r.id.to_string(),
            r.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            format!("{:?}", r.trigger).to_lowercase(),
            format!("{:?}", r.mode).to_lowercase(),
            status,
            r.people.to_string(),
            r.findings.to_string(),
            r.new.to_string(),
            r.resolved.to_string(),
            r.actions_applied.to_string(),
            r.actions_failed.to_string(),
            mail,
        ]);
    }
    format!("{t}\n")
}
