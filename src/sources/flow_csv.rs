//! Flow users from a CSV export (`flow.source = "csv"`, report only).
//!
//! Header: `userId,name,email,active,type,syncSource` (any order, names
//! matched case-insensitively, a UTF-8 BOM is ignored). `active` accepts
//! true/false, 1/0, yes/no. A bad row is an error naming the file, the line
//! and the column; nothing is skipped silently.

use crate::model::{FlowUser, FlowUserFields};
use crate::sources::{SourceError, SourceErrorKind, System};
use compact_str::CompactString;
use std::path::{Path, PathBuf};

/// The columns of the export, as spelled in docs/contract.md.
const COLUMNS: [&str; 6] = ["userId", "name", "email", "active", "type", "syncSource"];

/// Reads the Flow CSV export.
#[derive(Debug, Clone)]
pub struct FlowCsv {
    path: PathBuf,
}

/// Where each column sits in the file.
struct ColumnIndex {
    user_id: usize,
    name: usize,
    email: usize,
    active: usize,
    user_type: usize,
    sync_source: usize,
}

impl FlowCsv {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FlowCsv { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file name used in messages (`flow-users.csv`).
    fn label(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    fn error(&self, message: String) -> SourceError {
        SourceError::new(System::Flow, SourceErrorKind::File, message)
    }

    /// Reads every user of the export.
    pub async fn fetch_all(&self) -> Result<Vec<FlowUser>, SourceError> {
        let bytes = tokio::fs::read(&self.path)
            .await
            .map_err(|e| self.error(format!("cannot read {}: {e}", self.path.display())))?;
        self.parse(&bytes)
    }

    /// Parses the export's bytes.
    pub fn parse(&self, bytes: &[u8]) -> Result<Vec<FlowUser>, SourceError> {
        let label = self.label();
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| self.error(format!("{label}: cannot read the header: {e}")))?
            .clone();
        let find = |column: &str| -> Result<usize, SourceError> {
            headers
                .iter()
                .position(|h| {
                    h.trim_start_matches('\u{feff}')
                        .eq_ignore_ascii_case(column)
                })
                .ok_or_else(|| {
                    self.error(format!(
                        "{label}: the header has no column \"{column}\" (expected {}; found {})",
                        COLUMNS.join(","),
                        headers.iter().collect::<Vec<_>>().join(",")
                    ))
                })
        };
        let index = ColumnIndex {
            user_id: find("userId")?,
            name: find("name")?,
            email: find("email")?,
            active: find("active")?,
            user_type: find("type")?,
            sync_source: find("syncSource")?,
        };
        let mut users = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e
                    .position()
                    .map(|p| format!(" line {}", p.line()))
                    .unwrap_or_default();
                self.error(format!("{label}{line}: {e}"))
            })?;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let field = |i: usize| record.get(i).unwrap_or("").trim();
            let bad = |column: &str, problem: String| {
                self.error(format!("{label} line {line}, column {column}: {problem}"))
            };
            let optional = |i: usize| {
                Some(field(i))
                    .filter(|s| !s.is_empty())
                    .map(CompactString::from)
            };
            let user_id = field(index.user_id);
            if user_id.is_empty() {
                return Err(bad("userId", "is empty".to_string()));
            }
            let active_raw = field(index.active);
            let active = match active_raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(bad(
                        "active",
                        format!("expected true/false, got {active_raw:?}"),
                    ))
                }
            };
            let user_type = field(index.user_type);
            if user_type.is_empty() {
                return Err(bad(
                    "type",
                    "is empty (expected Full, Machine, Transaction, Portal, Public or App)"
                        .to_string(),
                ));
            }
            users.push(FlowUser::from(FlowUserFields {
                user_id: user_id.into(),
                name: optional(index.name),
                email: optional(index.email),
                active,
                user_type: user_type.into(),
                sync_source: optional(index.sync_source),
            }));
        }
        Ok(users)
    }
}
