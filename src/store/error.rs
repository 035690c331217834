//! What can go wrong in the store.

use super::lock::{LockHolder, LockInfo};
use chrono::{DateTime, SecondsFormat, Utc};
use std::path::PathBuf;

/// An error of the store. [`StoreError::LockHeld`] means another run holds
/// the lock (callers exit with code 4); everything else is a failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `store.url` / `--db` is not a usable SQLite location.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The database file could not be created, inspected or secured.
    #[error("cannot {action} database file {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// SQLite could not open the file (not a database, unreadable, …).
    #[error("cannot open SQLite database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },

    /// A migration failed or the database was written by a newer idrecon.
    #[error("cannot migrate SQLite database {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query failed; `context` says what the store was doing.
    #[error("database error while {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// Another run holds the run lock.
    #[error(
        "the run lock is held by {holder} since {} (last heartbeat {}, lease until {}); \
         if that process is gone, the lock can be taken over from {}",
        .acquired_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        .heartbeat_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        .expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        super::lock::free_at(*.heartbeat_at, *.expires_at).to_rfc3339_opts(SecondsFormat::Secs, true)
    )]
    LockHeld {
        holder: Box<LockHolder>,
        acquired_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        heartbeat_at: DateTime<Utc>,
    },

    /// Renew or release by a holder that does not hold the lock (any more).
    #[error("the run lock is no longer held by {holder}; {}", match .current {
        Some(current) => format!("it is now held by {current}"),
        None => String::from("it is free"),
    })]
    LockLost {
        holder: Box<LockHolder>,
        current: Option<Box<LockHolder>>,
    },

    #[error("run {0} does not exist")]
    RunNotFound(i64),

    /// The run was begun and never finished (still running, or killed).
    #[error("run {0} has not finished: it is still running or was interrupted")]
    RunNotFinished(i64),

    #[error("journal entry {0} does not exist")]
    JournalEntryNotFound(i64),

    /// A delta needs a stored snapshot to apply to.
    #[error("no Azure snapshot is stored for scope {0:?}; a full listing is needed first")]
    NoSnapshot(String),

    /// A stored value that this version does not understand.
    #[error("unexpected value in the database: {what} = {value:?}")]
    Corrupt { what: &'static str, value: String },

    /// A value too large for SQLite's 64-bit integers.
    #[error("{what} = {value} is too large to store")]
    OutOfRange { what: &'static str, value: u64 },
}

impl StoreError {
    /// The refusal for `holder`, which no longer holds the lock (`current`
    /// does, or nobody).
    pub(crate) fn lock_lost(holder: &LockHolder, current: Option<LockHolder>) -> StoreError {
        StoreError::LockLost {
            holder: Box::new(holder.clone()),
            current: current.map(Box::new),
        }
    }

    /// The refusal for a lock `current` holds.
    pub(crate) fn lock_held(current: LockInfo) -> StoreError {
        StoreError::LockHeld {
            holder: Box::new(current.holder),
            acquired_at: current.acquired_at,
            expires_at: current.expires_at,
            heartbeat_at: current.heartbeat_at,
        }
    }
}

/// Attaches what the store was doing to an sqlx error.
pub(crate) trait QueryContext<T> {
    fn during(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> QueryContext<T> for Result<T, sqlx::Error> {
    fn during(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query { context, source })
    }
}
