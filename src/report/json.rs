//! The JSON rendering: docs/contract.md's report, `schema_version` 1, pretty
//! printed with a final newline.
//!
//! [`Report`] is shaped after the contract, so this is serde_json over it;
//! `tests/report_json.rs` pins every key, its order and the enum values.

use super::{Report, ReportError};

/// Renders `report` as pretty JSON (two-space indent, keys in contract
/// order, `null` for absent values), ending with a newline.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let mut out = serde_json::to_string_pretty(report)?;
    out.push('\n');
    Ok(out)
}
