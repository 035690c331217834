//! `idrecon history`: past runs, newest first.

use super::common::{open_store, store_error, store_url, write_output};
use crate::cli::{Cli, HistoryArgs, HistoryFormat};
use crate::error::{AppError, ExitCode};
use crate::report::labels;
use crate::store::{RunRow, Store};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use std::io::IsTerminal;

pub async fn run(cli: &Cli, args: &HistoryArgs) -> Result<ExitCode, AppError> {
    let url = store_url(cli)?;
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

/// The history as a terminal table: eight columns, so it stays readable in
/// 80 columns (the JSON form has every field and the full abort reason).
pub fn table(runs: &[RunRow]) -> String {
    use crate::report::terminal::escape_controls;
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
            "how",
            "status",
            "people",
            "findings new/resolved",
            "actions applied/failed",
            "mail",
        ]);
    for r in runs {
        let mail = match (&r.mail_status, &r.mail_error) {
            (Some(s), Some(e)) => format!("{}: {}", s.as_str(), shorten(&escape_controls(e), 40)),
            (Some(s), None) => s.as_str().to_string(),
            (None, _) => "-".to_string(),
        };
        let status = match &r.abort_reason {
            Some(reason) => format!(
                "{}: {}",
                r.status.as_str(),
                shorten(&escape_controls(reason), 60)
            ),
            None => r.status.as_str().to_string(),
        };
        let mut how = format!("{} {}", labels::trigger(r.trigger), r.mode.as_str());
        if let Some(person) = &r.person {
            how.push_str(&format!(" (only {})", escape_controls(person)));
        }
        t.add_row([
            r.id.to_string(),
            r.started_at.format("%Y-%m-%d %H:%M").to_string(),
            how,
            status,
            r.people.to_string(),
            format!("{} ({}/{})", r.findings, r.new, r.resolved),
            format!("{}/{}", r.actions_applied, r.actions_failed),
            mail,
        ]);
    }
    format!("{t}\n")
}

/// The first `max` characters of `text`, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max && !text.contains('\n') {
        return line.to_string();
    }
    let cut: String = line.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn shorten_cuts_long_and_multi_line_text() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("abcdefghijkl", 5), "abcde…");
        assert_eq!(shorten("one\ntwo", 10), "one…");
        assert_eq!(shorten("åäöåäöåäö", 3), "åäö…");
    }
}
