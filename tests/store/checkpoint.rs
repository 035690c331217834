//! Commits never copy the write-ahead log into the database file (that
//! would hold up a run's report); `Store::checkpoint`, which every run
//! calls at its start, does.

use crate::store_support;

use idrecon::model::AadUser;
use idrecon::store::Store;
use store_support::{aad_user, fresh_locked_store, me};

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[tokio::test]
async fn a_large_commit_stays_in_the_wal_until_the_checkpoint() {
    let (_dir, path, store) = fresh_locked_store().await;
    let wal = path.with_file_name("idrecon.db-wal");
    let before = file_len(&path);

    // Well over SQLite's automatic checkpoint at 1,000 pages (4 MiB).
    let users: Vec<AadUser> = (1..=60_000).map(aad_user).collect();
    store
        .replace_azure_snapshot(&me(), "users", &users, Some("https://graph/delta?token=1"))
        .await
        .unwrap();
    let written = file_len(&wal);
    assert!(written > 4 << 20, "WAL {written} bytes");
    assert_eq!(
        file_len(&path),
        before,
        "the commit copied the WAL into the database file"
    );

    store.checkpoint().await.unwrap();
    assert!(
        file_len(&path) > before + (4 << 20),
        "database file {} bytes after the checkpoint (was {before})",
        file_len(&path)
    );
    // Everything is still there, read through the file and what is left of the WAL.
    let snap = store.load_azure_snapshot("users").await.unwrap().unwrap();
    assert_eq!(snap.users.len(), users.len());

    // The next write starts the log again, cut down to journal_size_limit.
    store
        .replace_azure_snapshot(&me(), "users", &users[..10], None)
        .await
        .unwrap();
    assert!(
        file_len(&wal) <= 64 << 20,
        "WAL {} bytes after restarting",
        file_len(&wal)
    );
}
