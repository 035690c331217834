//! The CSV rendering: contract columns, one row per finding, RFC 4180
//! quoting, UTF-8, empty cells for nulls, and the spreadsheet formula guard.

use crate::report_fixture;

use idrecon::model::Finding;
use idrecon::report::csv;

/// The CSV as a finding would read it without any guard.
fn expected_row(f: &Finding) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        f.kind.as_str().to_string(),
        f.cause.map(|c| c.as_str().to_string()).unwrap_or_default(),
        f.status.as_str().to_string(),
        opt(&f.aad_id),
        opt(&f.upn),
        opt(&f.display_name),
        opt(&f.ifs_identity),
        opt(&f.ifs_directory_id),
        opt(&f.flow_user_id),
        opt(&f.expected_flow_user_id),
        f.action.as_str().to_string(),
        f.action_status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        f.detail.clone(),
    ]
}

/// Reads CSV text back with the csv crate (a strict RFC 4180 reader).
fn read(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = ::csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.expect("a valid record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn completed_run_snapshot() {
    let text = csv::render(&report_fixture::completed()).expect("CSV");
    insta::assert_snapshot!("csv_completed", text);
}

#[test]
fn aborted_run_is_the_header_only() {
    let text = csv::render(&report_fixture::aborted()).expect("CSV");
    assert_eq!(text, format!("{}\r\n", csv::COLUMNS.join(",")));
    insta::assert_snapshot!("csv_aborted", text);
}

#[test]
fn header_is_the_contracts_finding_fields() {
    // The finding fields of the JSON report, all of them, in the same order.
    let json = serde_json::to_string(&Finding::new(idrecon::model::FindingKind::Conflict)).unwrap();
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(fields.len(), 13);
    assert_eq!(csv::COLUMNS.len(), fields.len());
    let positions: Vec<usize> = csv::COLUMNS
        .iter()
        .map(|c| {
            json.find(&format!("\"{c}\":"))
                .unwrap_or_else(|| panic!("{c} not in {json}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
    let (header, _) = read(&csv::render(&report_fixture::completed()).expect("CSV"));
    assert_eq!(header, csv::COLUMNS);
}

#[test]
fn exact_rendering_reads_back_to_every_finding() {
    let report = report_fixture::completed();
    let (_, rows) = read(&csv::render_exact(&report).expect("CSV"));
    assert_eq!(rows.len(), report.findings.len());
    for (row, finding) in rows.iter().zip(&report.findings) {
        assert_eq!(row, &expected_row(finding));
    }
}

#[test]
fn guarded_rendering_differs_only_in_formula_cells() {
    let report = report_fixture::completed();
    let (_, rows) = read(&csv::render(&report).expect("CSV"));
    assert_eq!(rows.len(), report.findings.len());
    let mut guarded = 0;
    for (row, finding) in rows.iter().zip(&report.findings) {
        for (cell, exact) in row.iter().zip(expected_row(finding)) {
            if exact.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                assert_eq!(cell, &format!("'{exact}"));
                guarded += 1;
            } else {
                assert_eq!(cell, &exact);
            }
        }
    }
    // The fixture has `=HYPERLINK(...)` and `-Admin, Service`.
    assert_eq!(guarded, 2);
    let sync = &rows[13];
    assert_eq!(sync[5], format!("'{}", report_fixture::FORMULA_NAME));
    assert_eq!(rows[6][5], "'-Admin, Service");
}

#[test]
fn quoting_follows_rfc_4180() {
    let text = csv::render(&report_fixture::completed()).expect("CSV");
    // Records end in CRLF.
    assert!(text.ends_with("\r\n"));
    assert!(text.starts_with("kind,cause,status,aad_id,upn,display_name,"));
    // Quotes doubled, the field quoted, the line break kept inside it.
    assert!(
        text.contains("\"two Flow users match: \"\"jdoe2\"\", \"\"j.doe\"\"\nresolve by hand\""),
        "{text}"
    );
    // A comma forces quotes; an apostrophe alone does not.
    assert!(text.contains(",\"'-Admin, Service\","), "{text}");
    assert!(text.contains(",Seán O'Brien,"), "{text}");
    // Quotes inside a formula name are doubled too.
    assert!(
        text.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\","),
        "{text}"
    );
    // Null cells are empty, not "null" or "none".
    assert!(text.contains("not_in_azure,,persisting,,,,,,old.user,,deactivate,skipped,"));
    assert!(!text.contains("null"));
}

#[test]
fn non_ascii_is_written_as_utf8_without_bom() {
    let text = csv::render(&report_fixture::completed()).expect("CSV");
    assert!(!text.starts_with('\u{feff}'));
    for name in [
        "Åsa Öberg",
        "李雷 (Li Lei)",
        "Zoë Müller",
        "Åsa.Öberg@contoso.se",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
}
