//! What the store says about a database without changing it (`check`'s
//! schema line), and rows decoded straight into the model: a stored name
//! this version does not know is an error naming the column and the value.

use crate::store_support;

use idrecon::report::{Mode, Trigger};
use idrecon::store::{schema_status, SchemaStatus, SqliteStore, Store};
use store_support::{at, fresh_locked_store, fresh_store, me, mismatch, report};

/// How many migrations this build has (the files in `migrations/`).
fn migrations_in_tree() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count()
}

async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_migrated_store_is_up_to_date() {
    let (_dir, path, store) = fresh_store().await;
    store.close().await;
    assert_eq!(
        schema_status(&path).await.unwrap(),
        SchemaStatus::UpToDate {
            migrations: migrations_in_tree()
        }
    );
}

#[tokio::test]
async fn an_empty_file_has_every_migration_pending_and_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    assert_eq!(
        schema_status(&path).await.unwrap(),
        SchemaStatus::Pending {
            pending: migrations_in_tree()
        }
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn a_migration_this_build_does_not_know_is_a_newer_schema() {
    let (_dir, path, store) = fresh_store().await;
    store.close().await;
    let pool = raw(&path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(
        schema_status(&path).await.unwrap(),
        SchemaStatus::Newer { unknown: 1 }
    );
}

#[tokio::test]
async fn a_file_that_is_no_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.db");
    std::fs::write(&path, "this is not SQLite, just text that is long enough").unwrap();
    assert!(schema_status(&path).await.is_err());
}

#[tokio::test]
async fn an_unknown_finding_kind_is_an_error_naming_column_and_value() {
    let (_dir, path, store) = fresh_locked_store().await;
    let run = store
        .begin_run(&me(), Trigger::Manual, Mode::Report, at(0))
        .await
        .unwrap();
    let r = report(run, at(0), vec![mismatch("a1", "jdoe", "jdoe@contoso.com")]);
    store.finish_run(&me(), &r).await.unwrap();
    assert_eq!(store.load_report(run).await.unwrap().unwrap(), r);

    let pool = raw(&path).await;
    sqlx::query(
        "UPDATE finding_chunks SET findings = replace(findings, '\"id_mismatch\"', '\"teleported\"') \
         WHERE run_id = ?",
    )
        .bind(run)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = store.load_report(run).await.unwrap_err().to_string();
    assert!(err.contains("kind") && err.contains("teleported"), "{err}");
}

#[tokio::test]
async fn an_unknown_run_status_in_the_history_is_an_error_naming_it() {
    let (_dir, path, store) = fresh_locked_store().await;
    let run = store
        .begin_run(&me(), Trigger::Schedule, Mode::Apply, at(0))
        .await
        .unwrap();
    let rows = store.list_runs(5).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].trigger, rows[0].mode),
        (Trigger::Schedule, Mode::Apply)
    );

    // A hand edit that gets past the table's CHECK constraint.
    let mut conn = raw(&path).await.acquire().await.unwrap().detach();
    sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE runs SET status = 'Completed' WHERE id = ?")
        .bind(run)
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let err = store.list_runs(5).await.unwrap_err().to_string();
    assert!(
        err.contains("status") && err.contains("\"Completed\""),
        "{err}"
    );
    // Reopening does not change that: the value stays as it was.
    store.close().await;
    let again = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(again.list_runs(5).await.is_err());
}
