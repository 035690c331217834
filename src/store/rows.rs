//! Rows decoded straight into the domain types (atuin's `FromRow` on a
//! newtype: the model crate knows nothing of sqlx). Enums are read through
//! [`Stored`], so a value this version does not know is an error naming the
//! column and the value; negative counts are errors too.

use super::codes::{corrupt, from_db, Stored};
use super::lock::{LockHolder, LockInfo};
use super::{JournalEntry, RunRow, RunState};
use crate::model::Action;
use crate::report::{Mode, SourceSummary, SourcesSummary, Trigger};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row};
use std::str::FromStr;

/// The enum `T` stored in column `column`.
fn name<T: FromStr>(row: &SqliteRow, column: &str) -> sqlx::Result<T> {
    Ok(row.try_get::<Stored<T>, _>(column)?.0)
}

/// The enum `T` stored in the nullable column `column`.
fn optional_name<T: FromStr>(row: &SqliteRow, column: &str) -> sqlx::Result<Option<T>> {
    Ok(row
        .try_get::<Option<Stored<T>>, _>(column)?
        .map(|stored| stored.0))
}

/// A non-negative count stored in column `column`.
fn count(row: &SqliteRow, column: &'static str) -> sqlx::Result<u64> {
    let value: i64 = row.try_get(column)?;
    from_db(column, value).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

/// A full row of `runs`.
#[derive(FromRow)]
pub(crate) struct RunRecord {
    pub id: i64,
    pub schema_version: i64,
    pub trigger_kind: Stored<Trigger>,
    pub mode: Stored<Mode>,
    pub status: Stored<RunState>,
    pub abort_reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub azure_users: i64,
    pub azure_complete: bool,
    pub azure_delta: Option<bool>,
    pub ifs_users: i64,
    pub ifs_complete: bool,
    pub ifs_delta: Option<bool>,
    pub flow_users: i64,
    pub flow_complete: bool,
    pub flow_delta: Option<bool>,
    pub people: i64,
    pub ok: i64,
    pub findings_total: i64,
    pub findings_new: i64,
    pub findings_persisting: i64,
    pub findings_resolved: i64,
}

impl RunRecord {
    pub fn sources(&self) -> Result<SourcesSummary, super::StoreError> {
        Ok(SourcesSummary {
            azure: SourceSummary {
                users: from_db("runs.azure_users", self.azure_users)?,
                complete: self.azure_complete,
                delta: self.azure_delta,
            },
            ifs: SourceSummary {
                users: from_db("runs.ifs_users", self.ifs_users)?,
                complete: self.ifs_complete,
                delta: self.ifs_delta,
            },
            flow: SourceSummary {
                users: from_db("runs.flow_users", self.flow_users)?,
                complete: self.flow_complete,
                delta: self.flow_delta,
            },
        })
    }
}

/// A line of the run history (`runs` plus action counts).
pub(crate) struct DbRunRow(pub RunRow);

impl<'r> FromRow<'r, SqliteRow> for DbRunRow {
    fn from_row(row: &'r SqliteRow) -> sqlx::Result<Self> {
        Ok(DbRunRow(RunRow {
            id: row.try_get("id")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            trigger: name(row, "trigger_kind")?,
            mode: name(row, "mode")?,
            status: name(row, "status")?,
            abort_reason: row.try_get("abort_reason")?,
            people: count(row, "people")?,
            findings: count(row, "findings_total")?,
            new: count(row, "findings_new")?,
            persisting: count(row, "findings_persisting")?,
            resolved: count(row, "findings_resolved")?,
            actions_applied: count(row, "actions_applied")?,
            actions_failed: count(row, "actions_failed")?,
            mail_status: optional_name(row, "mail_status")?,
            mail_error: row.try_get("mail_error")?,
            person: row.try_get("person")?,
        }))
    }
}

/// A row of `run_counts`.
#[derive(FromRow)]
pub(crate) struct CountRecord {
    pub dimension: String,
    pub name: String,
    pub count: i64,
}

/// A row of `run_actions`.
pub(crate) struct DbAction(pub Action);

impl<'r> FromRow<'r, SqliteRow> for DbAction {
    fn from_row(row: &'r SqliteRow) -> sqlx::Result<Self> {
        Ok(DbAction(Action {
            kind: name(row, "kind")?,
            flow_user_id: row.try_get("flow_user_id")?,
            new_flow_user_id: row.try_get("new_flow_user_id")?,
            status: name(row, "status")?,
            error: row.try_get("error")?,
        }))
    }
}

/// A row of `action_journal`.
pub(crate) struct DbJournalEntry(pub JournalEntry);

impl<'r> FromRow<'r, SqliteRow> for DbJournalEntry {
    fn from_row(row: &'r SqliteRow) -> sqlx::Result<Self> {
        Ok(DbJournalEntry(JournalEntry {
            id: row.try_get("id")?,
            run_id: row.try_get("run_id")?,
            seq: row.try_get("seq")?,
            action: Action {
                kind: name(row, "kind")?,
                flow_user_id: row.try_get("flow_user_id")?,
                new_flow_user_id: row.try_get("new_flow_user_id")?,
                status: name(row, "action_status")?,
                error: row.try_get("action_error")?,
            },
            state: name(row, "state")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
            finished_at: row.try_get("finished_at")?,
        }))
    }
}

/// The row of `run_lock`.
#[derive(FromRow)]
pub(crate) struct LockRecord {
    pub instance_id: String,
    pub pid: i64,
    pub host: String,
    pub label: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// NULL only in a row left by a version before heartbeats.
    pub heartbeat_at: Option<DateTime<Utc>>,
}

impl TryFrom<LockRecord> for LockInfo {
    type Error = super::StoreError;

    fn try_from(r: LockRecord) -> Result<Self, super::StoreError> {
        Ok(LockInfo {
            holder: LockHolder {
                instance_id: r.instance_id,
                pid: u32::try_from(r.pid)
                    .map_err(|_| corrupt("run_lock.pid", &r.pid.to_string()))?,
                host: r.host,
                label: r.label,
            },
            acquired_at: r.acquired_at,
            expires_at: r.expires_at,
            heartbeat_at: r.heartbeat_at.unwrap_or(r.acquired_at),
        })
    }
}
