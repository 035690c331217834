//! The terminal rendering: the summary and the advice first, then the
//! sources, the findings grouped by kind and the actions as tables
//! (comfy-table), wrapped to fit the given width.
//!
//! A terminal is read by a person, so each kind shows its first
//! [`DEFAULT_FINDINGS_PER_KIND`] findings and a line saying how many more
//! there are and how to see them all (`--all`, or `--format html` / `csv`).
//! Rows are built once and laid out by comfy-table in one pass, so 100 000
//! findings with `--all` cost linear time and memory.

use super::{labels, Report};
use crate::model::{Finding, FindingKind};
use comfy_table::presets::{NOTHING, UTF8_FULL, UTF8_FULL_CONDENSED};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use strum::IntoEnumIterator;

/// Width used when standard output is not a terminal.
pub const DEFAULT_WIDTH: u16 = 80;

/// Narrowest width the layout is built for; smaller requests use this.
const MIN_WIDTH: u16 = 40;

/// The width of the terminal on standard output, or [`DEFAULT_WIDTH`] when
/// standard output is not a terminal (or its size cannot be read).
pub fn terminal_width() -> u16 {
    Table::new().width().unwrap_or(DEFAULT_WIDTH)
}

/// Terminals at least this wide get one column per finding field; narrower
/// ones get the compact layout that stacks related fields in one cell.
pub const WIDE_LAYOUT_MIN_WIDTH: u16 = 120;

/// How many findings of each kind the terminal shows unless `--all`.
pub const DEFAULT_FINDINGS_PER_KIND: usize = 20;

/// How many findings of each kind to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// The first N of each kind, then a line saying how many more there are.
    FirstOfEachKind(usize),
    /// Every finding (`--all`).
    All,
}

impl Shown {
    /// `--all` given or not.
    pub fn from_all_flag(all: bool) -> Shown {
        if all {
            Shown::All
        } else {
            Shown::FirstOfEachKind(DEFAULT_FINDINGS_PER_KIND)
        }
    }
}

/// Renders `report` for a terminal `width` columns wide (at least 40), with
/// the first [`DEFAULT_FINDINGS_PER_KIND`] findings of each kind.
pub fn render(report: &Report, width: u16) -> String {
    render_with(
        report,
        width,
        Shown::FirstOfEachKind(DEFAULT_FINDINGS_PER_KIND),
    )
}

/// Renders `report` for a terminal `width` columns wide (at least 40),
/// listing the findings `shown` says, with control characters in service
/// text shown as escapes (`\u{1b}`). Text is wrapped so that no line is
/// wider than `width` display columns.
pub fn render_with(report: &Report, width: u16, shown: Shown) -> String {
    // Names and errors from the services never reach the terminal raw.
    let report = &*super::terminal::safe_report(report);
    let width = width.max(MIN_WIDTH);
    let listed = match shown {
        Shown::All => report.findings.len(),
        Shown::FirstOfEachKind(n) => report.findings.len().min(n * FindingKind::iter().count()),
    };
    let mut out = String::with_capacity(2048 + 320 * listed);

    push_wrapped(&mut out, &labels::headline(report), width);
    push_wrapped(&mut out, &labels::times(report), width);

    if let Some(banner) = labels::banner(report) {
        out.push('\n');
        push_table(&mut out, &banner_table(&banner, width));
    }

    out.push_str("\nSummary\n");
    push_table(&mut out, &summary_table(report, width));
    if !report.summary.by_kind.is_empty() || !report.summary.by_cause.is_empty() {
        push_table(&mut out, &breakdown_table(report, width));
    }

    if !report.advice.is_empty() {
        out.push_str("\nAdvice\n");
        push_table(&mut out, &advice_table(report, width));
    }

    out.push_str("\nSources\n");
    push_table(&mut out, &sources_table(report, width));

    if report.findings.is_empty() {
        out.push_str("\nNo findings.\n");
    } else {
        out.push_str(&format!("\nFindings ({})\n", report.findings.len()));
        for (kind, findings) in labels::findings_by_kind(report) {
            let limit = match shown {
                Shown::All => findings.len(),
                Shown::FirstOfEachKind(n) => n.min(findings.len()),
            };
            let heading = if limit < findings.len() {
                format!("\n{kind} ({}, first {limit} shown)\n", findings.len())
            } else {
                format!("\n{kind} ({})\n", findings.len())
            };
            out.push_str(&heading);
            let rows = &findings[..limit];
            let table = if width >= WIDE_LAYOUT_MIN_WIDTH {
                findings_table_wide(rows, width)
            } else {
                findings_table_compact(rows, width)
            };
            push_table(&mut out, &table);
            let more = findings.len() - limit;
            if more > 0 {
                push_wrapped(
                    &mut out,
                    &format!(
                        "… {more} more {kind} not shown. See every finding with --all, \
                         or --format html or --format csv."
                    ),
                    width,
                );
            }
        }
    }

    if !report.actions.is_empty() {
        out.push_str(&format!("\nActions ({})\n", report.actions.len()));
        push_table(&mut out, &actions_table(report, width));
    }
    out
}

/// Appends `table` line by line (no trailing blanks), each ending in `\n`.
fn push_table(out: &mut String, table: &Table) {
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Appends `text` wrapped at `width` (comfy-table does the wrapping).
fn push_wrapped(out: &mut String, text: &str, width: u16) {
    let mut table = new_table(width);
    table.load_preset(NOTHING);
    table.add_row(vec![text]);
    if let Some(column) = table.column_mut(0) {
        column.set_padding((0, 0));
    }
    push_table(out, &table);
}

/// A table with the house style, wrapping its content to `width`.
fn new_table(width: u16) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width);
    table
}

/// Like [`new_table`], without lines between rows (for one-line rows).
fn new_condensed_table(width: u16) -> Table {
    let mut table = new_table(width);
    table.load_preset(UTF8_FULL_CONDENSED);
    table
}

fn banner_table(banner: &str, width: u16) -> Table {
    let mut table = new_table(width);
    table.load_preset("║║══╞═╪╡┆╌┼├┤╦╩╔╗╚╝");
    table.add_row(vec![Cell::new(banner)]);
    table
}

fn sources_table(report: &Report, width: u16) -> Table {
    let mut table = new_condensed_table(width);
    table.set_header(vec!["Source", "Users", "Read", "Complete"]);
    for (name, source) in labels::sources(report) {
        table.add_row(vec![
            Cell::new(name),
            Cell::new(source.users).set_alignment(CellAlignment::Right),
            Cell::new(labels::read_kind(source)),
            Cell::new(labels::completeness(source)),
        ]);
    }
    table
}

fn summary_table(report: &Report, width: u16) -> Table {
    let s = &report.summary;
    let mut table = new_condensed_table(width);
    table.set_header(vec![
        "People",
        "OK",
        "Findings",
        "New",
        "Persisting",
        "Resolved",
    ]);
    table.add_row(
        [
            s.people,
            s.ok,
            s.findings,
            s.new,
            s.persisting,
            s.resolved_since_last_run,
        ]
        .map(|n| Cell::new(n).set_alignment(CellAlignment::Right)),
    );
    table
}

/// Findings by kind and by cause, side by side.
fn breakdown_table(report: &Report, width: u16) -> Table {
    let s = &report.summary;
    let mut table = new_condensed_table(width);
    table.set_header(vec!["Kind", "Count", "Cause", "Count"]);
    let mut kinds = s.by_kind.iter();
    let mut causes = s.by_cause.iter();
    loop {
        let kind = kinds.next();
        let cause = causes.next();
        if kind.is_none() && cause.is_none() {
            break;
        }
        let pair = |entry: Option<(String, u64)>| match entry {
            Some((name, n)) => [
                Cell::new(name),
                Cell::new(n).set_alignment(CellAlignment::Right),
            ],
            None => [Cell::new(""), Cell::new("")],
        };
        let [k, kn] = pair(kind.map(|(k, n)| (k.to_string(), *n)));
        let [c, cn] = pair(cause.map(|(c, n)| (c.to_string(), *n)));
        table.add_row(vec![k, kn, c, cn]);
    }
    table
}

fn advice_table(report: &Report, width: u16) -> Table {
    let mut table = new_table(width);
    table.load_preset(NOTHING);
    for advice in &report.advice {
        table.add_row(vec!["•", advice.as_str()]);
    }
    if let Some(bullet) = table.column_mut(0) {
        bullet.set_padding((2, 1));
    }
    if let Some(text) = table.column_mut(1) {
        text.set_padding((0, 0));
    }
    table
}

/// One column per field: cause, status, person, Flow ID, expected Flow ID,
/// action (the kind is the group's heading).
fn findings_table_wide(findings: &[&Finding], width: u16) -> Table {
    let mut table = new_table(width);
    table.set_header(vec![
        "Cause",
        "Status",
        "Person",
        "Flow ID",
        "Expected Flow ID",
        "Action",
    ]);
    for f in findings {
        table.add_row(vec![
            f.cause.map(|c| c.as_str()).unwrap_or(""),
            f.status.as_str(),
            &person_cell(f),
            f.flow_user_id.as_deref().unwrap_or(""),
            f.expected_flow_user_id.as_deref().unwrap_or(""),
            &action_cell(f),
        ]);
    }
    table
}

/// Four columns for narrow terminals: cause and status, person, Flow ID
/// with the expected one, action with its status.
fn findings_table_compact(findings: &[&Finding], width: u16) -> Table {
    let mut table = new_table(width);
    table.set_header(vec![
        "Cause\nstatus",
        "Person",
        "Flow ID\n→ expected",
        "Action",
    ]);
    for f in findings {
        let finding = match f.cause {
            Some(cause) => format!("{}\n{}", cause, f.status.as_str()),
            None => f.status.as_str().to_string(),
        };
        let ids = match (
            f.flow_user_id.as_deref(),
            f.expected_flow_user_id.as_deref(),
        ) {
            (Some(flow), Some(expected)) => format!("{flow}\n→ {expected}"),
            (Some(flow), None) => flow.to_string(),
            (None, Some(expected)) => format!("(none)\n→ {expected}"),
            (None, None) => String::new(),
        };
        table.add_row(vec![finding, person_cell(f), ids, action_cell(f)]);
    }
    table
}

/// Display name over UPN, or the best other name of the person.
fn person_cell(f: &Finding) -> String {
    match (f.display_name.as_deref(), f.upn.as_deref()) {
        (Some(name), Some(upn)) => format!("{name}\n{upn}"),
        _ => labels::person(f),
    }
}

/// The action over its status.
fn action_cell(f: &Finding) -> String {
    match f.action_status {
        Some(status) => format!("{}\n{}", f.action.as_str(), status.as_str()),
        None => f.action.as_str().to_string(),
    }
}

fn actions_table(report: &Report, width: u16) -> Table {
    let mut table = new_table(width);
    table.set_header(vec!["Kind", "From", "To", "Status", "Error"]);
    for a in &report.actions {
        table.add_row(vec![
            a.kind.as_str(),
            &a.flow_user_id,
            a.new_flow_user_id.as_deref().unwrap_or(""),
            a.status.as_str(),
            a.error.as_deref().unwrap_or(""),
        ]);
    }
    table
}
