//! The store: every run, its findings and actions, the run lock, the stored
//! Azure snapshot for delta runs, the action journal and the mail outcome,
//! kept in SQLite through sqlx (runtime queries and `FromRow` rows only).
//!
//! Callers code against the [`Store`] trait; [`SqliteStore`] is the
//! implementation. [`SqliteStore::open`] creates the file (mode 0600) when it
//! is missing, turns on WAL, a busy timeout and foreign keys, and applies the
//! embedded migrations (`migrations/*.sql`).

mod azure_pages;
mod codes;
mod error;
mod finding_chunks;
mod location;
mod lock;
mod rows;
mod schema;
mod sqlite;

pub use error::StoreError;
pub use location::database_path;
pub use lock::{
    hold_with_heartbeat, LockHolder, LockInfo, HEARTBEAT_INTERVAL, HEARTBEAT_STALE_AFTER,
};
pub use schema::{schema_status, SchemaStatus};
pub use sqlite::SqliteStore;

use crate::model::{AadUser, Action};
use crate::report::{Mode, Report, RunStatus, Trigger};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashSet;

/// The Azure users of one scope as the previous run left them, and the Graph
/// delta link that continues from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureSnapshot {
    /// Ordered by object ID.
    pub users: Vec<AadUser>,
    pub delta_link: Option<String>,
}

/// Where a journalled action stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum JournalState {
    /// Written before the action was sent; no outcome recorded (yet).
    Pending,
    /// The service confirmed the action.
    Applied,
    /// The service refused or the call failed.
    Failed,
}

impl JournalState {
    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One entry of the action journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: i64,
    pub run_id: i64,
    /// The action's position in its run's plan.
    pub seq: i64,
    pub action: Action,
    pub state: JournalState,
    /// The error of a failed action.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The state of a stored run: still running, or how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum RunState {
    /// Begun and not finished: in progress, or killed before it finished.
    Running,
    Completed,
    Aborted,
    Failed,
}

impl RunState {
    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The outcome of a finished run; `None` while running.
    pub fn finished(self) -> Option<RunStatus> {
        match self {
            RunState::Running => None,
            RunState::Completed => Some(RunStatus::Completed),
            RunState::Aborted => Some(RunStatus::Aborted),
            RunState::Failed => Some(RunStatus::Failed),
        }
    }
}

impl From<RunStatus> for RunState {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Completed => RunState::Completed,
            RunStatus::Aborted => RunState::Aborted,
            RunStatus::Failed => RunState::Failed,
        }
    }
}

/// Whether the report of a run was mailed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::Display, strum::EnumString, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum MailStatus {
    Sent,
    /// The last attempt failed; the next run retries it.
    Failed,
}

impl MailStatus {
    /// The snake_case name stored in the database.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Users per source in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceCounts {
    pub azure: i64,
    pub ifs: i64,
    pub flow: i64,
}

/// One line of `idrecon history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub trigger: Trigger,
    pub mode: Mode,
    pub status: RunState,
    pub abort_reason: Option<String>,
    pub people: u64,
    pub findings: u64,
    pub new: u64,
    pub persisting: u64,
    pub resolved: u64,
    pub actions_applied: u64,
    pub actions_failed: u64,
    /// `None` when no mail was attempted for this run.
    pub mail_status: Option<MailStatus>,
    pub mail_error: Option<String>,
    /// Set for one-person runs (`reconcile --user`): the UPN or object ID.
    pub person: Option<String>,
}

/// Everything idrecon keeps between runs. [`SqliteStore`] implements it;
/// callers take `&dyn Store` so tests can use any implementation.
///
/// Every write a run makes names the run's lock `holder` and is refused with
/// [`StoreError::LockLost`] unless that holder (its instance ID) still owns
/// the run lock, checked in the same transaction as the write: a run that
/// lost its lock (its heartbeat went stale and another run took over) can
/// never write over the next run's snapshot, journal or runs.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies the embedded migrations that are not applied yet (`idrecon migrate`).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Copies the write-ahead log into the database file. Commits never do
    /// (they would wait for it); it is called after each run and at every
    /// run's start.
    async fn checkpoint(&self) -> Result<(), StoreError>;

    /// Takes the run lock for `lease`, its heartbeat set to `now`. Succeeds
    /// when the lock is free, when its lease expired, or when its heartbeat
    /// is older than [`HEARTBEAT_STALE_AFTER`] (whatever its PID says);
    /// otherwise [`StoreError::LockHeld`] naming the holder. A holder with
    /// a fresh heartbeat is refused even if it is this very process.
    async fn acquire_lock(
        &self,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<(), StoreError>;

    /// Extends the lease of a lock `holder` holds to `now + lease` (and
    /// renews its heartbeat);
    /// [`StoreError::LockLost`] when it does not hold it (any more).
    async fn renew_lock(
        &self,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<(), StoreError>;

    /// Renews the heartbeat of the lock `holder` holds to `now`
    /// ([`hold_with_heartbeat`] does so while a run goes on);
    /// [`StoreError::LockLost`] when it does not hold it (any more).
    async fn heartbeat_lock(
        &self,
        holder: &LockHolder,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Frees the lock `holder` holds. Nothing to do when the lock is free;
    /// [`StoreError::LockLost`] when someone else holds it. Like
    /// [`Store::finish_run`], it does not wait for the disk: the next
    /// [`Store::checkpoint`] makes it durable.
    async fn release_lock(&self, holder: &LockHolder) -> Result<(), StoreError>;

    /// Who holds the run lock, if anyone (expired leases included).
    async fn current_lock(&self) -> Result<Option<LockInfo>, StoreError>;

    /// Records a new run with status `running`; returns its ID.
    async fn begin_run(
        &self,
        holder: &LockHolder,
        trigger: Trigger,
        mode: Mode,
        started_at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Stores everything of `report` for run `report.run_id` in one
    /// transaction (replacing what an earlier call stored for it). The
    /// commit does not wait for the disk (it survives the process dying,
    /// not a power loss): the next [`Store::checkpoint`], or any later
    /// commit that does wait, makes it durable.
    async fn finish_run(&self, holder: &LockHolder, report: &Report) -> Result<(), StoreError>;

    /// The report [`Store::finish_run`] stored; `None` when there is no
    /// such run, [`StoreError::RunNotFinished`] when it never finished.
    async fn load_report(&self, run_id: i64) -> Result<Option<Report>, StoreError>;

    /// The ID and finding keys ([`crate::model::Finding::key`]) of the last
    /// completed run before `before_run`; `None` when there is none.
    async fn previous_open_findings(
        &self,
        before_run: i64,
    ) -> Result<Option<(i64, HashSet<String>)>, StoreError>;

    /// The newest `limit` runs, newest first.
    async fn list_runs(&self, limit: u32) -> Result<Vec<RunRow>, StoreError>;

    /// The newest run that finished (whatever its status).
    async fn last_finished_run(&self) -> Result<Option<RunRow>, StoreError>;

    /// Marks `run_id` as a one-person run (`reconcile --user`). Such runs are
    /// not "the previous run" for new/persisting/resolved or the empty-source check.
    async fn set_run_person(
        &self,
        holder: &LockHolder,
        run_id: i64,
        person: &str,
    ) -> Result<(), StoreError>;

    /// How many users each source delivered in the newest *completed* run
    /// (the safety check against a source that suddenly returns nothing).
    async fn last_completed_source_counts(&self) -> Result<Option<SourceCounts>, StoreError>;

    /// The delta link stored with the snapshot of `scope`: `None` when no
    /// snapshot is stored, `Some(None)` for a snapshot without a link. Cheap
    /// (one row), so a run can start fetching while the users load.
    async fn load_azure_delta_link(
        &self,
        scope: &str,
    ) -> Result<Option<Option<String>>, StoreError>;

    /// The stored Azure snapshot of `scope` (`users` or `group:<id>`).
    async fn load_azure_snapshot(&self, scope: &str) -> Result<Option<AzureSnapshot>, StoreError>;

    /// Replaces the snapshot of `scope` by `users` (a full listing).
    async fn replace_azure_snapshot(
        &self,
        holder: &LockHolder,
        scope: &str,
        users: &[AadUser],
        delta_link: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Applies one delta to the snapshot of `scope` in one transaction:
    /// `upserts` first, then `removed_ids`, then the new `delta_link`. Pass
    /// each user's final state only. [`StoreError::NoSnapshot`] when the
    /// scope has no snapshot to apply it to.
    async fn apply_azure_delta(
        &self,
        holder: &LockHolder,
        scope: &str,
        upserts: &[AadUser],
        removed_ids: &[String],
        delta_link: &str,
    ) -> Result<(), StoreError>;

    /// [`Store::apply_azure_delta`] with an optional delta link: writes only
    /// the rows that changed (e.g. the difference between the stored
    /// snapshot and a new full listing) and stores `delta_link` as it is.
    async fn update_azure_snapshot(
        &self,
        holder: &LockHolder,
        scope: &str,
        upserts: &[AadUser],
        removed_ids: &[String],
        delta_link: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Forgets the snapshot of `scope` (the next run lists in full).
    async fn clear_azure_snapshot(
        &self,
        holder: &LockHolder,
        scope: &str,
    ) -> Result<(), StoreError>;

    /// Journals `action` as pending before it is sent; durable (synced to
    /// disk) when it returns. Returns the entry's ID.
    async fn journal_pending(
        &self,
        holder: &LockHolder,
        run_id: i64,
        seq: i64,
        action: &Action,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Records the outcome of journal entry `id`.
    async fn journal_finish(
        &self,
        holder: &LockHolder,
        id: i64,
        state: JournalState,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every entry still pending, of any run, oldest first.
    async fn pending_journal(&self) -> Result<Vec<JournalEntry>, StoreError>;

    /// Every entry of `run_id`, in journal order.
    async fn journal_for_run(&self, run_id: i64) -> Result<Vec<JournalEntry>, StoreError>;

    /// Marks every run before `before_run` still `running` as `failed` with
    /// `reason` and `finished_at = at`: called by a run holding the lock,
    /// for which such runs can only be runs whose process ended (killed,
    /// crashed) before they finished. Returns their IDs, oldest first.
    async fn close_interrupted_runs(
        &self,
        holder: &LockHolder,
        before_run: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;

    /// Records whether the report of `run_id` was mailed. Not a write of
    /// the run (mail goes out after the run released its lock): it only
    /// touches the mail columns of that run's own row.
    async fn record_mail(
        &self,
        run_id: i64,
        sent: bool,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Runs whose last mail attempt failed and that were not given up on
    /// ([`Store::give_up_mail`]), oldest first.
    async fn runs_with_unsent_mail(&self) -> Result<Vec<i64>, StoreError>;

    /// Stops retrying the failed mail of `run_ids`: they stay `failed`, their
    /// mail error becomes `reason` (followed by the last error) and
    /// [`Store::runs_with_unsent_mail`] no longer lists them.
    async fn give_up_mail(
        &self,
        run_ids: &[i64],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
