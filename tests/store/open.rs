//! Opening the store: URL forms, file creation with mode 0600, WAL,
//! migrations on a fresh file and on reopen, and clear errors for bad input.

use crate::store_support;

use idrecon::report::{Mode, Trigger};
use idrecon::store::{SqliteStore, Store, StoreError};
use std::os::unix::fs::PermissionsExt;
use store_support::{at, fresh_locked_store, me};

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn fresh_file_is_created_0600_in_wal_with_all_migrations() {
    let (_dir, path, store) = fresh_locked_store().await;
    assert!(path.is_file());
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(store.journal_mode().await.unwrap(), "wal");

    // Write something so the WAL file exists; SQLite gives it the db's mode.
    store
        .begin_run(&me(), Trigger::Manual, Mode::Report, at(0))
        .await
        .unwrap();
    let wal = path.with_file_name("idrecon.db-wal");
    assert!(wal.is_file(), "WAL file should exist while open");
    assert_eq!(mode_of(&wal), 0o600);

    // Every table of the schema exists and the migration is recorded.
    let conn = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&conn)
    .await
    .unwrap();
    for table in [
        "_sqlx_migrations",
        "action_journal",
        "azure_snapshots",
        "azure_user_changes",
        "azure_user_pages",
        "finding_chunks",
        "run_actions",
        "run_advice",
        "run_counts",
        "run_lock",
        "runs",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "missing {table}: {tables:?}"
        );
    }
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
            .fetch_one(&conn)
            .await
            .unwrap();
    let embedded = sqlx::migrate!("./migrations").migrations.len() as i64;
    assert!(embedded >= 2, "both migrations are embedded");
    assert_eq!(applied, embedded);
    conn.close().await;
}

#[tokio::test]
async fn reopen_keeps_data_and_migrations_are_idempotent() {
    let (_dir, path, store) = fresh_locked_store().await;
    let run = store
        .begin_run(&me(), Trigger::Schedule, Mode::Apply, at(0))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    drop(store);

    // Plain-path form this time.
    let reopened = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    reopened.migrate().await.unwrap();
    let runs = reopened.list_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, run);
    assert_eq!(runs[0].trigger, Trigger::Schedule);
    assert_eq!(runs[0].mode, Mode::Apply);
    assert_eq!(mode_of(&path), 0o600);
}

#[tokio::test]
async fn relative_and_absolute_url_forms_open_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().join("abs.db");
    // sqlite:///abs/path.db: the third slash starts the absolute path.
    let url = format!("sqlite://{}", abs.display());
    assert!(url.starts_with("sqlite:///"));
    let store = SqliteStore::open(&url).await.unwrap();
    assert_eq!(store.path(), abs.as_path());
    assert!(abs.is_file());
}

#[tokio::test]
async fn existing_world_readable_file_is_narrowed_to_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(mode_of(&path), 0o600);
}

#[tokio::test]
async fn bad_urls_and_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();

    let err = SqliteStore::open("postgres://db.example.com/idrecon")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert!(
        err.to_string().contains("unsupported scheme \"postgres\""),
        "{err}"
    );

    let err = SqliteStore::open("sqlite://").await.unwrap_err();
    assert!(err.to_string().contains("no file path"), "{err}");

    let err = SqliteStore::open("sqlite::memory:").await.unwrap_err();
    assert!(err.to_string().contains("in-memory"), "{err}");

    let missing_dir = dir.path().join("no/such/dir/x.db");
    let err = SqliteStore::open(&format!("sqlite://{}", missing_dir.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::File { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cannot create database file"), "{msg}");
    assert!(msg.contains(&missing_dir.display().to_string()), "{msg}");

    let err = SqliteStore::open(dir.path().to_str().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");

    let not_db = dir.path().join("notes.txt");
    std::fs::write(
        &not_db,
        "this is not an SQLite database, just text ".repeat(100),
    )
    .unwrap();
    let err = SqliteStore::open(not_db.to_str().unwrap())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&not_db.display().to_string()), "{msg}");
    assert!(msg.contains("not a database"), "{msg}");
    // The file was not replaced or truncated.
    assert!(std::fs::read_to_string(&not_db)
        .unwrap()
        .starts_with("this is not an SQLite database"));
}
