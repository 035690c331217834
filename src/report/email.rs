//! What a mailed report says: its subject line and the already rendered
//! bodies and CSV attachment ([`MailContent`]).
//!
//! The renderers (`report::text`, `report::html`, `report::csv`) produce the
//! bodies; this module only assembles them with a subject and a file name, so
//! both mail transports (`mail::smtp`, `mail::graph`) send the same thing.

use crate::model::ActionStatus;
use crate::report::{Report, RunStatus};

/// The longest abort reason (in characters) a subject line carries.
const MAX_REASON_CHARS: usize = 100;

/// One report mail, ready to send: subject, plain-text and HTML bodies and
/// the CSV of the findings as an attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailContent {
    /// The subject line (UTF-8; the transports encode it as needed).
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, already escaped by the HTML renderer.
    pub html: String,
    /// The attachment's file name, e.g. `idrecon-run-42.csv`.
    pub csv_name: String,
    /// The attachment's content (UTF-8 CSV).
    pub csv: String,
}

impl MailContent {
    /// Assembles the mail of `report` from its rendered bodies: the subject
    /// comes from [`subject`], the attachment name from [`csv_file_name`].
    pub fn new(
        report: &Report,
        tenant_label: &str,
        text: String,
        html: String,
        csv: String,
    ) -> Self {
        MailContent {
            subject: subject(report, tenant_label),
            text,
            html,
            csv_name: csv_file_name(report),
            csv,
        }
    }
}

/// The attachment name for a report's CSV: `idrecon-run-{run_id}.csv`.
pub fn csv_file_name(report: &Report) -> String {
    format!("idrecon-run-{}.csv", report.run_id)
}

/// Whether an aborted run stopped at the change threshold
/// (`fix.max_changes` / `fix.max_change_percent`) rather than for an
/// incomplete source or a held lock.
///
/// A run aborted for an incomplete source computes no findings and plans no
/// actions; a threshold stop has planned actions, sends none of them (none
/// is `applied` or `failed`) and marks them `skipped` (docs/semantics.md §5).
pub fn is_threshold_stop(report: &Report) -> bool {
    report.status == RunStatus::Aborted
        && !report.actions.is_empty()
        && report
            .actions
            .iter()
            .all(|a| !matches!(a.status, ActionStatus::Applied | ActionStatus::Failed))
        && report
            .actions
            .iter()
            .any(|a| a.status == ActionStatus::Skipped)
}

/// Findings still open after this run: every finding whose action was not
/// applied.
pub fn open_findings(report: &Report) -> u64 {
    let fixed = fixed_findings(report);
    report.summary.findings.saturating_sub(fixed)
}

/// Findings fixed by this run (their action was applied).
fn fixed_findings(report: &Report) -> u64 {
    report
        .findings
        .iter()
        .filter(|f| f.action_status == Some(ActionStatus::Applied))
        .count() as u64
}

/// The subject line of a report mail, for example
/// `idrecon: 12 new mismatches (95 open) — contoso`,
/// `idrecon: run 42 ABORTED — contoso: Azure AD page 3 timed out`,
/// `idrecon: run 42 STOPPED at the change threshold, nothing applied — contoso`,
/// `idrecon: all IDs agree — contoso`.
///
/// An empty `tenant_label` leaves the ` — label` part out. Only the first
/// line of an abort reason is used, cut to 100 characters.
pub fn subject(report: &Report, tenant_label: &str) -> String {
    let label = tenant_label.trim();
    let tenant = if label.is_empty() {
        String::new()
    } else {
        format!(" \u{2014} {label}")
    };
    match report.status {
        RunStatus::Aborted if is_threshold_stop(report) => format!(
            "idrecon: run {} STOPPED at the change threshold, nothing applied{tenant}",
            report.run_id
        ),
        RunStatus::Aborted => format!(
            "idrecon: run {} ABORTED{tenant}: {}",
            report.run_id,
            short_reason(report.abort_reason.as_deref())
        ),
        RunStatus::Failed => format!(
            "idrecon: run {} FAILED{tenant}: {}",
            report.run_id,
            short_reason(report.abort_reason.as_deref())
        ),
        RunStatus::Completed => {
            let open = open_findings(report);
            let fixed = fixed_findings(report);
            if open == 0 {
                if fixed == 0 {
                    format!("idrecon: all IDs agree{tenant}")
                } else {
                    format!("idrecon: all IDs agree, {fixed} fixed{tenant}")
                }
            } else {
                let new = report.summary.new;
                let noun = if new == 1 { "mismatch" } else { "mismatches" };
                let fixed_part = if fixed == 0 {
                    String::new()
                } else {
                    format!(", {fixed} fixed")
                };
                format!("idrecon: {new} new {noun} ({open} open{fixed_part}){tenant}")
            }
        }
    }
}

/// The first line of a reason, trimmed and cut to [`MAX_REASON_CHARS`].
fn short_reason(reason: Option<&str>) -> String {
    let first_line = reason
        .and_then(|r| r.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no reason recorded");
    if first_line.chars().count() <= MAX_REASON_CHARS {
        first_line.to_string()
    } else {
        let cut: String = first_line.chars().take(MAX_REASON_CHARS - 1).collect();
        format!("{}\u{2026}", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, ActionKind, Finding, FindingKind};
    use crate::report::{Mode, Trigger};
    use chrono::{TimeZone, Utc};

    fn report(status: RunStatus) -> Report {
        let started = Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap();
        Report {
            status,
            ..Report::started(42, Trigger::Schedule, Mode::Report, started)
        }
    }

    fn action(status: ActionStatus) -> Action {
        Action {
            kind: ActionKind::Rename,
            flow_user_id: "jdoe".into(),
            new_flow_user_id: Some("jdoe@contoso.com".into()),
            status,
            error: None,
        }
    }

    #[test]
    fn findings_subject_counts_new_and_open() {
        let mut r = report(RunStatus::Completed);
        r.summary.findings = 95;
        r.summary.new = 12;
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: 12 new mismatches (95 open) \u{2014} contoso"
        );
        r.summary.new = 1;
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: 1 new mismatch (95 open) \u{2014} contoso"
        );
    }

    #[test]
    fn applied_fixes_are_not_open() {
        let mut r = report(RunStatus::Completed);
        r.mode = Mode::Apply;
        r.summary.findings = 3;
        r.summary.new = 3;
        for status in [
            Some(ActionStatus::Applied),
            Some(ActionStatus::Applied),
            None,
        ] {
            let mut f = Finding::new(FindingKind::IdMismatch);
            f.action_status = status;
            r.findings.push(f);
        }
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: 3 new mismatches (1 open, 2 fixed) \u{2014} contoso"
        );
        r.findings.pop();
        r.summary.findings = 2;
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: all IDs agree, 2 fixed \u{2014} contoso"
        );
    }

    #[test]
    fn nothing_open_says_all_agree() {
        let r = report(RunStatus::Completed);
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: all IDs agree \u{2014} contoso"
        );
        assert_eq!(subject(&r, "  "), "idrecon: all IDs agree");
    }

    #[test]
    fn aborted_subject_carries_first_line_of_reason() {
        let mut r = report(RunStatus::Aborted);
        r.abort_reason = Some("Azure AD: page 3 timed out\nsecond line".into());
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: run 42 ABORTED \u{2014} contoso: Azure AD: page 3 timed out"
        );
        r.abort_reason = None;
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: run 42 ABORTED \u{2014} contoso: no reason recorded"
        );
    }

    #[test]
    fn long_reason_is_cut_on_a_char_boundary() {
        let mut r = report(RunStatus::Failed);
        r.abort_reason = Some("ö".repeat(300));
        let s = subject(&r, "x");
        let reason = s.split_once(" x: ").unwrap().1;
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        assert!(reason.ends_with('\u{2026}'));
        assert!(s.starts_with("idrecon: run 42 FAILED \u{2014} x: "));
    }

    #[test]
    fn threshold_stop_is_told_apart_from_other_aborts() {
        let mut r = report(RunStatus::Aborted);
        r.abort_reason = Some("plan of 130 changes exceeds fix.max_changes = 25".into());
        r.actions = vec![action(ActionStatus::Skipped), action(ActionStatus::Blocked)];
        assert!(is_threshold_stop(&r));
        assert_eq!(
            subject(&r, "contoso"),
            "idrecon: run 42 STOPPED at the change threshold, nothing applied \u{2014} contoso"
        );
        // An abort without planned actions (incomplete source, lock held) is not one.
        r.actions.clear();
        assert!(!is_threshold_stop(&r));
        // Nor is an abort after some actions were sent.
        r.actions = vec![action(ActionStatus::Applied), action(ActionStatus::Skipped)];
        assert!(!is_threshold_stop(&r));
        // Nor a completed run with skipped deactivations.
        let mut c = report(RunStatus::Completed);
        c.actions = vec![action(ActionStatus::Skipped)];
        assert!(!is_threshold_stop(&c));
    }

    #[test]
    fn content_names_the_csv_after_the_run() {
        let r = report(RunStatus::Completed);
        let c = MailContent::new(&r, "contoso", "t".into(), "<p>h</p>".into(), "a,b\n".into());
        assert_eq!(c.csv_name, "idrecon-run-42.csv");
        assert_eq!(c.subject, subject(&r, "contoso"));
        assert_eq!(c.csv, "a,b\n");
    }
}
