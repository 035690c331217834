//! The embedded migrations (`migrations/*.sql`) and how far a database file
//! is from them, read without changing anything (what `idrecon check` shows).

use super::error::{QueryContext, StoreError};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The migrations in `migrations/`, embedded at build time.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!();

/// How a database file's schema compares with the migrations of this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaStatus {
    /// Every migration of this build is applied, none other.
    UpToDate { migrations: usize },
    /// This many migrations of this build are not applied yet.
    Pending { pending: usize },
    /// This many applied migrations are unknown to this build (a newer idrecon wrote it).
    Newer { unknown: usize },
}

/// The schema status of the existing database file at `path`, over a
/// read-only connection: no file is created, no migration applied.
pub async fn schema_status(path: &Path) -> Result<SchemaStatus, StoreError> {
    let applied = applied_migrations(path).await?;
    let known: BTreeSet<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect();
    let pending = known.difference(&applied).count();
    let unknown = applied.difference(&known).count();
    Ok(if unknown > 0 {
        SchemaStatus::Newer { unknown }
    } else if pending > 0 {
        SchemaStatus::Pending { pending }
    } else {
        SchemaStatus::UpToDate {
            migrations: known.len(),
        }
    })
}

/// The versions of the migrations applied to the database at `path`.
async fn applied_migrations(path: &Path) -> Result<BTreeSet<i64>, StoreError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let has_table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut conn)
    .await
    .during("looking for the migrations table")?;
    let versions: Vec<i64> = if has_table.is_some() {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
            .fetch_all(&mut conn)
            .await
            .during("reading the applied migrations")?
    } else {
        Vec::new()
    };
    conn.close()
        .await
        .during("closing the read-only connection")?;
    Ok(versions.into_iter().collect())
}
