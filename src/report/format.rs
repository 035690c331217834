//! The output formats of a report (`--format table|json|csv|html`) and the
//! one entry point that renders a report in any of them.

use super::{csv, html, json, table, Report};
use std::str::FromStr;
use strum::IntoEnumIterator;

/// A rendering of a [`Report`], as chosen with `--format`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    strum::Display,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
#[strum(serialize_all = "lowercase")]
pub enum Format {
    // Plain comments, not doc comments: clap would show doc comments as
    // help for each value and change `--help`.
    // Terminal tables (comfy-table), as wide as the terminal.
    Table,
    // Pretty JSON exactly as docs/contract.md describes (`schema_version` 1).
    Json,
    // One row per finding, RFC 4180, UTF-8.
    Csv,
    // A self-contained HTML page (inline CSS, no scripts), fit for mail.
    Html,
}

impl Format {
    /// The name used on the command line (`table`, `json`, `csv`, `html`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The format to use when none was given: a table on a terminal, JSON otherwise.
    pub fn or_default(given: Option<Format>, stdout_is_terminal: bool) -> Format {
        given.unwrap_or(if stdout_is_terminal {
            Format::Table
        } else {
            Format::Json
        })
    }

    /// The usual file extension of this format (`txt` for the table).
    pub fn file_extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }
}

/// A `--format` value that names no known format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {given:?}: expected one of table, json, csv, html")]
pub struct UnknownFormat {
    /// The text that was given.
    pub given: String,
}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Parses a format name; case and surrounding blanks are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Format::iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownFormat {
                given: s.to_string(),
            })
    }
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report could not be serialised to JSON.
    #[error("cannot write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A CSV row could not be written.
    #[error("cannot write the report as CSV: {0}")]
    Csv(#[from] ::csv::Error),
    /// The CSV writer could not hand back its buffer.
    #[error("cannot finish the CSV report: {0}")]
    CsvFlush(String),
    /// The HTML template failed to render.
    #[error("cannot render the HTML report: {0}")]
    Html(#[from] minijinja::Error),
}

/// Renders `report` in `format`.
///
/// The table is as wide as the terminal when standard output is one, else
/// 80 columns (see [`table::terminal_width`]).
pub fn render(report: &Report, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Table => Ok(table::render(report, table::terminal_width())),
        Format::Json => json::render(report),
        Format::Csv => csv::render(report),
        Format::Html => html::render(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn parses_and_displays_every_format() {
        for f in Format::iter() {
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
            assert_eq!(f.as_str().to_uppercase().parse::<Format>(), Ok(f));
        }
        assert_eq!(" json ".parse::<Format>(), Ok(Format::Json));
    }

    #[test]
    fn unknown_format_names_the_value() {
        let err = "xml".parse::<Format>().unwrap_err();
        assert_eq!(err.given, "xml");
        assert!(err.to_string().contains("\"xml\""), "{err}");
        assert!(err.to_string().contains("table, json, csv, html"), "{err}");
    }

    #[test]
    fn clap_value_names_match_display() {
        let names: Vec<String> = Format::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value())
            .map(|p| p.get_name().to_string())
            .collect();
        assert_eq!(names, ["table", "json", "csv", "html"]);
        for f in Format::value_variants() {
            let name = f.to_possible_value().map(|p| p.get_name().to_string());
            assert_eq!(name.as_deref(), Some(f.as_str()));
        }
    }
}
