//! Comparisons the end-to-end tests make on reports (the set-up is
//! [`crate::app_support::TestApp`]).

use crate::app_support::{FindingId, TestApp};
use idrecon::report::Report;
use std::collections::BTreeSet;

/// The findings of a report as comparable ids.
pub fn finding_ids(report: &Report) -> BTreeSet<FindingId> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.cause, f.key()))
        .collect()
}

/// Panics with both differences listed line by line when the sets differ.
pub fn assert_same_findings(what: &str, got: &BTreeSet<FindingId>, want: &BTreeSet<FindingId>) {
    if got == want {
        return;
    }
    let show = |set: Vec<&FindingId>| {
        set.iter()
            .map(|(k, c, key)| {
                format!(
                    "    {} / {} / {key}",
                    k.as_str(),
                    c.map_or("-".to_string(), |c| format!("{c:?}"))
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let extra: Vec<_> = got.difference(want).collect();
    let missing: Vec<_> = want.difference(got).collect();
    panic!(
        "{what}: findings differ ({} found, {} expected)\n  found but not expected ({}):\n{}\n  expected but not found ({}):\n{}",
        got.len(),
        want.len(),
        extra.len(),
        show(extra),
        missing.len(),
        show(missing)
    );
}

/// The findings of a report by status (`new` / `persisting`).
pub fn keys_with_status(
    report: &Report,
    status: idrecon::model::FindingStatus,
) -> BTreeSet<String> {
    report
        .findings
        .iter()
        .filter(|f| f.status == status)
        .map(|f| f.key())
        .collect()
}

/// [`assert_same_findings`] against the generator's expectation: exactly
/// the expected findings, nothing more, nothing less.
pub fn assert_expected_findings(what: &str, app: &TestApp, report: &Report) {
    assert_same_findings(what, &finding_ids(report), &app.expected_ids());
}
