//! A full disk: the failed write rolls back, the writer connection is not
//! left inside a transaction, and the store works again once space is
//! freed, without reopening it.

use crate::store_support;

use idrecon::report::{Mode, Trigger};
use idrecon::store::Store;
use store_support::{aad_user, at, fresh_locked_store, me};

/// SQLite's `max_page_count` makes the file full without mounts.
#[tokio::test]
async fn a_write_that_fills_the_disk_rolls_back_and_the_next_one_works() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let small: Vec<_> = (0..10).map(aad_user).collect();
    store
        .replace_azure_snapshot(&me(), "users", &small, Some("d1"))
        .await
        .unwrap();

    let cap = store.set_max_page_count(1).await.unwrap();
    assert!(cap > 1, "the cap cannot go below the current size: {cap}");
    let big: Vec<_> = (0..5_000).map(aad_user).collect();
    let err = store
        .replace_azure_snapshot(&me(), "users", &big, Some("d2"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
    // Rolled back: the earlier snapshot is intact.
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users, small);
    assert_eq!(snap.delta_link.as_deref(), Some("d1"));

    // Space is freed: the same store writes again.
    store.set_max_page_count(u64::from(u32::MAX)).await.unwrap();
    store
        .replace_azure_snapshot(&me(), "users", &big, Some("d2"))
        .await
        .unwrap();
    store.release_lock(&me()).await.unwrap();
    assert_eq!(store.current_lock().await.unwrap(), None);
}

/// When SQLite rolls the whole transaction back itself (as it may on a
/// full disk or an I/O error, here forced by a `RAISE(ROLLBACK)` trigger),
/// sqlx's own `ROLLBACK` fails and it still counts the transaction as open:
/// without care, every later `BEGIN IMMEDIATE` (the run lock) is refused
/// until the process restarts.
#[tokio::test]
async fn a_transaction_sqlite_rolled_back_itself_does_not_wedge_the_writer() {
    let (_dir, path, store) = fresh_locked_store().await;
    let other = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER disk_full BEFORE INSERT ON azure_user_pages \
         BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END",
    )
    .execute(&other)
    .await
    .unwrap();
    let users: Vec<_> = (0..10).map(aad_user).collect();
    let err = store
        .replace_azure_snapshot(&me(), "users", &users, Some("d1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(store.load_azure_snapshot("users").await.unwrap(), None);

    // Space is freed.
    sqlx::query("DROP TRIGGER disk_full")
        .execute(&other)
        .await
        .unwrap();
    store
        .renew_lock(&me(), at(1), chrono::Duration::hours(1))
        .await
        .unwrap();
    store.release_lock(&me()).await.unwrap();
    store
        .acquire_lock(&me(), at(2), chrono::Duration::hours(1))
        .await
        .unwrap();
    let run = store
        .begin_run(&me(), Trigger::Manual, Mode::Report, at(3))
        .await
        .unwrap();
    assert!(run > 0);
    store
        .replace_azure_snapshot(&me(), "users", &users, Some("d1"))
        .await
        .unwrap();
}
