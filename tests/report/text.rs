//! The plain-text rendering for the text part of report mails.

use crate::report_fixture;

use idrecon::report::text;
use unicode_width::UnicodeWidthStr;

#[test]
fn completed_run_snapshot() {
    insta::assert_snapshot!("text_completed", text::render(&report_fixture::completed()));
}

#[test]
fn aborted_run_snapshot() {
    insta::assert_snapshot!("text_aborted", text::render(&report_fixture::aborted()));
}

#[test]
fn lines_fit_in_80_columns_when_the_data_does() {
    // The fixture's values are short; only an advice sentence is long, and
    // the layout itself never adds width beyond a short label.
    for report in [report_fixture::completed(), report_fixture::aborted()] {
        let out = text::render(&report);
        for line in out.lines() {
            let longest_value = report.advice.iter().any(|a| line.contains(a.as_str()))
                || report
                    .abort_reason
                    .iter()
                    .any(|r| line.contains(r.as_str()));
            if !longest_value {
                assert!(line.width() <= 80, "{} columns: {line}", line.width());
            }
        }
        assert!(!out.contains('│') && !out.contains('┌'), "no table borders");
    }
}

#[test]
fn every_finding_and_action_is_listed() {
    let report = report_fixture::completed();
    let out = text::render(&report);
    assert!(out.starts_with("idrecon run 42: completed (apply mode, manual)\n"));
    assert!(out.contains("Findings (14)"));
    for (i, f) in report.findings.iter().enumerate() {
        assert!(
            out.contains(&format!("{:>4}. {}", i + 1, f.kind)),
            "finding {i}"
        );
        for value in [
            &f.display_name,
            &f.upn,
            &f.flow_user_id,
            &f.expected_flow_user_id,
        ]
        .into_iter()
        .flatten()
        {
            assert!(out.contains(value.as_str()), "missing {value:?}");
        }
    }
    // A multi-line detail keeps its lines, indented under the label.
    assert!(out.contains(
        "      Detail:   two Flow users match: \"jdoe2\", \"j.doe\"\n                resolve by hand\n"
    ));
    assert!(out.contains("Actions (7)"));
    assert!(out.contains(
        "  - rename åsa.öberg@contoso.se → Åsa.Öberg@contoso.se: failed\n    Flow answered 500: {\"error\":\"internal\"}\n"
    ));
    assert!(out.contains("  - deactivate leaver@contoso.com: applied\n"));
}

#[test]
fn aborted_run_leads_with_the_reason() {
    let out = text::render(&report_fixture::aborted());
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("idrecon run 43: aborted (report mode, scheduled)")
    );
    let banner = out
        .find("*** RUN ABORTED: Flow source incomplete")
        .expect(&out);
    assert!(banner < out.find("Sources").expect(&out));
    assert!(out.contains("No findings."));
    assert!(out.contains("INCOMPLETE"));
}

#[test]
fn failed_run_without_reason_says_so() {
    let mut report = report_fixture::aborted();
    report.status = idrecon::report::RunStatus::Failed;
    report.abort_reason = None;
    let out = text::render(&report);
    assert!(
        out.contains("*** RUN FAILED (no reason recorded) ***"),
        "{out}"
    );
}
