//! The CSV rendering: one row per finding, the contract's finding fields as
//! columns (header row first), RFC 4180 quoting, UTF-8 without BOM, an empty
//! cell for an absent value.
//!
//! # Spreadsheet formula injection
//!
//! This file is mailed to admins who open it in Excel or LibreOffice. A cell
//! that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is taken
//! as a formula there, and names and IDs come from three directories whose
//! users can often edit their own display name. [`render`] therefore follows
//! OWASP's advice and puts a single quote (`'`) before such a cell, so the
//! spreadsheet shows it as text. Only cells that would be read as a formula
//! change (no ordinary name, ID or enum value starts with those characters),
//! and the exact values are always in the JSON report; [`render_exact`]
//! writes them unchanged for scripts that need the raw CSV.

use super::{Report, ReportError};
use crate::model::Finding;

/// The header row, in this order: the finding fields of docs/contract.md.
pub const COLUMNS: &[&str] = &[
    "kind",
    "cause",
    "status",
    "aad_id",
    "upn",
    "display_name",
    "ifs_identity",
    "ifs_directory_id",
    "flow_user_id",
    "expected_flow_user_id",
    "action",
    "action_status",
    "detail",
];

/// Characters that make a spreadsheet read a cell as a formula (OWASP).
const FORMULA_TRIGGERS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// Renders the findings as CSV for spreadsheets: cells that a spreadsheet
/// would run as a formula get a leading `'` (see the module documentation).
pub fn render(report: &Report) -> Result<String, ReportError> {
    write(report, neutralise_formula)
}

/// Renders the findings as CSV with every value exactly as in the report
/// (no formula guard); for scripts, not for spreadsheets.
pub fn render_exact(report: &Report) -> Result<String, ReportError> {
    write(report, |s| s.into())
}

/// Prefixes `'` to a cell a spreadsheet would take as a formula.
fn neutralise_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_TRIGGERS) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

fn write<F>(report: &Report, guard: F) -> Result<String, ReportError>
where
    F: for<'a> Fn(&'a str) -> std::borrow::Cow<'a, str>,
{
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(128 * (report.findings.len() + 1)));
    writer.write_record(COLUMNS)?;
    for finding in &report.findings {
        let row = cells(finding);
        writer.write_record(row.iter().map(|c| guard(c).into_owned()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ReportError::CsvFlush(e.error().to_string()))?;
    // Every cell came from a Rust `String`, so this cannot fail; map it anyway.
    String::from_utf8(bytes).map_err(|e| ReportError::CsvFlush(e.to_string()))
}

/// The cells of one finding, in [`COLUMNS`] order; `""` for an absent value.
fn cells(f: &Finding) -> [&str; 13] {
    fn opt(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }
    // Keep in step with COLUMNS.
    [
        f.kind.as_str(),
        f.cause.map(|c| c.as_str()).unwrap_or(""),
        f.status.as_str(),
        opt(&f.aad_id),
        opt(&f.upn),
        opt(&f.display_name),
        opt(&f.ifs_identity),
        opt(&f.ifs_directory_id),
        opt(&f.flow_user_id),
        opt(&f.expected_flow_user_id),
        f.action.as_str(),
        f.action_status.map(|s| s.as_str()).unwrap_or(""),
        &f.detail,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_prefixes_only_formula_starts() {
        for bad in ["=1+1", "+46", "-x", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise_formula(bad), format!("'{bad}"));
        }
        for good in ["John Doe", "jdoe@contoso.com", "", "a=b", "O'Brien"] {
            assert_eq!(neutralise_formula(good), good);
        }
    }
}
