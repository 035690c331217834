//! The HTML rendering: self-contained, auto-escaped, with summary cards,
//! advice, findings, actions and the aborted banner.

use crate::report_fixture;

use idrecon::report::html;

fn rendered(report: &idrecon::report::Report) -> String {
    html::render(report).expect("the HTML rendering")
}

#[test]
fn completed_run_snapshot() {
    insta::assert_snapshot!("html_completed", rendered(&report_fixture::completed()));
}

#[test]
fn aborted_run_snapshot() {
    insta::assert_snapshot!("html_aborted", rendered(&report_fixture::aborted()));
}

#[test]
fn script_in_a_display_name_is_escaped() {
    let page = rendered(&report_fixture::completed());
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "escaped name missing"
    );
    assert!(!page.contains(report_fixture::SCRIPT_NAME));
    assert!(!page.to_ascii_lowercase().contains("<script"));
    // Quotes and apostrophes are escaped too (safe inside attributes).
    assert!(page.contains("Seán O&#x27;Brien"));
    assert!(page.contains("=HYPERLINK(&quot;http:&#x2f;&#x2f;evil.example&quot;"));
}

#[test]
fn page_is_self_contained() {
    for report in [report_fixture::completed(), report_fixture::aborted()] {
        let page = rendered(&report).to_ascii_lowercase();
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<meta charset=\"utf-8\">"));
        for external in [
            "src=", "href=", "<link", "@import", "url(", "<script", "<iframe",
        ] {
            assert!(!page.contains(external), "found {external:?}");
        }
        assert!(page.trim_end().ends_with("</html>"));
    }
}

#[test]
fn tables_are_balanced() {
    let page = rendered(&report_fixture::completed());
    for tag in ["table", "tr", "td", "th", "ul", "li", "h2"] {
        let open =
            page.matches(&format!("<{tag}>")).count() + page.matches(&format!("<{tag} ")).count();
        let close = page.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}> opened {open} times, closed {close}");
    }
}

#[test]
fn every_finding_and_action_appears() {
    let report = report_fixture::completed();
    let page = rendered(&report);
    // One row per finding and action, plus the header rows.
    let findings_part = &page[page.find("Findings (14)").expect("findings heading")..];
    let (findings_part, actions_part) = findings_part
        .split_once("Actions (7)")
        .expect("actions heading after findings");
    // One header row per kind group, one row per finding.
    let groups = report.summary.by_kind.len();
    assert_eq!(findings_part.matches("<tr>").count(), groups + 14);
    assert_eq!(actions_part.matches("<tr>").count(), 1 + 7);
    for f in &report.findings {
        assert!(findings_part.contains(f.kind.as_str()));
        if let Some(flow) = &f.flow_user_id {
            let escaped = flow.replace('\'', "&#x27;");
            assert!(findings_part.contains(&escaped), "{flow} missing");
        }
    }
    for status in ["planned", "applied", "failed", "skipped", "blocked"] {
        assert!(actions_part.contains(&format!("class=\"st-{status}\">{status}<")));
    }
    assert!(page.contains("Åsa Öberg") && page.contains("李雷 (Li Lei)"));
    assert!(page.contains("1 of 5 mismatches are Flow IDs without the domain"));
    // A null is an empty cell, never the word "none" from the template engine.
    assert!(!page.contains(">none<br>") && !page.contains("<td class=\"code\">none</td>"));
}

#[test]
fn aborted_run_shows_the_banner_and_no_findings() {
    let page = rendered(&report_fixture::aborted());
    let banner = page
        .find("RUN ABORTED: Flow source incomplete: GET &#x2f;users answered 503 on page 3 (cursor &quot;c3&quot;)")
        .expect("banner with the escaped reason");
    assert!(banner < page.find("Sources").expect("sources heading"));
    assert!(page.contains("No findings."));
    assert!(page.contains("INCOMPLETE"));
    assert!(!page.contains("Actions ("));
    let completed = rendered(&report_fixture::completed());
    assert!(!completed.contains("RUN ABORTED") && !completed.contains("RUN FAILED"));
}

#[test]
fn findings_are_grouped_by_kind_in_collapsible_details() {
    let report = report_fixture::completed();
    let page = rendered(&report);
    assert_eq!(
        page.matches("<details class=\"group\"").count(),
        report.summary.by_kind.len()
    );
    assert_eq!(
        page.matches("</details>").count(),
        report.summary.by_kind.len()
    );
    let mut last = 0;
    for (kind, count) in &report.summary.by_kind {
        let summary = format!("<span class=\"code\">{kind}</span> ({count})</summary>");
        let at = page.find(&summary).unwrap_or_else(|| panic!("{summary}"));
        assert!(at > last, "{kind} out of order");
        last = at;
    }
    assert!(!page.contains("<script"), "collapsing needs no JavaScript");
}

#[test]
fn large_groups_start_collapsed_small_ones_open() {
    let page = rendered(&report_fixture::many(100));
    assert!(page.contains("<details class=\"group\" id=\"kind-id_mismatch\" style="));
    let small = rendered(&report_fixture::completed());
    assert!(small.contains("<details class=\"group\" id=\"kind-id_mismatch\" open style="));
}

#[test]
fn advice_comes_before_sources_and_findings() {
    let page = rendered(&report_fixture::completed());
    let advice = page.find(">Advice</h2>").expect("advice heading");
    assert!(advice < page.find(">Sources</h2>").expect("sources heading"));
    assert!(advice < page.find(">Findings (").expect("findings heading"));
}

#[test]
fn tables_take_the_page_width_and_wrap_long_values() {
    // Readable at 1,280 px: the findings and actions tables are 100 % wide
    // and cells break long IDs (the browser test measures the real width).
    let page = rendered(&report_fixture::completed());
    assert!(page.contains("td.id, td.detail { overflow-wrap: anywhere; }"));
    assert!(
        page.contains("<td class=\"code id\">"),
        "IDs may break anywhere"
    );
    let findings = &page[page.find(">Findings (").expect("findings")..];
    for table in findings.split("<table").skip(1) {
        let tag = &table[..table.find('>').expect("tag end")];
        assert!(tag.contains("width:100%"), "{tag}");
    }
    assert!(!page.contains("nowrap"), "nothing forbids wrapping");
}
