//! The run lock with the real binary: a second applying run is refused
//! (exit 4, naming the holder's pid and host) and sends nothing; a lock left
//! by a process whose heartbeat stopped (whatever its PID), or whose lease
//! ran out, is taken over.

use crate::fix_support;

use chrono::Utc;
use fix_support::*;
use idrecon::store::{LockHolder, Store};
use std::process::Stdio;
use std::time::{Duration, Instant};

const PEOPLE: usize = 500;
const SEED: u64 = 3;

fn this_host() -> String {
    LockHolder::current("x").host
}

const APPLY: [&str; 6] = [
    "reconcile",
    "--apply",
    "--max-changes",
    "1000",
    "--format",
    "json",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_while_one_runs_exits_4_naming_the_holder() {
    let env = fix_app(PEOPLE, SEED, "flow-write:slow=60x*", Tweaks::default()).await;
    let renames = planned_renames(&env.report_only().await);
    let mut first = env
        .command(&APPLY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.handle.request_count("/flow/users/rename") == 0 {
        assert!(
            Instant::now() < deadline,
            "the first run never started applying"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = env.binary(&APPLY);
    let first_status = tokio::task::block_in_place(|| first.wait()).unwrap();

    assert_eq!(second.status.code(), Some(4), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(
        err.contains(&format!("pid {} on host {}", first.id(), this_host())),
        "{err}"
    );
    assert_eq!(first_status.code(), Some(2));
    // Only the first run sent anything, each rename once.
    assert_eq!(env.writes().0, renames.len() as u64);
    for (_, to) in &renames {
        assert_eq!(env.handle.rename_count(to), 1);
    }
    assert_eq!(
        env.handle.request_count("/flow/users/rename"),
        renames.len() as u64
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_live_process_refuses_even_report_runs() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let store = env.store().await;
    let me = LockHolder::current("test holding the lock");
    store
        .acquire_lock(&me, Utc::now(), chrono::Duration::hours(1))
        .await
        .unwrap();
    for args in [&APPLY[..], &["reconcile", "--format", "json"][..]] {
        let out = env.binary(args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "pid {} on host {}",
                std::process::id(),
                this_host()
            )),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("test holding the lock"));
    }
    assert_eq!(env.writes(), (0, 0));
    store.release_lock(&me).await.unwrap();
    let out = env.binary(&APPLY);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(env.writes().0 > 0);
    store.close().await;
    env.sim.shutdown().await;
}

/// The container case: the killed run was PID 1 on this host, and PID 1 is
/// alive (the new process is PID 1 too). Its heartbeat stopped, so the lock
/// is taken over long before its hour-long lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_heartbeat_stopped_is_taken_over_whatever_its_pid() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let renames = planned_renames(&env.report_only().await);
    let store = env.store().await;
    let dead = LockHolder {
        instance_id: "killed-container".into(),
        pid: 1,
        host: this_host(),
        label: "reconcile".into(),
    };
    let stale = chrono::Duration::from_std(idrecon::store::HEARTBEAT_STALE_AFTER).unwrap();
    store
        .acquire_lock(
            &dead,
            Utc::now() - stale - chrono::Duration::seconds(5),
            chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(store.current_lock().await.unwrap().unwrap().holder, dead);

    let out = env.binary(&APPLY);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("taking over a stale run lock"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.writes().0, renames.len() as u64);
    assert_eq!(
        store.current_lock().await.unwrap(),
        None,
        "released at the end"
    );
    store.close().await;
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_of_another_host_is_kept_until_its_lease_ends() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let store = env.store().await;
    let elsewhere = LockHolder {
        instance_id: "batch-02-instance".into(),
        pid: 4242,
        host: "batch-02.example".into(),
        label: "scheduled run".into(),
    };
    // A fresh heartbeat: held, whatever its pid means here.
    store
        .acquire_lock(&elsewhere, Utc::now(), chrono::Duration::hours(1))
        .await
        .unwrap();
    let out = env.binary(&APPLY);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("pid 4242 on host batch-02.example"));
    assert_eq!(env.writes(), (0, 0));

    // The same lock with a lease that ran out an hour ago.
    store.release_lock(&elsewhere).await.unwrap();
    store
        .acquire_lock(
            &elsewhere,
            Utc::now() - chrono::Duration::hours(2),
            chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    let out = env.binary(&APPLY);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(env.writes().0 > 0);
    store.close().await;
    env.sim.shutdown().await;
}
