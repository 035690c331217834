//! The plain-text rendering for the text part of report mails: a summary,
//! the advice, then every finding and action as a short indented list.
//! No tables, so nothing is wider than the data itself.

use super::{labels, Report};
use std::fmt::Write as _;

/// Renders `report` as plain text (UTF-8, `\n` line ends, final newline).
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(1024 + 256 * report.findings.len());
    write_summary(&mut out, report);
    write_findings(&mut out, report);
    write_actions(&mut out, report);
    out
}

fn write_summary(out: &mut String, report: &Report) {
    // `write!` to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "{}", labels::headline(report));
    let _ = writeln!(out, "{}", labels::times(report));
    if let Some(banner) = labels::banner(report) {
        let _ = writeln!(out, "\n*** {banner} ***");
    }
    out.push_str("\nSources\n");
    for (name, source) in labels::sources(report) {
        let _ = writeln!(
            out,
            "  {name:<9} {:>8} users  {:<5}  {}",
            source.users,
            labels::read_kind(source),
            labels::completeness(source)
        );
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\nPeople {}, OK {}, findings {}",
        s.people, s.ok, s.findings
    );
    let _ = writeln!(
        out,
        "New {}, persisting {}, resolved since last run {}",
        s.new, s.persisting, s.resolved_since_last_run
    );
    if !s.by_kind.is_empty() || !s.by_cause.is_empty() {
        let _ = writeln!(
            out,
            "\n  {:<22} {:>6}    {:<16} {:>6}",
            "Kind", "Count", "Cause", "Count"
        );
        let mut kinds = s.by_kind.iter();
        let mut causes = s.by_cause.iter();
        loop {
            let (kind, cause) = (kinds.next(), causes.next());
            if kind.is_none() && cause.is_none() {
                break;
            }
            let left = kind
                .map(|(k, n)| format!("{:<22} {n:>6}", k.as_str()))
                .unwrap_or_default();
            let right = cause
                .map(|(c, n)| format!("{:<16} {n:>6}", c.as_str()))
                .unwrap_or_default();
            let line = format!("  {left:<29}    {right}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if !report.advice.is_empty() {
        out.push_str("\nAdvice\n");
        for advice in &report.advice {
            let _ = writeln!(out, "  - {advice}");
        }
    }
}

fn write_findings(out: &mut String, report: &Report) {
    if report.findings.is_empty() {
        out.push_str("\nNo findings.\n");
        return;
    }
    let _ = writeln!(out, "\nFindings ({})", report.findings.len());
    for (i, f) in report.findings.iter().enumerate() {
        let _ = write!(out, "\n{:>4}. {}", i + 1, f.kind);
        if let Some(cause) = f.cause {
            let _ = write!(out, " ({cause})");
        }
        let _ = writeln!(out, ", {}", f.status.as_str());
        let _ = writeln!(out, "      Person:   {}", labels::person(f));
        match (&f.ifs_identity, &f.ifs_directory_id) {
            (Some(identity), Some(dir)) => {
                let _ = writeln!(out, "      IFS:      {identity}, Directory ID {dir}");
            }
            (Some(identity), None) => {
                let _ = writeln!(out, "      IFS:      {identity}, no Directory ID");
            }
            (None, Some(dir)) => {
                let _ = writeln!(out, "      IFS:      Directory ID {dir}");
            }
            (None, None) => {}
        }
        if let Some(flow) = &f.flow_user_id {
            let _ = writeln!(out, "      Flow ID:  {flow}");
        }
        if let Some(expected) = &f.expected_flow_user_id {
            let _ = writeln!(out, "      Expected: {expected}");
        }
        let _ = writeln!(out, "      Action:   {}", labels::finding_action(f));
        let mut detail = f.detail.lines().map(str::trim).filter(|l| !l.is_empty());
        if let Some(first) = detail.next() {
            let _ = writeln!(out, "      Detail:   {first}");
            for more in detail {
                let _ = writeln!(out, "                {more}");
            }
        }
    }
}

fn write_actions(out: &mut String, report: &Report) {
    if report.actions.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nActions ({})", report.actions.len());
    for a in &report.actions {
        let _ = writeln!(
            out,
            "  - {}: {}",
            labels::action_change(a),
            a.status.as_str()
        );
        if let Some(error) = &a.error {
            let _ = writeln!(out, "    {error}");
        }
    }
}
