//! The scheduled worker (`worker::work`) against the simulator,
//! driven by a manual clock: runs at the scheduled times, delta runs,
//! `/healthz` and `/metrics` over real HTTP, fixes when `fix.enabled`, a
//! lock held by a manual run, and a clean stop in the middle of a run.

use crate::app_support::TestApp;
use crate::parts::WorkerParts;
use crate::worker_support;

use idrecon::clock::Clock;
use idrecon::model::ActionStatus;
use idrecon::report::{Mode, RunStatus, Trigger};
use idrecon::server::{StatusServer, StatusState};
use idrecon::sim::FaultPlan;
use idrecon::store::{JournalState, LockHolder, Store};
use idrecon::worker::work;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use worker_support::{enable_fixes, eventually, fast_http, get, utc};

const T0: &str = "2026-03-01T12:00:00Z";
const LIMIT: Duration = Duration::from_secs(180);

fn last_run_id(status: &StatusState) -> Option<i64> {
    status.health().last_run.map(|r| r.id)
}

/// Waits until the worker has finished the job of `due` (the run, the mail,
/// everything) and announces `next`: it sets the next run time last.
async fn wait_done(status: &StatusState, next: chrono::DateTime<chrono::Utc>) {
    eventually(&format!("the run before {next}"), || {
        status.health().next_run == Some(next)
    })
    .await;
}

/// The store's size in pages, as SQLite sees it through its WAL.
async fn database_pages(path: &std::path::Path) -> (u64, u64) {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    (pages.unsigned_abs(), size.unsigned_abs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_delta_health_and_metrics() {
    let env = TestApp::builder(80, 11).http(fast_http()).start().await;
    let parts = WorkerParts::new(&env, utc(T0)).await;
    let (store, schedule, clock, status) =
        (&parts.store, &parts.schedule, &parts.clock, &parts.status);
    let server = StatusServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let worker = parts.worker();
    let shutdown = CancellationToken::new();
    let sim = env.sim.handle();

    let driver = async {
        // Before any run: healthy, "starting", the next run announced.
        let due1 = schedule.next_after(clock.now());
        clock.wait_for_sleeper(due1).await;
        let (code, body) = get(&format!("{base}/healthz")).await;
        assert_eq!(code, 200, "{body}");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "starting");
        assert_eq!(
            health["next_run"].as_str().map(utc),
            Some(due1),
            "next_run in {body}"
        );
        assert!(store.list_runs(10).await.unwrap().is_empty());

        // Run 1: a full listing, report mode, mailed (findings open).
        clock.set(due1);
        let due2 = schedule.next_after(due1);
        wait_done(status, due2).await;
        assert_eq!(last_run_id(status), Some(1));
        // Commits leave the WAL alone; the worker copies it into the
        // database file after the run, while it waits for the next one.
        let (pages, page_size) = database_pages(&env.db_path).await;
        let file_len = std::fs::metadata(&env.db_path).unwrap().len();
        assert!(
            file_len >= pages * page_size,
            "database file {file_len} bytes, {pages} pages of {page_size}: not checkpointed"
        );
        let first = store.load_report(1).await.unwrap().unwrap();
        assert_eq!(first.trigger, Trigger::Schedule);
        assert_eq!(first.mode, Mode::Report);
        assert_eq!(
            first.status,
            RunStatus::Completed,
            "{:?}",
            first.abort_reason
        );
        assert_eq!(first.sources.azure.delta, Some(false));
        assert!(first.summary.findings > 0);
        assert_eq!(
            sim.sent_mail().len(),
            1,
            "run 1 is mailed: {:?}",
            store.list_runs(10).await.unwrap()
        );
        assert_eq!(sim.write_counts(), (0, 0), "report mode changes nothing");

        // Run 2: only the changes since run 1.
        sim.update_azure(|users| {
            users[0].edit(|fields| fields.display_name = Some("Renamed Person".into()))
        });
        clock.set(due2);
        let due3 = schedule.next_after(due2);
        wait_done(status, due3).await;
        assert_eq!(last_run_id(status), Some(2));
        let second = store.load_report(2).await.unwrap().unwrap();
        assert_eq!(second.status, RunStatus::Completed);
        assert_eq!(
            second.sources.azure.delta,
            Some(true),
            "second run is a delta run"
        );
        assert_eq!(second.sources.azure.users, first.sources.azure.users);

        // Run 3: IFS refuses the listing, the run aborts, /healthz says 503.
        sim.set_faults("ifs:403x*".parse::<FaultPlan>().unwrap());
        clock.set(due3);
        let due4 = schedule.next_after(due3);
        wait_done(status, due4).await;
        assert_eq!(last_run_id(status), Some(3));
        let third = store.load_report(3).await.unwrap().unwrap();
        assert_eq!(third.status, RunStatus::Aborted);
        let (code, body) = get(&format!("{base}/healthz")).await;
        assert_eq!(code, 503, "{body}");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "degraded");
        assert_eq!(health["last_run"]["id"], 3);
        assert_eq!(health["last_run"]["status"], "aborted");
        assert_eq!(sim.sent_mail().len(), 3, "an aborted run is always mailed");

        // Run 4: IFS is back, so is health.
        sim.set_faults(FaultPlan::default());
        clock.set(due4);
        let due5 = schedule.next_after(due4);
        wait_done(status, due5).await;
        assert_eq!(last_run_id(status), Some(4));
        let (code, body) = get(&format!("{base}/healthz")).await;
        assert_eq!(code, 200, "{body}");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["next_run"].as_str().map(utc), Some(due5));

        let (code, metrics) = get(&format!("{base}/metrics")).await;
        assert_eq!(code, 200);
        assert!(
            metrics.contains("idrecon_runs_total{status=\"completed\"} 3"),
            "{metrics}"
        );
        assert!(
            metrics.contains("idrecon_runs_total{status=\"aborted\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("idrecon_runs_total{status=\"failed\"} 0"),
            "{metrics}"
        );
        shutdown.cancel();
    };
    tokio::time::timeout(LIMIT, async {
        tokio::join!(work(&worker, shutdown.clone(), Some(server)), driver)
    })
    .await
    .expect("the worker stops after the test");

    // The status server stopped with the worker.
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err(),
        "/healthz still answers after the worker returned"
    );
    assert_eq!(store.list_runs(10).await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fix_enabled_a_scheduled_run_applies() {
    let env = TestApp::builder(120, 5)
        .edit(enable_fixes)
        .http(fast_http())
        .start()
        .await;
    let parts = WorkerParts::new(&env, utc(T0)).await;
    let (store, schedule, clock, status) =
        (&parts.store, &parts.schedule, &parts.clock, &parts.status);
    let worker = parts.worker();
    let shutdown = CancellationToken::new();
    let sim = env.sim.handle();
    let driver = async {
        let due1 = schedule.next_after(clock.now());
        clock.wait_for_sleeper(due1).await;
        clock.set(due1);
        wait_done(status, schedule.next_after(due1)).await;
        assert_eq!(last_run_id(status), Some(1));
        shutdown.cancel();
    };
    tokio::time::timeout(LIMIT, async {
        tokio::join!(work(&worker, shutdown.clone(), None), driver)
    })
    .await
    .expect("the worker stops");

    let report = store.load_report(1).await.unwrap().unwrap();
    assert_eq!(report.mode, Mode::Apply);
    assert_eq!(
        report.status,
        RunStatus::Completed,
        "{:?}",
        report.abort_reason
    );
    let applied = report
        .actions
        .iter()
        .filter(|a| a.status == ActionStatus::Applied)
        .count();
    assert!(applied > 0, "nothing applied: {:?}", report.actions);
    let (renames, deactivations) = sim.write_counts();
    assert_eq!((renames + deactivations) as usize, applied);
    assert!(store.pending_journal().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_run_finishes_the_current_action_and_returns() {
    let env = TestApp::builder(300, 9)
        .edit(enable_fixes)
        .http(fast_http())
        .start()
        .await;
    let parts = WorkerParts::new(&env, utc(T0)).await;
    let (store, schedule, clock) = (&parts.store, &parts.schedule, &parts.clock);
    let worker = parts.worker();
    let shutdown = CancellationToken::new();
    let sim = env.sim.handle();
    // Every Flow write takes 400 ms, so the run is surely mid-apply when stopped.
    sim.set_faults("flow-write:slow=400x*".parse::<FaultPlan>().unwrap());
    let driver = async {
        let due1 = schedule.next_after(clock.now());
        clock.wait_for_sleeper(due1).await;
        clock.set(due1);
        eventually("a first Flow write", || !sim.flow_writes().is_empty()).await;
        shutdown.cancel();
    };
    tokio::time::timeout(LIMIT, async {
        tokio::join!(work(&worker, shutdown.clone(), None), driver)
    })
    .await
    .expect("the worker returns after the current action");

    let report = store.load_report(1).await.unwrap().unwrap();
    assert_eq!(report.mode, Mode::Apply);
    let count = |s: ActionStatus| report.actions.iter().filter(|a| a.status == s).count();
    let applied = count(ActionStatus::Applied);
    let stopped = report
        .actions
        .iter()
        .filter(|a| {
            a.status == ActionStatus::Skipped
                && a.error.as_deref().unwrap_or("").contains("asked to stop")
        })
        .count();
    assert!(applied >= 1, "{:?}", report.actions);
    assert!(
        stopped >= 1,
        "stopping skipped nothing: {:?}",
        report.actions
    );
    assert_eq!(count(ActionStatus::Planned), 0, "every action was settled");
    // Nothing pending, and every write Flow saw is journalled as applied.
    assert!(store.pending_journal().await.unwrap().is_empty());
    let journal = store.journal_for_run(1).await.unwrap();
    let journalled_applied = journal
        .iter()
        .filter(|e| e.state == JournalState::Applied)
        .count();
    assert_eq!(journalled_applied, applied);
    assert_eq!(sim.flow_writes().len(), applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_manual_run_skips_the_scheduled_run() {
    let env = TestApp::builder(40, 2).http(fast_http()).start().await;
    let parts = WorkerParts::new(&env, utc(T0)).await;
    let (store, schedule, clock, status) =
        (&parts.store, &parts.schedule, &parts.clock, &parts.status);
    let worker = parts.worker();
    // A manual run of another process, alive (its heartbeat is renewed).
    let manual = LockHolder {
        instance_id: "manual-run".into(),
        ..LockHolder::current("reconcile")
    };
    store
        .acquire_lock(&manual, utc(T0), chrono::Duration::hours(48))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let driver = async {
        let due1 = schedule.next_after(clock.now());
        clock.wait_for_sleeper(due1).await;
        store.heartbeat_lock(&manual, due1).await.unwrap();
        clock.set(due1);
        // The worker skips this time and waits for the next one.
        let due2 = schedule.next_after(due1);
        wait_done(status, due2).await;
        assert!(store.list_runs(10).await.unwrap().is_empty());
        assert_eq!(last_run_id(status), None);
        store.release_lock(&manual).await.unwrap();
        clock.set(due2);
        wait_done(status, schedule.next_after(due2)).await;
        assert_eq!(last_run_id(status), Some(1));
        shutdown.cancel();
    };
    tokio::time::timeout(LIMIT, async {
        tokio::join!(work(&worker, shutdown.clone(), None), driver)
    })
    .await
    .expect("the worker keeps going after a skipped run and stops");
    let runs = store.list_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].started_at,
        schedule.next_after(schedule.next_after(utc(T0)))
    );
}

/// The disk fills during a scheduled run, then space is freed: the failed
/// write rolls back, the lock is released, `/healthz` says what failed, and
/// the next scheduled run works without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_run_visibly_and_the_next_run_recovers() {
    let env = TestApp::builder(40, 2).http(fast_http()).start().await;
    let parts = WorkerParts::new(&env, utc(T0)).await;
    let (store, schedule, clock, status) =
        (&parts.store, &parts.schedule, &parts.clock, &parts.status);
    let worker = parts.worker();
    let other = sqlx::SqlitePool::connect(&env.store_url).await.unwrap();
    // SQLite rolls the whole transaction back itself (as it may on a full
    // disk): the run cannot even be recorded.
    sqlx::query(
        "CREATE TRIGGER disk_full BEFORE INSERT ON runs \
         BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END",
    )
    .execute(&other)
    .await
    .unwrap();
    let shutdown = CancellationToken::new();
    let driver = async {
        let due1 = schedule.next_after(clock.now());
        clock.wait_for_sleeper(due1).await;
        clock.set(due1);
        let due2 = schedule.next_after(due1);
        wait_done(status, due2).await;
        let health = status.health();
        assert_eq!(health.status, idrecon::server::HealthStatus::Degraded);
        let error = health.error.clone().unwrap_or_default();
        assert!(error.contains("disk is full"), "{error}");
        assert_eq!(store.current_lock().await.unwrap(), None, "lock released");

        // Space is freed, but the file now holds only what fits: a real
        // SQLITE_FULL while saving the Azure snapshot.
        sqlx::query("DROP TRIGGER disk_full")
            .execute(&other)
            .await
            .unwrap();
        store.set_max_page_count(1).await.unwrap();
        clock.set(due2);
        let due3 = schedule.next_after(due2);
        wait_done(status, due3).await;
        let health = status.health();
        assert_eq!(health.status, idrecon::server::HealthStatus::Degraded);
        assert_eq!(store.current_lock().await.unwrap(), None, "lock released");

        // Space is freed: the next run completes, no restart.
        store.set_max_page_count(u64::from(u32::MAX)).await.unwrap();
        clock.set(due3);
        wait_done(status, schedule.next_after(due3)).await;
        let health = status.health();
        assert_eq!(
            health.status,
            idrecon::server::HealthStatus::Ok,
            "{health:?}"
        );
        assert_eq!(health.error, None);
        shutdown.cancel();
    };
    tokio::time::timeout(LIMIT, async {
        tokio::join!(work(&worker, shutdown.clone(), None), driver)
    })
    .await
    .expect("the worker recovers from a full disk and stops");
    let runs = store.list_runs(10).await.unwrap();
    let last = &runs[0];
    assert_eq!(last.status, idrecon::store::RunState::Completed);
    assert_eq!(store.current_lock().await.unwrap(), None);
}
