//! [`Store`] on an SQLite file through sqlx.
//!
//! Writes go through a pool of one connection, so writers of this process
//! queue instead of failing on SQLite's write lock; reads use a separate
//! pool and never wait for writers (WAL). Other processes are held off by
//! the busy timeout and, for the run lock, by `BEGIN IMMEDIATE`.

use super::azure_pages;
use super::codes::{corrupt, from_db, parse_name, seq, to_db};
use super::error::{QueryContext, StoreError};
use super::finding_chunks;
use super::location::{database_path, prepare_file};
use super::lock::{may_take_over, LockHolder, LockInfo};
use super::rows::{CountRecord, DbAction, DbJournalEntry, DbRunRow, LockRecord, RunRecord};
use super::schema::MIGRATOR;
use super::{
    AzureSnapshot, JournalEntry, JournalState, MailStatus, RunRow, RunState, SourceCounts, Store,
};
use crate::model::{AadUser, Action, FindingKind};
use crate::report::{Mode, Report, Summary, Trigger, SCHEMA_VERSION};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, QueryBuilder, Sqlite, SqliteConnection};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a writer of this process waits for its turn.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(600);
const READ_CONNECTIONS: u32 = 4;
/// Bind parameters per multi-row INSERT (SQLite allows 32,766).
const MAX_BIND_PARAMS: usize = 32_000;

const RUN_COLUMNS: &str = "id, schema_version, trigger_kind, mode, status, abort_reason, \
    started_at, finished_at, azure_users, azure_complete, azure_delta, ifs_users, \
    ifs_complete, ifs_delta, flow_users, flow_complete, flow_delta, people, ok, \
    findings_total, findings_new, findings_persisting, findings_resolved";

const RUN_LIST_SELECT: &str = "SELECT r.id, r.started_at, r.finished_at, r.trigger_kind, \
    r.mode, r.status, r.abort_reason, r.people, r.findings_total, r.findings_new, \
    r.findings_persisting, r.findings_resolved, \
    CASE WHEN EXISTS (SELECT 1 FROM run_actions a WHERE a.run_id = r.id) \
        THEN (SELECT COUNT(*) FROM run_actions a WHERE a.run_id = r.id AND a.status = 'applied') \
        ELSE (SELECT COUNT(*) FROM action_journal j WHERE j.run_id = r.id AND j.state = 'applied') \
    END AS actions_applied, \
    CASE WHEN EXISTS (SELECT 1 FROM run_actions a WHERE a.run_id = r.id) \
        THEN (SELECT COUNT(*) FROM run_actions a WHERE a.run_id = r.id AND a.status = 'failed') \
        ELSE (SELECT COUNT(*) FROM action_journal j WHERE j.run_id = r.id AND j.state = 'failed') \
    END AS actions_failed, \
    r.mail_status, r.mail_error, r.person FROM runs r";

/// The delta link of the snapshot of `?1`.
const SELECT_DELTA_LINK: &str = "SELECT delta_link FROM azure_snapshots WHERE scope = ?";

const JOURNAL_COLUMNS: &str = "id, run_id, seq, kind, flow_user_id, new_flow_user_id, \
    action_status, action_error, state, error, created_at, finished_at";

/// The SQLite implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: SqlitePool,
    reader: SqlitePool,
}

/// Longer than this, a statement is logged as a warning (sqlx's default is 1 s).
const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_secs(10);

impl SqliteStore {
    /// Opens the store at `url` (`sqlite://relative.db`, `sqlite:///abs.db`
    /// or a plain path): creates the file with mode 0600 if it is missing,
    /// uses WAL, a 5 s busy timeout, foreign keys and full sync (but for a
    /// run's report and the lock's release: `relaxed_writer`), warns of
    /// statements slower than 10 s, and applies the migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path = database_path(url)?;
        prepare_file(&path)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // A run's commit would otherwise copy everything it wrote
            // into the database file before returning (SQLite checkpoints
            // once the WAL passes 1,000 pages): ~0.15 s for the 65 MB of a
            // million-user run's findings, on the way to its report. The
            // copy is made after the run and at the next run's start
            // instead ([`Store::checkpoint`]); a WAL truncated to 64 MiB
            // after that keeps the disk use bounded.
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
            // A statement is "slow" to sqlx until its last row is taken:
            // reading a large snapshot's pages, parsed one at a time while
            // the sources are fetched, takes over a second by design.
            .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITE_QUEUE_TIMEOUT)
            .after_release(|conn, _| {
                Box::pin(async move {
                    // Wait for the rollback a dropped transaction queued,
                    // then look at what is left.
                    drop(conn.lock_handle().await?);
                    if !writer_is_reusable(conn) {
                        return Ok(false);
                    }
                    // Every write but a run's details commits with full
                    // sync (see `finish_run`); a connection that cannot be
                    // put back to it is closed.
                    Ok(sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await
                        .is_ok())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_lazy_with(options);
        let store = SqliteStore {
            path,
            writer,
            reader,
        };
        store.run_migrations().await?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Caps the database file at `pages` pages for this store's writes
    /// (SQLite's `max_page_count`; it cannot go below the current size) and
    /// returns the cap SQLite set. A write that needs more space fails as on
    /// a full disk, which is how the tests fill the disk without mounts.
    pub async fn set_max_page_count(&self, pages: u64) -> Result<u64, StoreError> {
        let pages = i64::try_from(pages).unwrap_or(i64::MAX);
        let set: i64 = sqlx::query_scalar(&format!("PRAGMA max_page_count = {pages}"))
            .fetch_one(&self.writer)
            .await
            .during("setting the maximum database size")?;
        Ok(u64::try_from(set).unwrap_or(0))
    }

    /// The journal mode SQLite reports (`wal` once opened).
    pub async fn journal_mode(&self) -> Result<String, StoreError> {
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&self.reader)
            .await
            .during("reading the journal mode")
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|source| StoreError::Migrate {
                path: self.path.clone(),
                source,
            })
    }

    /// The error for an `acquire_lock` that could not even start because
    /// another process kept the database busy past the busy timeout (e.g.
    /// a run saving a large snapshot): when a lock holder that may not be
    /// taken over is on record, that is [`StoreError::LockHeld`] (readers
    /// are never blocked in WAL mode); otherwise the database error.
    async fn lock_refusal_while_busy(&self, now: DateTime<Utc>, error: sqlx::Error) -> StoreError {
        if is_busy(&error) {
            if let Ok(Some(current)) = self.current_lock().await {
                if !may_take_over(&current, now) {
                    return StoreError::lock_held(current);
                }
            }
        }
        StoreError::Query {
            context: "starting the lock transaction",
            source: error,
        }
    }

    async fn read_lock(conn: &mut SqliteConnection) -> Result<Option<LockInfo>, StoreError> {
        sqlx::query_as::<_, LockRecord>(
            "SELECT instance_id, pid, host, label, acquired_at, expires_at, heartbeat_at \
             FROM run_lock WHERE id = 1",
        )
        .fetch_optional(conn)
        .await
        .during("reading the run lock")?
        .map(LockInfo::try_from)
        .transpose()
    }

    /// Starts a write transaction that holds SQLite's write lock from the
    /// start (`BEGIN IMMEDIATE`), so what it reads cannot change before it
    /// writes.
    async fn begin_immediate(
        &self,
        context: &'static str,
    ) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .during(context)
    }

    /// Ends a transaction that changed `holder`'s lock row: committed when
    /// it changed a row, else [`StoreError::LockLost`] naming who holds it now.
    async fn commit_if_held(
        mut tx: sqlx::Transaction<'static, Sqlite>,
        holder: &LockHolder,
        changed: u64,
    ) -> Result<(), StoreError> {
        if changed == 0 {
            let current = Self::read_lock(&mut tx).await?.map(|info| info.holder);
            return Err(StoreError::lock_lost(holder, current));
        }
        tx.commit().await.during("committing the run lock")
    }

    /// Starts a write transaction of `holder`'s run: takes SQLite's write
    /// lock first (`BEGIN IMMEDIATE`), then checks that `holder` still owns
    /// the run lock, so nothing can take the lock between the check and the
    /// writes. [`StoreError::LockLost`] when it does not.
    async fn begin_owned(
        &self,
        holder: &LockHolder,
        context: &'static str,
    ) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        let tx = self.begin_immediate(context).await?;
        Self::still_owned(tx, holder).await
    }

    /// The writer connection, its next commits not waiting for the disk
    /// (`synchronous = NORMAL`) until it goes back to the pool, which
    /// restores full sync (`after_release`). In WAL mode such a commit keeps
    /// the database consistent and survives the process dying; the next
    /// checkpoint, or any later commit with full sync, makes it durable.
    async fn relaxed_writer(
        &self,
        context: &'static str,
    ) -> Result<sqlx::pool::PoolConnection<Sqlite>, StoreError> {
        let mut conn = self.writer.acquire().await.during(context)?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await
            .during(context)?;
        Ok(conn)
    }

    /// `tx` if `holder` still owns the run lock, else [`StoreError::LockLost`].
    async fn still_owned<'c>(
        mut tx: sqlx::Transaction<'c, Sqlite>,
        holder: &LockHolder,
    ) -> Result<sqlx::Transaction<'c, Sqlite>, StoreError> {
        let current = Self::read_lock(&mut tx).await?;
        match current {
            Some(info) if info.holder.instance_id == holder.instance_id => Ok(tx),
            other => Err(StoreError::lock_lost(holder, other.map(|info| info.holder))),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        // PASSIVE: copies what no reader still needs and never waits for
        // one (the stored snapshot is read at the same time).
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.writer)
            .await
            .during("checkpointing the write-ahead log")?;
        Ok(())
    }

    async fn acquire_lock(
        &self,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<(), StoreError> {
        let mut tx = match self.writer.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(e) => return Err(self.lock_refusal_while_busy(now, e).await),
        };
        if let Some(current) = Self::read_lock(&mut tx).await? {
            if !may_take_over(&current, now) {
                return Err(StoreError::lock_held(current));
            }
            tracing::warn!(previous = %current, by = %holder, "taking over a stale run lock");
        }
        sqlx::query(
            "INSERT INTO run_lock \
             (id, instance_id, pid, host, label, acquired_at, expires_at, heartbeat_at) \
             VALUES (1, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET instance_id = excluded.instance_id, \
             pid = excluded.pid, host = excluded.host, label = excluded.label, \
             acquired_at = excluded.acquired_at, expires_at = excluded.expires_at, \
             heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&holder.instance_id)
        .bind(i64::from(holder.pid))
        .bind(&holder.host)
        .bind(&holder.label)
        .bind(now)
        .bind(now + lease)
        .bind(now)
        .execute(&mut *tx)
        .await
        .during("taking the run lock")?;
        tx.commit().await.during("committing the run lock")
    }

    async fn renew_lock(
        &self,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin_immediate("starting the lock transaction")
            .await?;
        let renewed = sqlx::query(
            "UPDATE run_lock SET expires_at = ?, heartbeat_at = ? WHERE id = 1 AND instance_id = ?",
        )
        .bind(now + lease)
        .bind(now)
        .bind(&holder.instance_id)
        .execute(&mut *tx)
        .await
        .during("renewing the run lock")?;
        Self::commit_if_held(tx, holder, renewed.rows_affected()).await
    }

    async fn release_lock(&self, holder: &LockHolder) -> Result<(), StoreError> {
        // Right after a run's details, and like them without waiting for the
        // disk (see `finish_run`): else this commit would sync them. Undone
        // only by a power loss before the checkpoint, it leaves a lock whose
        // heartbeat has stopped, which the next run takes over.
        let mut conn = self.relaxed_writer("starting the lock transaction").await?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .during("starting the lock transaction")?;
        let released = sqlx::query("DELETE FROM run_lock WHERE id = 1 AND instance_id = ?")
            .bind(&holder.instance_id)
            .execute(&mut *tx)
            .await
            .during("releasing the run lock")?;
        if released.rows_affected() == 0 {
            if let Some(current) = Self::read_lock(&mut tx).await? {
                return Err(StoreError::lock_lost(holder, Some(current.holder)));
            }
        }
        tx.commit().await.during("committing the run lock")
    }

    async fn heartbeat_lock(
        &self,
        holder: &LockHolder,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin_immediate("starting the lock transaction")
            .await?;
        let beat =
            sqlx::query("UPDATE run_lock SET heartbeat_at = ? WHERE id = 1 AND instance_id = ?")
                .bind(now)
                .bind(&holder.instance_id)
                .execute(&mut *tx)
                .await
                .during("renewing the run lock's heartbeat")?;
        Self::commit_if_held(tx, holder, beat.rows_affected()).await
    }

    async fn current_lock(&self) -> Result<Option<LockInfo>, StoreError> {
        let mut conn = self.reader.acquire().await.during("reading the run lock")?;
        Self::read_lock(&mut conn).await
    }

    async fn begin_run(
        &self,
        holder: &LockHolder,
        trigger: Trigger,
        mode: Mode,
        started_at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin_owned(holder, "starting to record a run").await?;
        let done = sqlx::query(
            "INSERT INTO runs (schema_version, trigger_kind, mode, status, started_at) \
             VALUES (?, ?, ?, 'running', ?)",
        )
        .bind(i64::from(SCHEMA_VERSION))
        .bind(trigger.as_str())
        .bind(mode.as_str())
        .bind(started_at)
        .execute(&mut *tx)
        .await
        .during("recording the start of a run")?;
        tx.commit().await.during("recording the start of a run")?;
        Ok(done.last_insert_rowid())
    }

    async fn finish_run(&self, holder: &LockHolder, report: &Report) -> Result<(), StoreError> {
        let run_id = report.run_id;
        let sources = &report.sources;
        let summary = &report.summary;
        // This commit does not wait for the disk (with full sync, its fsync
        // of a million-user run's ~70 MB took ~50 ms on the way to the
        // report): the checkpoint right after the run makes it durable. Only
        // an OS crash or power loss before then can undo it, leaving the run
        // `running` for the next run to mark interrupted.
        let mut conn = self.relaxed_writer("starting to save a run").await?;
        let tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
            .await
            .during("starting to save a run")?;
        let mut tx = Self::still_owned(tx, holder).await?;
        let updated = sqlx::query(
            "UPDATE runs SET schema_version = ?, trigger_kind = ?, mode = ?, status = ?, \
             abort_reason = ?, started_at = ?, finished_at = ?, \
             azure_users = ?, azure_complete = ?, azure_delta = ?, \
             ifs_users = ?, ifs_complete = ?, ifs_delta = ?, \
             flow_users = ?, flow_complete = ?, flow_delta = ?, \
             people = ?, ok = ?, findings_total = ?, findings_new = ?, \
             findings_persisting = ?, findings_resolved = ? \
             WHERE id = ?",
        )
        .bind(i64::from(report.schema_version))
        .bind(report.trigger.as_str())
        .bind(report.mode.as_str())
        .bind(RunState::from(report.status).as_str())
        .bind(report.abort_reason.as_deref())
        .bind(report.started_at)
        .bind(report.finished_at)
        .bind(to_db("sources.azure.users", sources.azure.users)?)
        .bind(sources.azure.complete)
        .bind(sources.azure.delta)
        .bind(to_db("sources.ifs.users", sources.ifs.users)?)
        .bind(sources.ifs.complete)
        .bind(sources.ifs.delta)
        .bind(to_db("sources.flow.users", sources.flow.users)?)
        .bind(sources.flow.complete)
        .bind(sources.flow.delta)
        .bind(to_db("summary.people", summary.people)?)
        .bind(to_db("summary.ok", summary.ok)?)
        .bind(to_db("summary.findings", summary.findings)?)
        .bind(to_db("summary.new", summary.new)?)
        .bind(to_db("summary.persisting", summary.persisting)?)
        .bind(to_db(
            "summary.resolved_since_last_run",
            summary.resolved_since_last_run,
        )?)
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .during("saving a run")?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::RunNotFound(run_id));
        }
        for table in ["run_counts", "run_advice", "finding_chunks", "run_actions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE run_id = ?"))
                .bind(run_id)
                .execute(&mut *tx)
                .await
                .during("replacing the details of a run")?;
        }
        insert_counts(&mut tx, run_id, summary).await?;
        insert_advice(&mut tx, run_id, &report.advice).await?;
        finding_chunks::insert(&mut tx, run_id, &report.findings).await?;
        insert_actions(&mut tx, run_id, &report.actions).await?;
        tx.commit().await.during("committing a run")
    }

    async fn load_report(&self, run_id: i64) -> Result<Option<Report>, StoreError> {
        let mut tx = self.reader.begin().await.during("reading a run")?;
        let Some(run) =
            sqlx::query_as::<_, RunRecord>(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?"))
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await
                .during("reading a run")?
        else {
            return Ok(None);
        };
        let status = run
            .status
            .0
            .finished()
            .ok_or(StoreError::RunNotFinished(run_id))?;

        let counts = sqlx::query_as::<_, CountRecord>(
            "SELECT dimension, name, count FROM run_counts WHERE run_id = ?",
        )
        .bind(run_id)
        .fetch_all(&mut *tx)
        .await
        .during("reading the counts of a run")?;
        let mut by_kind = BTreeMap::new();
        let mut by_cause = BTreeMap::new();
        for c in counts {
            let count = from_db("run_counts.count", c.count)?;
            match c.dimension.as_str() {
                "kind" => {
                    let kind: FindingKind = parse_name("run_counts.name", &c.name)?;
                    by_kind.insert(kind, count);
                }
                "cause" => {
                    let cause = parse_name("run_counts.name", &c.name)?;
                    by_cause.insert(cause, count);
                }
                other => return Err(corrupt("run_counts.dimension", other)),
            }
        }

        let advice: Vec<String> =
            sqlx::query_scalar("SELECT text FROM run_advice WHERE run_id = ? ORDER BY seq")
                .bind(run_id)
                .fetch_all(&mut *tx)
                .await
                .during("reading the advice of a run")?;

        let findings = finding_chunks::load(&mut tx, run_id).await?;

        let actions = sqlx::query_as::<_, DbAction>(
            "SELECT kind, flow_user_id, new_flow_user_id, status, error \
             FROM run_actions WHERE run_id = ? ORDER BY seq",
        )
        .bind(run_id)
        .fetch_all(&mut *tx)
        .await
        .during("reading the actions of a run")?
        .into_iter()
        .map(|row| row.0)
        .collect::<Vec<Action>>();
        tx.commit().await.during("reading a run")?;

        Ok(Some(Report {
            schema_version: u32::try_from(run.schema_version)
                .map_err(|_| corrupt("runs.schema_version", &run.schema_version.to_string()))?,
            run_id: run.id,
            trigger: run.trigger_kind.0,
            mode: run.mode.0,
            status,
            abort_reason: run.abort_reason.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            sources: run.sources()?,
            summary: Summary {
                people: from_db("runs.people", run.people)?,
                ok: from_db("runs.ok", run.ok)?,
                findings: from_db("runs.findings_total", run.findings_total)?,
                by_kind,
                by_cause,
                new: from_db("runs.findings_new", run.findings_new)?,
                persisting: from_db("runs.findings_persisting", run.findings_persisting)?,
                resolved_since_last_run: from_db("runs.findings_resolved", run.findings_resolved)?,
            },
            advice,
            findings,
            actions,
        }))
    }

    async fn previous_open_findings(
        &self,
        before_run: i64,
    ) -> Result<Option<(i64, HashSet<String>)>, StoreError> {
        let mut tx = self
            .reader
            .begin()
            .await
            .during("reading the previous run")?;
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE status = 'completed' AND person IS NULL AND id < ? \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(before_run)
        .fetch_optional(&mut *tx)
        .await
        .during("finding the previous completed run")?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        let keys = finding_chunks::load_keys(&mut tx, previous).await?;
        tx.commit().await.during("reading the previous run")?;
        Ok(Some((previous, keys)))
    }

    async fn list_runs(&self, limit: u32) -> Result<Vec<RunRow>, StoreError> {
        Ok(
            sqlx::query_as::<_, DbRunRow>(&format!("{RUN_LIST_SELECT} ORDER BY r.id DESC LIMIT ?"))
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
                .during("listing runs")?
                .into_iter()
                .map(|row| row.0)
                .collect(),
        )
    }

    async fn last_finished_run(&self) -> Result<Option<RunRow>, StoreError> {
        Ok(sqlx::query_as::<_, DbRunRow>(&format!(
            "{RUN_LIST_SELECT} WHERE r.status <> 'running' ORDER BY r.id DESC LIMIT 1"
        ))
        .fetch_optional(&self.reader)
        .await
        .during("reading the last finished run")?
        .map(|row| row.0))
    }

    async fn set_run_person(
        &self,
        holder: &LockHolder,
        run_id: i64,
        person: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin_owned(holder, "recording the person of a one-person run")
            .await?;
        sqlx::query("UPDATE runs SET person = ? WHERE id = ?")
            .bind(person)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .during("recording the person of a one-person run")?;
        tx.commit()
            .await
            .during("recording the person of a one-person run")
    }

    async fn last_completed_source_counts(&self) -> Result<Option<SourceCounts>, StoreError> {
        sqlx::query_as::<_, SourceCounts>(
            "SELECT azure_users AS azure, ifs_users AS ifs, flow_users AS flow \
             FROM runs WHERE status = 'completed' AND person IS NULL ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await
        .during("reading the source counts of the last completed run")
    }

    async fn load_azure_delta_link(
        &self,
        scope: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        sqlx::query_scalar(SELECT_DELTA_LINK)
            .bind(scope)
            .fetch_optional(&self.reader)
            .await
            .during("reading the Azure delta link")
    }

    async fn load_azure_snapshot(&self, scope: &str) -> Result<Option<AzureSnapshot>, StoreError> {
        let mut tx = self
            .reader
            .begin()
            .await
            .during("reading the Azure snapshot")?;
        let meta: Option<Option<String>> = sqlx::query_scalar(SELECT_DELTA_LINK)
            .bind(scope)
            .fetch_optional(&mut *tx)
            .await
            .during("reading the Azure snapshot")?;
        let Some(delta_link) = meta else {
            return Ok(None);
        };
        let users = azure_pages::load(&mut tx, scope).await?;
        tx.commit().await.during("reading the Azure snapshot")?;
        Ok(Some(AzureSnapshot { users, delta_link }))
    }

    async fn replace_azure_snapshot(
        &self,
        holder: &LockHolder,
        scope: &str,
        users: &[AadUser],
        delta_link: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin_owned(holder, "starting to save the Azure snapshot")
            .await?;
        upsert_snapshot_meta(&mut tx, scope, delta_link).await?;
        azure_pages::write_pages(&mut tx, scope, users).await?;
        tx.commit().await.during("committing the Azure snapshot")
    }

    async fn apply_azure_delta(
        &self,
        holder: &LockHolder,
        scope: &str,
        upserts: &[AadUser],
        removed_ids: &[String],
        delta_link: &str,
    ) -> Result<(), StoreError> {
        self.update_azure_snapshot(holder, scope, upserts, removed_ids, Some(delta_link))
            .await
    }

    async fn update_azure_snapshot(
        &self,
        holder: &LockHolder,
        scope: &str,
        upserts: &[AadUser],
        removed_ids: &[String],
        delta_link: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin_owned(holder, "starting to apply an Azure delta")
            .await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM azure_snapshots WHERE scope = ?")
                .bind(scope)
                .fetch_optional(&mut *tx)
                .await
                .during("reading the Azure snapshot")?;
        if exists.is_none() {
            return Err(StoreError::NoSnapshot(scope.to_string()));
        }
        azure_pages::write_changes(&mut tx, scope, upserts, removed_ids).await?;
        upsert_snapshot_meta(&mut tx, scope, delta_link).await?;
        tx.commit().await.during("committing an Azure delta")
    }

    async fn clear_azure_snapshot(
        &self,
        holder: &LockHolder,
        scope: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin_owned(holder, "clearing the Azure snapshot")
            .await?;
        // Its pages and changes go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM azure_snapshots WHERE scope = ?")
            .bind(scope)
            .execute(&mut *tx)
            .await
            .during("clearing the Azure snapshot")?;
        tx.commit().await.during("clearing the Azure snapshot")
    }

    async fn journal_pending(
        &self,
        holder: &LockHolder,
        run_id: i64,
        seq: i64,
        action: &Action,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut tx = self
            .begin_owned(holder, "journalling a pending action")
            .await?;
        let done = sqlx::query(
            "INSERT INTO action_journal (run_id, seq, kind, flow_user_id, new_flow_user_id, \
             action_status, action_error, state, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
        )
        .bind(run_id)
        .bind(seq)
        .bind(action.kind.as_str())
        .bind(&action.flow_user_id)
        .bind(action.new_flow_user_id.as_deref())
        .bind(action.status.as_str())
        .bind(action.error.as_deref())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::RunNotFound(run_id)
            }
            _ => StoreError::Query {
                context: "journalling a pending action",
                source: e,
            },
        })?;
        tx.commit().await.during("journalling a pending action")?;
        Ok(done.last_insert_rowid())
    }

    async fn journal_finish(
        &self,
        holder: &LockHolder,
        id: i64,
        state: JournalState,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin_owned(holder, "journalling the outcome of an action")
            .await?;
        let done = sqlx::query(
            "UPDATE action_journal SET state = ?, error = ?, finished_at = ? WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(error)
        .bind((state != JournalState::Pending).then_some(at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .during("journalling the outcome of an action")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::JournalEntryNotFound(id));
        }
        tx.commit()
            .await
            .during("journalling the outcome of an action")
    }

    async fn pending_journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(sqlx::query_as::<_, DbJournalEntry>(&format!(
            "SELECT {JOURNAL_COLUMNS} FROM action_journal WHERE state = 'pending' ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await
        .during("reading pending journal entries")?
        .into_iter()
        .map(|row| row.0)
        .collect())
    }

    async fn journal_for_run(&self, run_id: i64) -> Result<Vec<JournalEntry>, StoreError> {
        Ok(sqlx::query_as::<_, DbJournalEntry>(&format!(
            "SELECT {JOURNAL_COLUMNS} FROM action_journal WHERE run_id = ? ORDER BY id"
        ))
        .bind(run_id)
        .fetch_all(&self.reader)
        .await
        .during("reading the journal of a run")?
        .into_iter()
        .map(|row| row.0)
        .collect())
    }

    async fn record_mail(
        &self,
        run_id: i64,
        sent: bool,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let status = if sent {
            MailStatus::Sent
        } else {
            MailStatus::Failed
        };
        let done = sqlx::query(
            "UPDATE runs SET mail_status = ?, mail_error = ?, mail_at = ?, mail_given_up_at = NULL \
             WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(if sent { None } else { error })
        .bind(at)
        .bind(run_id)
        .execute(&self.writer)
        .await
        .during("recording the mail outcome of a run")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RunNotFound(run_id));
        }
        Ok(())
    }

    async fn close_interrupted_runs(
        &self,
        holder: &LockHolder,
        before_run: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self
            .begin_owned(holder, "closing runs that were interrupted")
            .await?;
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE runs SET status = 'failed', abort_reason = ?, finished_at = ? \
             WHERE status = 'running' AND id < ? RETURNING id",
        )
        .bind(reason)
        .bind(at)
        .bind(before_run)
        .fetch_all(&mut *tx)
        .await
        .during("closing runs that were interrupted")?;
        tx.commit()
            .await
            .during("closing runs that were interrupted")?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn runs_with_unsent_mail(&self) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM runs WHERE mail_status = 'failed' AND mail_given_up_at IS NULL \
             ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await
        .during("listing runs with unsent mail")
    }

    async fn give_up_mail(
        &self,
        run_ids: &[i64],
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .writer
            .begin()
            .await
            .during("giving up on failed mail")?;
        for id in run_ids {
            sqlx::query(
                "UPDATE runs SET mail_given_up_at = ?, \
                 mail_error = ? || COALESCE(' (last error: ' || mail_error || ')', '') \
                 WHERE id = ? AND mail_status = 'failed' AND mail_given_up_at IS NULL",
            )
            .bind(at)
            .bind(reason)
            .bind(id)
            .execute(&mut *tx)
            .await
            .during("giving up on failed mail")?;
        }
        tx.commit().await.during("giving up on failed mail")
    }
}

/// Whether the writer connection may serve the next write. A write that
/// failed mid-transaction (a full disk, an I/O error) can leave it inside a
/// transaction: when SQLite already rolled the transaction back itself, the
/// `ROLLBACK` sqlx sends on drop fails and sqlx still counts the transaction
/// as open, so every later `BEGIN IMMEDIATE` would be refused until a
/// restart. Such a connection is closed instead; the pool opens a fresh one.
fn writer_is_reusable(conn: &SqliteConnection) -> bool {
    use sqlx::Connection;
    if conn.is_in_transaction() {
        tracing::warn!("closing the store's writer connection left inside a failed transaction");
        return false;
    }
    true
}

/// Whether SQLite gave up waiting for another connection's lock
/// (`SQLITE_BUSY` and its extended codes).
fn is_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i64 = 5;
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|code| code & 0xff == SQLITE_BUSY),
        _ => false,
    }
}

/// Rows of `columns` bind parameters that fit in one statement.
fn rows_per_statement(columns: usize) -> usize {
    MAX_BIND_PARAMS / columns
}

async fn insert_counts(
    conn: &mut SqliteConnection,
    run_id: i64,
    summary: &Summary,
) -> Result<(), StoreError> {
    let mut rows: Vec<(&'static str, &'static str, i64)> = Vec::new();
    for (kind, count) in &summary.by_kind {
        rows.push(("kind", kind.as_str(), to_db("summary.by_kind", *count)?));
    }
    for (cause, count) in &summary.by_cause {
        rows.push(("cause", cause.as_str(), to_db("summary.by_cause", *count)?));
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut qb =
        QueryBuilder::<Sqlite>::new("INSERT INTO run_counts (run_id, dimension, name, count) ");
    qb.push_values(rows, |mut row, (dimension, name, count)| {
        row.push_bind(run_id)
            .push_bind(dimension)
            .push_bind(name)
            .push_bind(count);
    });
    qb.build()
        .execute(conn)
        .await
        .during("saving the counts of a run")?;
    Ok(())
}

async fn insert_advice(
    conn: &mut SqliteConnection,
    run_id: i64,
    advice: &[String],
) -> Result<(), StoreError> {
    let per_statement = rows_per_statement(3);
    for (chunk_no, chunk) in advice.chunks(per_statement).enumerate() {
        let base = chunk_no * per_statement;
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO run_advice (run_id, seq, text) ");
        qb.push_values(chunk.iter().enumerate(), |mut row, (i, text)| {
            row.push_bind(run_id)
                .push_bind(seq(base + i))
                .push_bind(text.as_str());
        });
        qb.build()
            .execute(&mut *conn)
            .await
            .during("saving the advice of a run")?;
    }
    Ok(())
}

async fn insert_actions(
    conn: &mut SqliteConnection,
    run_id: i64,
    actions: &[Action],
) -> Result<(), StoreError> {
    let per_statement = rows_per_statement(7);
    for (chunk_no, chunk) in actions.chunks(per_statement).enumerate() {
        let base = chunk_no * per_statement;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO run_actions (run_id, seq, kind, flow_user_id, new_flow_user_id, \
             status, error) ",
        );
        qb.push_values(chunk.iter().enumerate(), |mut row, (i, a)| {
            row.push_bind(run_id)
                .push_bind(seq(base + i))
                .push_bind(a.kind.as_str())
                .push_bind(a.flow_user_id.as_str())
                .push_bind(a.new_flow_user_id.as_deref())
                .push_bind(a.status.as_str())
                .push_bind(a.error.as_deref());
        });
        qb.build()
            .execute(&mut *conn)
            .await
            .during("saving the actions of a run")?;
    }
    Ok(())
}

async fn upsert_snapshot_meta(
    conn: &mut SqliteConnection,
    scope: &str,
    delta_link: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO azure_snapshots (scope, delta_link, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (scope) DO UPDATE SET delta_link = excluded.delta_link, \
         updated_at = excluded.updated_at",
    )
    .bind(scope)
    .bind(delta_link)
    .bind(Utc::now())
    .execute(conn)
    .await
    .during("saving the Azure snapshot")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Mode, Report, Trigger};

    /// A run's details and the lock's release commit without waiting for
    /// the disk; every write after them (say, the journal of an applying
    /// run) syncs fully again.
    #[tokio::test]
    async fn the_writer_syncs_fully_again_after_a_run_is_saved_and_its_lock_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idrecon.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let holder = LockHolder::current("sync test");
        let now = Utc::now();
        store
            .acquire_lock(&holder, now, chrono::Duration::minutes(5))
            .await
            .unwrap();
        let run = store
            .begin_run(&holder, Trigger::Manual, Mode::Report, now)
            .await
            .unwrap();
        let synchronous = || async {
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&store.writer)
                .await
                .unwrap()
        };
        const FULL: i64 = 2;
        assert_eq!(synchronous().await, FULL, "before the run is saved");

        let report = Report::started(run, Trigger::Manual, Mode::Report, now);
        store.finish_run(&holder, &report).await.unwrap();
        assert_eq!(synchronous().await, FULL, "after the run is saved");
        assert_eq!(store.load_report(run).await.unwrap(), Some(report));
        store.release_lock(&holder).await.unwrap();
        assert_eq!(synchronous().await, FULL, "after the lock is released");
    }
}
