//! Rows as SQLite returns them (`FromRow`), and their checked conversion
//! into the shared model. Every enum is read back through its parser, so a
//! value this version does not know is an error naming the column.

use super::codes::{
    corrupt, from_db, parse_action_kind, parse_action_status, parse_cause, parse_finding_kind,
    parse_finding_status, parse_mode, parse_trigger,
};
use super::error::StoreError;
use super::lock::{LockHolder, LockInfo};
use super::{JournalEntry, JournalState, MailStatus, RunRow, RunState};
use crate::model::{Action, Finding};
use crate::report::{SourceSummary, SourcesSummary};
use chrono::{DateTime, Utc};
use sqlx::FromRow;

/// A full row of `runs`.
#[derive(FromRow)]
pub(crate) struct RunRecord {
    pub id: i64,
    pub schema_version: i64,
    pub trigger_kind: String,
    pub mode: String,
    pub status: String,
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
    pub fn state(&self) -> Result<RunState, StoreError> {
        RunState::parse(&self.status).ok_or_else(|| corrupt("runs.status", &self.status))
    }

    pub fn sources(&self) -> Result<SourcesSummary, StoreError> {
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
#[derive(FromRow)]
pub(crate) struct RunListRecord {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub trigger_kind: String,
    pub mode: String,
    pub status: String,
    pub abort_reason: Option<String>,
    pub people: i64,
    pub findings_total: i64,
    pub findings_new: i64,
    pub findings_persisting: i64,
    pub findings_resolved: i64,
    pub actions_applied: i64,
    pub actions_failed: i64,
    pub mail_status: Option<String>,
    pub mail_error: Option<String>,
    pub person: Option<String>,
}

impl TryFrom<RunListRecord> for RunRow {
    type Error = StoreError;

    fn try_from(r: RunListRecord) -> Result<Self, StoreError> {
        Ok(RunRow {
            id: r.id,
            started_at: r.started_at,
            finished_at: r.finished_at,
            trigger: parse_trigger(&r.trigger_kind)?,
            mode: parse_mode(&r.mode)?,
            status: RunState::parse(&r.status).ok_or_else(|| corrupt("runs.status", &r.status))?,
            abort_reason: r.abort_reason,
            people: from_db("runs.people", r.people)?,
            findings: from_db("runs.findings_total", r.findings_total)?,
            new: from_db("runs.findings_new", r.findings_new)?,
            persisting: from_db("runs.findings_persisting", r.findings_persisting)?,
            resolved: from_db("runs.findings_resolved", r.findings_resolved)?,
            actions_applied: from_db("actions_applied", r.actions_applied)?,
            actions_failed: from_db("actions_failed", r.actions_failed)?,
            mail_status: r
                .mail_status
                .map(|s| MailStatus::parse(&s).ok_or_else(|| corrupt("runs.mail_status", &s)))
                .transpose()?,
            mail_error: r.mail_error,
            person: r.person,
        })
    }
}

/// A row of `run_counts`.
#[derive(FromRow)]
pub(crate) struct CountRecord {
    pub dimension: String,
    pub name: String,
    pub count: i64,
}

/// A row of `findings`.
#[derive(FromRow)]
pub(crate) struct FindingRecord {
    pub kind: String,
    pub cause: Option<String>,
    pub status: String,
    pub aad_id: Option<String>,
    pub upn: Option<String>,
    pub display_name: Option<String>,
    pub ifs_identity: Option<String>,
    pub ifs_directory_id: Option<String>,
    pub flow_user_id: Option<String>,
    pub expected_flow_user_id: Option<String>,
    pub action: String,
    pub action_status: Option<String>,
    pub detail: String,
}

impl TryFrom<FindingRecord> for Finding {
    type Error = StoreError;

    fn try_from(r: FindingRecord) -> Result<Self, StoreError> {
        Ok(Finding {
            kind: parse_finding_kind("findings.kind", &r.kind)?,
            cause: r
                .cause
                .map(|c| parse_cause("findings.cause", &c))
                .transpose()?,
            status: parse_finding_status(&r.status)?,
            aad_id: r.aad_id,
            upn: r.upn,
            display_name: r.display_name,
            ifs_identity: r.ifs_identity,
            ifs_directory_id: r.ifs_directory_id,
            flow_user_id: r.flow_user_id,
            expected_flow_user_id: r.expected_flow_user_id,
            action: parse_action_kind("findings.action", &r.action)?,
            action_status: r
                .action_status
                .map(|s| parse_action_status("findings.action_status", &s))
                .transpose()?,
            detail: r.detail,
        })
    }
}

/// A row of `run_actions`.
#[derive(FromRow)]
pub(crate) struct ActionRecord {
    pub kind: String,
    pub flow_user_id: String,
    pub new_flow_user_id: Option<String>,
    pub status: String,
    pub error: Option<String>,
}

impl TryFrom<ActionRecord> for Action {
    type Error = StoreError;

    fn try_from(r: ActionRecord) -> Result<Self, StoreError> {
        Ok(Action {
            kind: parse_action_kind("run_actions.kind", &r.kind)?,
            flow_user_id: r.flow_user_id,
            new_flow_user_id: r.new_flow_user_id,
            status: parse_action_status("run_actions.status", &r.status)?,
            error: r.error,
        })
    }
}

/// A row of `action_journal`.
#[derive(FromRow)]
pub(crate) struct JournalRecord {
    pub id: i64,
    pub run_id: i64,
    pub seq: i64,
    pub kind: String,
    pub flow_user_id: String,
    pub new_flow_user_id: Option<String>,
    pub action_status: String,
    pub action_error: Option<String>,
    pub state: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<JournalRecord> for JournalEntry {
    type Error = StoreError;

    fn try_from(r: JournalRecord) -> Result<Self, StoreError> {
        Ok(JournalEntry {
            id: r.id,
            run_id: r.run_id,
            seq: r.seq,
            action: Action {
                kind: parse_action_kind("action_journal.kind", &r.kind)?,
                flow_user_id: r.flow_user_id,
                new_flow_user_id: r.new_flow_user_id,
                status: parse_action_status("action_journal.action_status", &r.action_status)?,
                error: r.action_error,
            },
            state: JournalState::parse(&r.state)
                .ok_or_else(|| corrupt("action_journal.state", &r.state))?,
            error: r.error,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
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
    type Error = StoreError;

    fn try_from(r: LockRecord) -> Result<Self, StoreError> {
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
