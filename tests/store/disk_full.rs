//! experiment
use crate::store_support;

use idrecon::store::{LockHolder, Store};
use store_support::{aad_user, at, fresh_store};

#[tokio::test]
async fn experiment() {
    let (_dir, path, store) = fresh_store().await;
    let me = LockHolder::current("run");
    let other = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("CREATE TRIGGER disk_full BEFORE INSERT ON azure_users BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END").execute(&other).await.unwrap();
    let small: Vec<_> = (0..10).map(aad_user).collect();
    let err = store.replace_azure_snapshot("users", &small, Some("d1")).await;
    eprintln!("{err:?}");
    sqlx::query("DROP TRIGGER disk_full").execute(&other).await.unwrap();
    let r = store.acquire_lock(&me, at(0), chrono::Duration::minutes(5)).await;
    eprintln!("acquire {r:?}");
    let err = store.replace_azure_snapshot("users", &small, Some("d1")).await;
    eprintln!("{err:?}");
}
