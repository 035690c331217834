//! The run lock: one holder at a time, named in the refusal; taken over
//! after the lease expires or when the holding process on this host died.

use crate::store_support;

use chrono::Duration;
use idrecon::store::{LockHolder, SqliteStore, Store, StoreError};
use std::process::{Child, Command};
use store_support::{at, fresh_store};

/// A live process other than this one, killed when dropped.
struct LiveChild(Child);

impl LiveChild {
    fn spawn() -> Self {
        LiveChild(
            Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawn sleep"),
        )
    }
}

impl Drop for LiveChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait for true");
    pid
}

fn holder(pid: u32, host: &str, label: &str) -> LockHolder {
    LockHolder {
        pid,
        host: host.to_string(),
        label: label.to_string(),
    }
}

#[tokio::test]
async fn second_holder_is_refused_with_pid_and_host() {
    let (_dir, path, store) = fresh_store().await;
    let child = LiveChild::spawn();
    let here = LockHolder::current("reconcile").host;
    let first = holder(child.0.id(), &here, "run (scheduled)");
    store
        .acquire_lock(&first, at(0), Duration::minutes(10))
        .await
        .unwrap();

    // Another process (a second store on the same file) asks for it.
    let other = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let me = LockHolder::current("reconcile");
    let err = other
        .acquire_lock(&me, at(60), Duration::minutes(10))
        .await
        .unwrap_err();
    match &err {
        StoreError::LockHeld {
            holder,
            acquired_at,
            expires_at,
        } => {
            assert_eq!(holder, &first);
            assert_eq!(*acquired_at, at(0));
            assert_eq!(*expires_at, at(600));
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {}", child.0.id())), "{msg}");
    assert!(msg.contains(&format!("host {here}")), "{msg}");
    assert!(msg.contains("since 2024-05-01T02:00:00Z"), "{msg}");

    // The refusal changed nothing.
    let info = store.current_lock().await.unwrap().unwrap();
    assert_eq!(info.holder, first);
}

#[tokio::test]
async fn this_process_cannot_take_the_lock_twice() {
    let (_dir, _path, store) = fresh_store().await;
    let me = LockHolder::current("reconcile");
    store
        .acquire_lock(&me, at(0), Duration::minutes(5))
        .await
        .unwrap();
    let err = store
        .acquire_lock(&me, at(1), Duration::minutes(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LockHeld { .. }), "{err:?}");
}

#[tokio::test]
async fn expired_lease_is_taken_over_even_from_a_live_holder() {
    let (_dir, _path, store) = fresh_store().await;
    let child = LiveChild::spawn();
    let here = LockHolder::current("x").host;
    let old = holder(child.0.id(), &here, "run");
    store
        .acquire_lock(&old, at(0), Duration::minutes(5))
        .await
        .unwrap();

    let me = LockHolder::current("reconcile");
    // One second before expiry: refused; at expiry: taken over.
    assert!(store
        .acquire_lock(&me, at(299), Duration::minutes(5))
        .await
        .is_err());
    store
        .acquire_lock(&me, at(300), Duration::minutes(5))
        .await
        .unwrap();
    let info = store.current_lock().await.unwrap().unwrap();
    assert_eq!(info.holder, me);
    assert_eq!(info.acquired_at, at(300));
    assert_eq!(info.expires_at, at(600));

    // The old holder's renew and release are refused and name the new holder.
    let err = store
        .renew_lock(&old, at(310), Duration::minutes(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LockLost { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("pid {}", me.pid)),
        "{err}"
    );
    assert!(matches!(
        store.release_lock(&old).await.unwrap_err(),
        StoreError::LockLost { .. }
    ));
}

#[tokio::test]
async fn dead_holder_on_this_host_is_taken_over_before_expiry() {
    let (_dir, _path, store) = fresh_store().await;
    let here = LockHolder::current("x").host;
    let crashed = holder(dead_pid(), &here, "run");
    store
        .acquire_lock(&crashed, at(0), Duration::hours(1))
        .await
        .unwrap();

    let me = LockHolder::current("reconcile");
    store
        .acquire_lock(&me, at(10), Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(store.current_lock().await.unwrap().unwrap().holder, me);
}

#[tokio::test]
async fn dead_pid_on_another_host_is_not_taken_over() {
    let (_dir, _path, store) = fresh_store().await;
    // That pid means nothing on this machine: only the lease can free it.
    let remote = holder(dead_pid(), "some-other-host.example", "run");
    store
        .acquire_lock(&remote, at(0), Duration::hours(1))
        .await
        .unwrap();
    let me = LockHolder::current("reconcile");
    let err = store
        .acquire_lock(&me, at(10), Duration::hours(1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("host some-other-host.example"),
        "{err}"
    );
}

#[tokio::test]
async fn renew_extends_and_release_frees() {
    let (_dir, _path, store) = fresh_store().await;
    let me = LockHolder::current("run");
    store
        .acquire_lock(&me, at(0), Duration::minutes(5))
        .await
        .unwrap();
    store
        .renew_lock(&me, at(200), Duration::minutes(5))
        .await
        .unwrap();
    let info = store.current_lock().await.unwrap().unwrap();
    assert_eq!(info.expires_at, at(500));
    assert_eq!(info.acquired_at, at(0));

    // Still held at the old expiry time thanks to the renewal.
    let child = LiveChild::spawn();
    let other = holder(child.0.id(), &me.host, "reconcile");
    assert!(store
        .acquire_lock(&other, at(400), Duration::minutes(5))
        .await
        .is_err());

    store.release_lock(&me).await.unwrap();
    assert_eq!(store.current_lock().await.unwrap(), None);
    // Releasing a free lock is harmless; renewing it is not possible.
    store.release_lock(&me).await.unwrap();
    let err = store
        .renew_lock(&me, at(401), Duration::minutes(5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("it is free"), "{err}");

    store
        .acquire_lock(&other, at(401), Duration::minutes(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_acquirers_get_exactly_one_lock() {
    let (_dir, path, store) = fresh_store().await;
    let second = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let children: Vec<LiveChild> = (0..6).map(|_| LiveChild::spawn()).collect();
    let host = LockHolder::current("x").host;
    let mut tasks = Vec::new();
    for (i, child) in children.iter().enumerate() {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            second.clone()
        };
        let h = holder(child.0.id(), &host, "race");
        tasks.push(tokio::spawn(async move {
            s.acquire_lock(&h, at(0), Duration::minutes(5)).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::LockHeld { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn lock_held_is_reported_while_another_process_keeps_the_database_busy() {
    let (_dir, path, store) = fresh_store().await;
    let child = LiveChild::spawn();
    let here = LockHolder::current("x").host;
    let busy_holder = holder(child.0.id(), &here, "run (saving snapshot)");
    store
        .acquire_lock(&busy_holder, at(0), Duration::minutes(10))
        .await
        .unwrap();

    // Another connection holds SQLite's write lock (like a long snapshot save).
    use sqlx::Connection;
    let mut writer = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();

    let me = LockHolder::current("reconcile");
    let err = store
        .acquire_lock(&me, at(5), Duration::minutes(10))
        .await
        .unwrap_err();
    match err {
        StoreError::LockHeld { holder, .. } => assert_eq!(holder, busy_holder),
        other => panic!("expected LockHeld, got {other}"),
    }
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
}
