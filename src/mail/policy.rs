//! Whether a run's report is mailed (`report.send`).
//!
//! | policy        | completed run mailed when …                                          | aborted / failed run |
//! |---------------|----------------------------------------------------------------------|----------------------|
//! | `always`      | always                                                               | mailed               |
//! | `on_findings` | findings exist (open or fixed this run)                              | mailed               |
//! | `on_change`   | new findings, findings resolved since the last run, actions applied  | mailed               |
//! |               | or failed, or the status differs from the previous finished run      |                      |
//! | `never`       | never                                                                | **not** mailed       |
//!
//! Aborted and failed runs (including stops at the change threshold) are
//! mailed under every policy but `never`: they mean the IDs were not checked
//! or not fixed, and the design promises admins are told (README.md, "Safety
//! rules", rule 3). `never` is taken literally: an operator who chose it watches the
//! exit code (4 for aborts) and `/metrics` instead, and a mail they asked not
//! to get would teach them to ignore idrecon's mails.

use crate::config::SendPolicy;
use crate::model::ActionStatus;
use crate::report::{Report, RunStatus};

/// Decides whether `report` is mailed under `policy`. `previous_status` is
/// the status of the previous finished run (`None` when there was none); it
/// only matters for `on_change`.
pub fn should_send(
    policy: SendPolicy,
    report: &Report,
    previous_status: Option<RunStatus>,
) -> bool {
    if policy == SendPolicy::Never {
        return false;
    }
    if report.status != RunStatus::Completed {
        return true;
    }
    match policy {
        SendPolicy::Never => false,
        SendPolicy::Always => true,
        SendPolicy::OnFindings => report.summary.findings > 0 || changed_flow(report),
        SendPolicy::OnChange => {
            report.summary.new > 0
                || report.summary.resolved_since_last_run > 0
                || changed_flow(report)
                || previous_status.is_some_and(|prev| prev != report.status)
        }
    }
}

/// Whether this run sent changes to Flow (applied or failed actions).
fn changed_flow(report: &Report) -> bool {
    report
        .actions
        .iter()
        .any(|a| matches!(a.status, ActionStatus::Applied | ActionStatus::Failed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, ActionKind};
    use crate::report::{Mode, Summary, Trigger};
    use chrono::{TimeZone, Utc};
    use SendPolicy::{Always, Never, OnChange, OnFindings};

    fn report(status: RunStatus, findings: u64, new: u64, resolved: u64) -> Report {
        let started = Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap();
        Report {
            status,
            summary: Summary {
                findings,
                new,
                persisting: findings - new,
                resolved_since_last_run: resolved,
                ..Summary::default()
            },
            ..Report::started(7, Trigger::Schedule, Mode::Report, started)
        }
    }

    fn with_action(mut r: Report, status: ActionStatus) -> Report {
        r.actions.push(Action {
            kind: ActionKind::Rename,
            flow_user_id: "a".into(),
            new_flow_user_id: Some("b".into()),
            status,
            error: None,
        });
        r
    }

    use RunStatus::{Aborted, Completed, Failed};

    /// (policy, report, previous status, expected, what the case is)
    #[test]
    fn table_of_cases() {
        let clean = report(Completed, 0, 0, 0);
        let persisting_only = report(Completed, 5, 0, 0);
        let with_new = report(Completed, 5, 2, 0);
        let resolved_only = report(Completed, 3, 0, 2);
        let aborted = report(Aborted, 0, 0, 0);
        let failed = report(Failed, 0, 0, 0);
        let threshold = with_action(report(Aborted, 40, 40, 0), ActionStatus::Skipped);
        let applied_all = with_action(report(Completed, 1, 0, 0), ActionStatus::Applied);
        let failed_action = with_action(report(Completed, 1, 0, 0), ActionStatus::Failed);

        let cases: Vec<(SendPolicy, &Report, Option<RunStatus>, bool, &str)> = vec![
            (
                Always,
                &clean,
                Some(Completed),
                true,
                "always mails a clean run",
            ),
            (Always, &aborted, None, true, "always mails an abort"),
            (Never, &with_new, None, false, "never mails findings"),
            (
                Never,
                &aborted,
                Some(Completed),
                false,
                "never means never, even aborts",
            ),
            (
                Never,
                &threshold,
                None,
                false,
                "never: threshold stop not mailed",
            ),
            (
                OnFindings,
                &clean,
                Some(Completed),
                false,
                "on_findings: nothing found",
            ),
            (
                OnFindings,
                &clean,
                Some(Aborted),
                false,
                "on_findings ignores status change",
            ),
            (
                OnFindings,
                &persisting_only,
                Some(Completed),
                true,
                "on_findings: persisting",
            ),
            (
                OnFindings,
                &with_new,
                None,
                true,
                "on_findings: new findings",
            ),
            (
                OnFindings,
                &aborted,
                Some(Aborted),
                true,
                "on_findings: abort mailed",
            ),
            (
                OnFindings,
                &failed,
                None,
                true,
                "on_findings: failure mailed",
            ),
            (
                OnFindings,
                &threshold,
                None,
                true,
                "on_findings: threshold stop mailed",
            ),
            (
                OnFindings,
                &applied_all,
                None,
                true,
                "on_findings: fixes applied",
            ),
            (
                OnChange,
                &clean,
                Some(Completed),
                false,
                "on_change: clean and unchanged",
            ),
            (
                OnChange,
                &clean,
                None,
                false,
                "on_change: first run, nothing found",
            ),
            (
                OnChange,
                &persisting_only,
                Some(Completed),
                false,
                "on_change: same findings",
            ),
            (
                OnChange,
                &with_new,
                Some(Completed),
                true,
                "on_change: new findings",
            ),
            (
                OnChange,
                &resolved_only,
                Some(Completed),
                true,
                "on_change: resolved",
            ),
            (
                OnChange,
                &clean,
                Some(Aborted),
                true,
                "on_change: recovered from abort",
            ),
            (
                OnChange,
                &persisting_only,
                Some(Failed),
                true,
                "on_change: recovered from failure",
            ),
            (
                OnChange,
                &aborted,
                Some(Aborted),
                true,
                "on_change: repeated abort still mailed",
            ),
            (
                OnChange,
                &failed,
                Some(Failed),
                true,
                "on_change: repeated failure mailed",
            ),
            (
                OnChange,
                &threshold,
                Some(Completed),
                true,
                "on_change: threshold stop mailed",
            ),
            (
                OnChange,
                &applied_all,
                Some(Completed),
                true,
                "on_change: Flow was changed",
            ),
            (
                OnChange,
                &failed_action,
                Some(Completed),
                true,
                "on_change: a change failed",
            ),
        ];
        for (policy, r, prev, expected, what) in cases {
            assert_eq!(
                should_send(policy, r, prev),
                expected,
                "{what} ({policy:?}, status {:?}, previous {prev:?})",
                r.status
            );
        }
    }
}
