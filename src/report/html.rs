//! The HTML rendering: one self-contained page (embedded CSS, no scripts,
//! no external resources) built from simple tables, so it reads the same in
//! a browser and in mail clients such as Outlook. The advice comes first
//! after the figures; the findings are grouped by kind, each group a
//! `<details>` element that collapses without JavaScript; tables take the
//! page width and wrap long values, so the page reads at 1,280 px without
//! horizontal scrolling.
//!
//! The page is a minijinja template (`templates/report.html`, compiled into
//! the binary) with HTML auto-escaping: every value from the directories is
//! escaped, so a display name like `<script>` stays text.

use super::{labels, Report, ReportError};
use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;

const TEMPLATE_NAME: &str = "report.html";
const TEMPLATE: &str = include_str!("templates/report.html");

/// One summary figure at the top of the page.
#[derive(Serialize)]
struct Card {
    label: &'static str,
    value: u64,
}

/// One row of the by-kind or by-cause table.
#[derive(Serialize)]
struct Count {
    name: &'static str,
    count: u64,
}

/// One row of the sources table.
#[derive(Serialize)]
struct SourceRow {
    name: &'static str,
    users: u64,
    read: &'static str,
    complete: bool,
    completeness: &'static str,
}

/// The findings of one kind: a collapsible `<details>` group.
#[derive(Serialize)]
struct Group<'a> {
    kind: &'static str,
    /// Small groups start open; large ones start collapsed, so the page
    /// opens on the summary. Readers without `<details>` (Outlook) show all.
    open: bool,
    findings: Vec<&'a crate::model::Finding>,
}

/// Groups of at most this many findings start open.
const OPEN_GROUP_MAX: usize = 25;

/// Renders `report` as a complete HTML document (UTF-8, final newline).
pub fn render(report: &Report) -> Result<String, ReportError> {
    let mut env = Environment::new();
    // `.html` turns on HTML auto-escaping; strict undefined turns a template
    // mistake into an error instead of an empty cell.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    let template = env.get_template(TEMPLATE_NAME)?;

    let s = &report.summary;
    let cards = [
        ("People", s.people),
        ("OK", s.ok),
        ("Findings", s.findings),
        ("New", s.new),
        ("Persisting", s.persisting),
        ("Resolved", s.resolved_since_last_run),
    ]
    .map(|(label, value)| Card { label, value });
    let sources = labels::sources(report).map(|(name, source)| SourceRow {
        name,
        users: source.users,
        read: labels::read_kind(source),
        complete: source.complete,
        completeness: labels::completeness(source),
    });

    // In the report's order (the enums' order), which a map would not keep.
    let by_kind: Vec<Count> = s
        .by_kind
        .iter()
        .map(|(k, n)| Count {
            name: k.as_str(),
            count: *n,
        })
        .collect();
    let by_cause: Vec<Count> = s
        .by_cause
        .iter()
        .map(|(c, n)| Count {
            name: c.as_str(),
            count: *n,
        })
        .collect();

    let groups: Vec<Group> = labels::findings_by_kind(report)
        .into_iter()
        .map(|(kind, findings)| Group {
            kind: kind.as_str(),
            open: findings.len() <= OPEN_GROUP_MAX,
            findings,
        })
        .collect();

    let mut html = template.render(context! {
        groups => groups,
        report => report,
        headline => labels::headline(report),
        times => labels::times(report),
        banner => labels::banner(report),
        cards => cards,
        sources => sources,
        by_kind => by_kind,
        by_cause => by_cause,
    })?;
    if !html.ends_with('\n') {
        html.push('\n');
    }
    Ok(html)
}
