//! The JSON rendering: docs/contract.md's report, `schema_version` 1, pretty
//! printed with a final newline.
//!
//! [`Report`] is shaped after the contract, so this is serde_json over it;
//! `tests/report_json.rs` pins every key, its order and the enum values.
//! [`write`] streams it to a writer (a report of a million people is about
//! 100 MB, never held as one string); [`render`] is the same bytes as a string.

use super::{Report, ReportError};
use std::io::Write;

/// Renders `report` as pretty JSON (two-space indent, keys in contract
/// order, `null` for absent values), ending with a newline.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let mut out = serde_json::to_string_pretty(report)?;
    out.push('\n');
    Ok(out)
}

/// Writes exactly what [`render`] returns to `out`, as it is serialised.
/// `out` should be buffered; it is flushed at the end.
pub fn write(report: &Report, mut out: impl Write) -> Result<(), ReportError> {
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n").map_err(serde_json::Error::io)?;
    out.flush().map_err(serde_json::Error::io)?;
    Ok(())
}
