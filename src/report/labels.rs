//! Wording shared by the human-readable renderings (table, text, HTML), so
//! that they describe a run in the same words.

use super::{Mode, Report, RunStatus, SourceSummary, Trigger};
use crate::model::{Action, Finding, FindingKind};
use chrono::SecondsFormat;
use std::collections::BTreeMap;

/// `completed`, `aborted` or `failed`.
pub(crate) fn status(status: RunStatus) -> &'static str {
    status.as_str()
}

/// `report mode` or `apply mode`.
pub(crate) fn mode(mode: Mode) -> &'static str {
    match mode {
        Mode::Report => "report mode",
        Mode::Apply => "apply mode",
    }
}

/// `manual` or `scheduled`.
pub(crate) fn trigger(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Manual => "manual",
        Trigger::Schedule => "scheduled",
    }
}

/// `idrecon run 42: completed (report mode, manual)`.
pub(crate) fn headline(report: &Report) -> String {
    format!(
        "idrecon run {}: {} ({}, {})",
        report.run_id,
        status(report.status),
        mode(report.mode),
        trigger(report.trigger)
    )
}

/// `Started 2026-11-26T02:00:00Z, finished 2026-11-26T02:00:07Z (7 s)`, or
/// `…, not finished` when the run has no end time.
pub(crate) fn times(report: &Report) -> String {
    let started = report.started_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    match report.finished_at {
        Some(finished) => {
            let secs = (finished - report.started_at).num_seconds().max(0);
            format!(
                "Started {started}, finished {} ({})",
                finished.to_rfc3339_opts(SecondsFormat::Secs, true),
                duration(secs)
            )
        }
        None => format!("Started {started}, not finished"),
    }
}

/// `7 s`, `2 min 5 s`, `1 h 3 min`.
pub(crate) fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The banner of a run that did not complete: `RUN ABORTED: reason`.
/// `None` for a completed run.
pub(crate) fn banner(report: &Report) -> Option<String> {
    let what = match report.status {
        RunStatus::Completed => return None,
        RunStatus::Aborted => "RUN ABORTED",
        RunStatus::Failed => "RUN FAILED",
    };
    Some(match report.abort_reason.as_deref().map(str::trim) {
        Some(reason) if !reason.is_empty() => format!("{what}: {reason}"),
        _ => format!("{what} (no reason recorded)"),
    })
}

/// How a source was read: `delta` for an Azure delta query, else `full`.
pub(crate) fn read_kind(source: &SourceSummary) -> &'static str {
    if source.delta == Some(true) {
        "delta"
    } else {
        "full"
    }
}

/// `complete` or `INCOMPLETE` (loud: an incomplete source stops a run).
pub(crate) fn completeness(source: &SourceSummary) -> &'static str {
    if source.complete {
        "complete"
    } else {
        "INCOMPLETE"
    }
}

/// The three sources with their display names, in report order.
pub(crate) fn sources(report: &Report) -> [(&'static str, &SourceSummary); 3] {
    [
        ("Azure AD", &report.sources.azure),
        ("IFS", &report.sources.ifs),
        ("Flow", &report.sources.flow),
    ]
}

/// Who a finding is about, for one line: display name and UPN when known,
/// else the IFS identity, else the Flow user ID.
pub(crate) fn person(f: &Finding) -> String {
    match (f.display_name.as_deref(), f.upn.as_deref()) {
        (Some(name), Some(upn)) => format!("{name} <{upn}>"),
        (Some(name), None) => name.to_string(),
        (None, Some(upn)) => upn.to_string(),
        (None, None) => match (f.ifs_identity.as_deref(), f.flow_user_id.as_deref()) {
            (Some(identity), _) => format!("IFS user {identity}"),
            (None, Some(flow)) => format!("Flow user {flow}"),
            (None, None) => String::from("(unknown)"),
        },
    }
}

/// `rename: planned`, `deactivate: skipped`, `none`.
pub(crate) fn finding_action(f: &Finding) -> String {
    match f.action_status {
        Some(s) => format!("{}: {}", f.action.as_str(), s.as_str()),
        None => f.action.as_str().to_string(),
    }
}

/// `rename jdoe → jdoe@contoso.com` or `deactivate olduser`.
pub(crate) fn action_change(a: &Action) -> String {
    match &a.new_flow_user_id {
        Some(to) => format!("{} {} → {}", a.kind.as_str(), a.flow_user_id, to),
        None => format!("{} {}", a.kind.as_str(), a.flow_user_id),
    }
}

/// The findings of `report` grouped by kind, in the kinds' order (the
/// order of the summary), each group in report order. Linear in the number
/// of findings.
pub(crate) fn findings_by_kind(report: &Report) -> Vec<(FindingKind, Vec<&Finding>)> {
    let mut groups: BTreeMap<FindingKind, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        groups.entry(f.kind).or_default().push(f);
    }
    groups.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(7), "7 s");
        assert_eq!(duration(125), "2 min 5 s");
        assert_eq!(duration(3780), "1 h 3 min");
    }
}
