//! The terminal table rendering: layout at 80 columns, the aborted banner,
//! summary and advice first, findings grouped by kind with the first 20 of
//! each (every one with `--all`), and linear cost for large reports.

use crate::report_fixture;

use idrecon::report::table;
use unicode_width::UnicodeWidthStr;

/// Lines wider than `width` display columns, with their widths.
fn too_wide(text: &str, width: usize) -> Vec<(usize, String)> {
    text.lines()
        .filter(|l| l.width() > width)
        .map(|l| (l.width(), l.to_string()))
        .collect()
}

#[test]
fn completed_run_at_80_columns() {
    let out = table::render(&report_fixture::completed(), 80);
    insta::assert_snapshot!("table_completed_80", out);
}

#[test]
fn aborted_run_at_80_columns() {
    let out = table::render(&report_fixture::aborted(), 80);
    insta::assert_snapshot!("table_aborted_80", out);
}

#[test]
fn no_line_is_wider_than_the_requested_width() {
    for width in [80usize, 60, 100, 132] {
        for report in [report_fixture::completed(), report_fixture::aborted()] {
            let out = table::render(&report, width as u16);
            let wide = too_wide(&out, width);
            assert!(wide.is_empty(), "width {width}: {wide:#?}\n{out}");
        }
    }
}

#[test]
fn widths_below_the_minimum_use_40_columns() {
    let out = table::render(&report_fixture::completed(), 10);
    assert!(too_wide(&out, 40).is_empty(), "{out}");
    assert!(out.lines().any(|l| l.width() > 30), "{out}");
}

#[test]
fn summary_comes_first_and_abort_reason_is_prominent() {
    let report = report_fixture::aborted();
    let out = table::render(&report, 80);
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(first, "idrecon run 43: aborted (report mode, scheduled)");
    let banner = out.find("RUN ABORTED: Flow source incomplete").expect(&out);
    let sources = out.find("Sources").expect(&out);
    assert!(banner < sources, "banner must precede the sources\n{out}");
    assert!(out.contains("INCOMPLETE"), "{out}");
    assert!(out.contains("No findings."), "{out}");
    assert!(!out.contains("Actions ("), "{out}");
}

#[test]
fn every_finding_and_action_is_listed_when_wide_enough() {
    let report = report_fixture::completed();
    let out = table::render(&report, 250);
    for f in &report.findings {
        for value in [
            &f.display_name,
            &f.upn,
            &f.flow_user_id,
            &f.expected_flow_user_id,
        ]
        .into_iter()
        .flatten()
        {
            assert!(out.contains(value.as_str()), "missing {value:?}\n{out}");
        }
        assert!(out.contains(f.kind.as_str()));
    }
    for a in &report.actions {
        assert!(
            out.contains(&a.flow_user_id),
            "missing {:?}",
            a.flow_user_id
        );
        if let Some(error) = &a.error {
            assert!(out.contains(error.as_str()), "missing {error:?}\n{out}");
        }
    }
    assert!(out.contains(&format!("Findings ({})", report.findings.len())));
    assert!(out.contains(&format!("Actions ({})", report.actions.len())));
    for status in ["planned", "applied", "failed", "skipped", "blocked"] {
        assert!(out.contains(status), "no action status {status}\n{out}");
    }
}

#[test]
fn with_all_every_one_of_a_hundred_thousand_findings_is_listed() {
    // Speed is measured in the benchmarks, not here; this pins completeness.
    let large = report_fixture::many(100_000);
    let out_large = table::render_with(&large, 120, table::Shown::All);
    let rows = out_large
        .lines()
        .filter(|l| l.contains("User Number "))
        .count();
    assert_eq!(rows, 100_000, "one row per finding");
    assert!(out_large.contains("User Number 99999"));
    assert!(
        out_large.contains("\nid_mismatch (100000)\n"),
        "group heading"
    );
    assert!(!out_large.contains("not shown"), "nothing left out");
}

#[test]
fn by_default_the_first_twenty_of_each_kind_and_how_to_see_the_rest() {
    let large = report_fixture::many(1_000);
    let out = table::render(&large, 120);
    assert_eq!(table::DEFAULT_FINDINGS_PER_KIND, 20);
    assert!(
        out.contains("User Number 19\n") || out.contains("User Number 19 "),
        "{out}"
    );
    assert!(
        !out.contains("User Number 20"),
        "the 21st is not listed\n{out}"
    );
    assert!(
        out.contains("\nid_mismatch (1000, first 20 shown)\n"),
        "{out}"
    );
    let more = out
        .lines()
        .find(|l| l.contains("more id_mismatch not shown"))
        .expect("a line saying how many more");
    assert!(
        more.starts_with("… 980 more id_mismatch not shown."),
        "{more}"
    );
    assert!(out.contains("--all"), "{out}");
    assert!(out.contains("--format html"), "{out}");
    assert!(out.contains("--format csv"), "{out}");
    assert!(
        out.lines().count() < 150,
        "readable: {} lines",
        out.lines().count()
    );
}

#[test]
fn summary_and_advice_come_before_sources_and_findings() {
    let out = table::render(&report_fixture::completed(), 100);
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle}\n{out}"))
    };
    assert!(at("\nSummary\n") < at("\nAdvice\n"));
    assert!(at("\nAdvice\n") < at("\nSources\n"));
    assert!(at("\nSources\n") < at("\nFindings ("));
}

#[test]
fn findings_are_grouped_by_kind_in_the_summary_order() {
    let report = report_fixture::completed();
    let out = table::render(&report, 120);
    let mut last = 0;
    for (kind, count) in &report.summary.by_kind {
        let heading = format!("\n{kind} ({count})\n");
        let at = out
            .find(&heading)
            .unwrap_or_else(|| panic!("{heading}\n{out}"));
        assert!(at > last, "{kind} out of order");
        last = at;
    }
}

#[test]
fn wide_terminals_get_one_column_per_field() {
    let out = table::render(&report_fixture::completed(), 140);
    let header = out
        .lines()
        .find(|l| l.contains("Expected Flow ID"))
        .expect("findings header");
    for column in ["Cause", "Status", "Person", "Flow ID", "Action"] {
        assert!(header.contains(column), "{column} missing in {header}");
    }
    assert!(out.contains("Åsa.Öberg@contoso.se"), "{out}");
    let compact = table::render(&report_fixture::completed(), 100);
    assert!(compact.contains("→ expected"), "{compact}");
    assert!(!compact.contains("Expected Flow ID"), "{compact}");
}
