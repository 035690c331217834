//! The run lock: one holder at a time, named in the refusal; owned by a
//! process instance (not a PID) that keeps a heartbeat; taken over once the
//! lease expired or the heartbeat went stale, whatever the PID says.

use crate::store_support;

use chrono::Duration;
use idrecon::store::{
    hold_with_heartbeat, LockHolder, SqliteStore, Store, StoreError, HEARTBEAT_STALE_AFTER,
};
use store_support::{at, fresh_store};

/// A holder of another process instance.
fn holder(instance: &str, pid: u32, host: &str, label: &str) -> LockHolder {
    LockHolder {
        instance_id: instance.to_string(),
        pid,
        host: host.to_string(),
        label: label.to_string(),
    }
}

fn stale_secs() -> i64 {
    HEARTBEAT_STALE_AFTER.as_secs() as i64
}

fn here() -> String {
    LockHolder::current("x").host
}

#[tokio::test]
async fn second_holder_is_refused_naming_the_holder_and_when_it_frees() {
    let (_dir, path, store) = fresh_store().await;
    let first = holder("first-instance", 4242, &here(), "run (scheduled)");
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
            heartbeat_at,
        } => {
            assert_eq!(**holder, first);
            assert_eq!(*acquired_at, at(0));
            assert_eq!(*expires_at, at(600));
            assert_eq!(*heartbeat_at, at(0));
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("pid 4242 on host {}", here())),
        "{msg}"
    );
    assert!(msg.contains("instance first-instance"), "{msg}");
    assert!(msg.contains("since 2024-05-01T02:00:00Z"), "{msg}");
    assert!(msg.contains("last heartbeat 2024-05-01T02:00:00Z"), "{msg}");
    // Free once the heartbeat is stale (before the 10-minute lease ends).
    let free = (at(0) + Duration::seconds(stale_secs()))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(msg.contains(&format!("taken over from {free}")), "{msg}");

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

/// The container case: the killed run was PID 1, and so is the restarted
/// process. The PID says "alive"; the stale heartbeat says it is gone.
#[tokio::test]
async fn a_pid_1_holder_with_a_stale_heartbeat_is_taken_over() {
    let (_dir, _path, store) = fresh_store().await;
    let killed = holder("before-restart", 1, &here(), "scheduled run");
    store
        .acquire_lock(&killed, at(0), Duration::hours(1))
        .await
        .unwrap();

    let restarted = LockHolder {
        pid: 1,
        ..LockHolder::current("scheduled run")
    };
    // Heartbeat still fresh: refused.
    let err = store
        .acquire_lock(&restarted, at(stale_secs() - 1), Duration::hours(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::LockHeld { .. }), "{err:?}");
    // Stale, long before the hour-long lease ends: taken over.
    store
        .acquire_lock(&restarted, at(stale_secs()), Duration::hours(1))
        .await
        .unwrap();
    let info = store.current_lock().await.unwrap().unwrap();
    assert_eq!(info.holder, restarted);
    assert_eq!(info.heartbeat_at, at(stale_secs()));

    // The killed instance can no longer renew, beat or release it.
    for err in [
        store
            .renew_lock(&killed, at(stale_secs() + 1), Duration::hours(1))
            .await
            .unwrap_err(),
        store
            .heartbeat_lock(&killed, at(stale_secs() + 1))
            .await
            .unwrap_err(),
        store.release_lock(&killed).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::LockLost { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains(&format!("instance {}", restarted.instance_id)),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_renewed_heartbeat_keeps_a_long_run_locked() {
    let (_dir, path, store) = fresh_store().await;
    let long_run = holder("long-run", 7, "batch-01.example", "run");
    store
        .acquire_lock(&long_run, at(0), Duration::hours(1))
        .await
        .unwrap();
    let other = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let me = LockHolder::current("reconcile");
    let step = stale_secs() / 2;
    for beat in 1..=6 {
        store
            .heartbeat_lock(&long_run, at(beat * step))
            .await
            .unwrap();
        // Long past the first heartbeat's staleness: still held.
        let err = other
            .acquire_lock(&me, at(beat * step + step), Duration::hours(1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::LockHeld { .. }), "{err:?}");
    }
    // The beats stop (the process died): free one stale period later.
    other
        .acquire_lock(&me, at(6 * step + stale_secs()), Duration::hours(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_lease_is_taken_over_even_from_a_beating_holder() {
    let (_dir, _path, store) = fresh_store().await;
    let old = holder("old", 1234, &here(), "run");
    store
        .acquire_lock(&old, at(0), Duration::minutes(5))
        .await
        .unwrap();
    store.heartbeat_lock(&old, at(290)).await.unwrap();

    let me = LockHolder::current("reconcile");
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
    assert_eq!(info.heartbeat_at, at(200));

    // Still held at the old expiry time thanks to the renewal.
    let other = holder("other", 99, &me.host, "reconcile");
    assert!(store
        .acquire_lock(&other, at(310), Duration::minutes(5))
        .await
        .is_err());

    store.release_lock(&me).await.unwrap();
    assert_eq!(store.current_lock().await.unwrap(), None);
    // Releasing a free lock is harmless; renewing it is not possible.
    store.release_lock(&me).await.unwrap();
    let err = store
        .renew_lock(&me, at(311), Duration::minutes(5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("it is free"), "{err}");

    store
        .acquire_lock(&other, at(311), Duration::minutes(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_acquirers_get_exactly_one_lock() {
    let (_dir, path, store) = fresh_store().await;
    let second = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            second.clone()
        };
        let h = holder(&format!("racer-{i}"), 1, "container", "race");
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
    let busy_holder = holder("busy", 77, &here(), "run (saving snapshot)");
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
        StoreError::LockHeld { holder, .. } => assert_eq!(*holder, busy_holder),
        other => panic!("expected LockHeld, got {other}"),
    }
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
}

/// `hold_with_heartbeat` renews the heartbeat while the work goes on, even
/// when the work itself waits on the store's writer connection.
#[tokio::test]
async fn hold_with_heartbeat_beats_while_the_work_runs() {
    let (_dir, _path, store) = fresh_store().await;
    let me = LockHolder::current("run");
    store
        .acquire_lock(&me, at(0), Duration::hours(1))
        .await
        .unwrap();
    // Each beat writes a later time.
    let clock = TickingClock(std::sync::atomic::AtomicI64::new(0));
    let work = async {
        loop {
            // The work keeps writing too (as a run saving its snapshot does).
            store
                .renew_lock(&me, at(0), Duration::hours(1))
                .await
                .unwrap();
            let info = store.current_lock().await.unwrap().unwrap();
            if info.heartbeat_at >= at(30) {
                return info.heartbeat_at;
            }
            tokio::task::yield_now().await;
        }
    };
    let beat = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        hold_with_heartbeat(
            &store,
            &me,
            &clock,
            std::time::Duration::from_millis(5),
            work,
        ),
    )
    .await
    .expect("the heartbeat advanced");
    assert!(beat >= at(30));
}

/// A clock 10 s later at each reading (the heartbeat's only use of it).
struct TickingClock(std::sync::atomic::AtomicI64);

#[async_trait::async_trait]
impl idrecon::clock::Clock for TickingClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        at(self.0.fetch_add(10, std::sync::atomic::Ordering::SeqCst) + 10)
    }

    async fn sleep_until(&self, _deadline: chrono::DateTime<chrono::Utc>) {
        unreachable!("the heartbeat never sleeps on the clock")
    }
}
