//! The journal and the run lock while applying, in-process against the real
//! simulator and store: a write whose answer is lost is checked against
//! Flow instead of being called failed; one whose outcome cannot be checked
//! stays pending until the next applying run settles it (report mode says
//! so); the lock's lease is renewed during a long apply, and a run that
//! loses its lock stops sending.

use crate::{app_support, fix_support};

use app_support::*;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use fix_support::*;
use idrecon::clock::Clock;
use idrecon::job::{run_once, RunContext};
use idrecon::model::{ActionKind, ActionStatus, FlowUser};
use idrecon::report::RunStatus;
use idrecon::sources::live::LiveSources;
use idrecon::sources::{FlowWriteError, FlowWriter, SourceError};
use idrecon::store::{JournalState, LockHolder, SqliteStore, Store};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PEOPLE: usize = 600;
const SEED: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_is_lost_is_checked_against_flow() {
    // The 2nd write is performed, then the connection drops.
    let env = fix_app(PEOPLE, SEED, "flow-write:drop-after@2", Tweaks::default()).await;
    let before = env.report_only().await;
    let renames = planned_renames(&before);
    let report = env.apply(Some(1000)).await;
    assert_eq!(report.status, RunStatus::Completed);
    let renamed_actions: Vec<_> = report
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Rename)
        .collect();
    assert!(
        renamed_actions
            .iter()
            .all(|a| a.status == ActionStatus::Applied),
        "{renamed_actions:?}"
    );
    assert_eq!(env.writes().0, renames.len() as u64);
    assert_eq!(env.handle.rename_count(&renames[1].1), 1);
    let journal = env.journal().await;
    assert_eq!(
        in_state(&journal, JournalState::Applied).len(),
        renames.len()
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmable_write_stays_pending_until_the_next_apply_settles_it() {
    let env = fix_app(PEOPLE, SEED, "flow-write:slow=300@1", Tweaks::default()).await;
    let before = env.report_only().await;
    let renames = planned_renames(&before);
    // While the 1st write is slow: the 2nd write will lose its answer and
    // Flow's listing will fail, so the outcome cannot be checked.
    let handle = env.handle.clone();
    let meddler = tokio::spawn(async move {
        while handle.request_count("/flow/users/rename") == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        handle.set_faults("flow-write:drop-after@1,flow:500x*".parse().unwrap());
    });
    let report = env.apply(Some(1000)).await;
    meddler.await.unwrap();
    env.handle.set_faults(Default::default());

    assert_eq!(report.status, RunStatus::Completed);
    let (open_from, open_to) = renames[1].clone();
    let open = report
        .actions
        .iter()
        .find(|a| a.flow_user_id == open_from)
        .unwrap();
    assert_eq!(open.status, ActionStatus::Failed);
    assert!(
        open.error.as_deref().unwrap().contains("unknown"),
        "{open:?}"
    );
    // Flow did perform it; the journal does not claim either way.
    assert_eq!(env.handle.rename_count(&open_to), 1);
    let journal = env.journal().await;
    let pending = in_state(&journal, JournalState::Pending);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].action.flow_user_id, open_from);
    assert_eq!(
        in_state(&journal, JournalState::Applied).len(),
        renames.len() - 1
    );

    // Report mode leaves it alone but says it is pending.
    let reported = env.report_only().await;
    assert!(
        reported
            .advice
            .iter()
            .any(|a| a.contains("1 action(s)") && a.contains("still pending")),
        "{:?}",
        reported.advice
    );
    assert_eq!(
        in_state(&env.journal().await, JournalState::Pending).len(),
        1
    );

    // The next apply checks Flow, sees it done, and does not send it again.
    let writes = env.writes();
    let requests = env.handle.request_count("/flow/users/rename");
    let settled = env.apply(Some(1000)).await;
    assert_eq!(settled.status, RunStatus::Completed);
    assert!(
        settled
            .advice
            .iter()
            .any(|a| a.contains("1 had been applied") && a.contains("0 were sent now")),
        "{:?}",
        settled.advice
    );
    assert_eq!(env.writes(), writes);
    assert_eq!(env.handle.request_count("/flow/users/rename"), requests);
    let journal = env.journal().await;
    assert!(in_state(&journal, JournalState::Pending).is_empty());
    let entry = journal
        .iter()
        .find(|e| e.action.flow_user_id == open_from)
        .unwrap();
    assert_eq!(entry.state, JournalState::Applied);
    assert_eq!(env.handle.rename_count(&open_to), 1);
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_action_not_yet_done_is_sent_once_by_the_next_apply() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let before = env.report_only().await;
    let action = before
        .actions
        .iter()
        .find(|a| a.kind == ActionKind::Rename)
        .unwrap()
        .clone();
    // A run killed right after journalling, before sending: its heartbeat
    // stopped ten minutes ago.
    let store = env.store().await;
    let killed = LockHolder {
        instance_id: "killed-run".into(),
        ..LockHolder::current("reconcile")
    };
    store
        .acquire_lock(
            &killed,
            Utc::now() - chrono::Duration::minutes(10),
            chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    let run_id = store
        .begin_run(
            &killed,
            idrecon::report::Trigger::Manual,
            idrecon::report::Mode::Apply,
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .journal_pending(&killed, run_id, 0, &action, Utc::now())
        .await
        .unwrap();
    store.close().await;

    let report = env.apply(Some(1000)).await;
    assert_eq!(report.status, RunStatus::Completed);
    let to = action.new_flow_user_id.clone().unwrap();
    assert_eq!(env.handle.rename_count(&to), 1);
    assert_eq!(
        env.handle.request_count("/flow/users/rename"),
        planned_renames(&before).len() as u64,
        "one request per rename, the resumed one included"
    );
    assert!(report
        .advice
        .iter()
        .any(|a| a.contains(&format!("#{run_id}")) && a.contains("1 were sent now")));
    // The resumed action is not in the new run's plan any more.
    assert!(report
        .actions
        .iter()
        .all(|a| a.flow_user_id != action.flow_user_id));
    let journal = env.journal().await;
    assert!(in_state(&journal, JournalState::Pending).is_empty());
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.action.flow_user_id == action.flow_user_id)
            .count(),
        1
    );
    env.sim.shutdown().await;
}

/// A clock that moves `step` ahead at every reading.
struct SteppingClock {
    t0: DateTime<Utc>,
    ticks: AtomicI64,
    step: chrono::Duration,
}

#[async_trait]
impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        let n = self.ticks.fetch_add(1, Ordering::SeqCst);
        self.t0 + self.step * n as i32
    }

    /// A run never sleeps; the loop that does uses its own clocks.
    async fn sleep_until(&self, _deadline: DateTime<Utc>) {
        unreachable!("run_once never sleeps")
    }
}

/// The real Flow writer, watching the lock at each rename and optionally
/// letting another process take it over after `steal_after` renames.
struct Watching {
    inner: Arc<dyn FlowWriter>,
    store: SqliteStore,
    clock: Arc<SteppingClock>,
    renames: AtomicU64,
    steal_after: Option<u64>,
    /// (time of the rename, lease end of the lock then)
    seen: Mutex<Vec<(DateTime<Utc>, DateTime<Utc>)>>,
}

fn thief() -> LockHolder {
    LockHolder {
        instance_id: "thief".into(),
        pid: 1,
        host: "other-host".into(),
        label: "reconcile".into(),
    }
}

#[async_trait]
impl FlowWriter for Watching {
    async fn rename(&self, user_id: &str, new_user_id: &str) -> Result<(), FlowWriteError> {
        let n = self.renames.fetch_add(1, Ordering::SeqCst) + 1;
        let lock = self.store.current_lock().await.unwrap().expect("lock held");
        let at = self.clock.now();
        self.seen.lock().unwrap().push((at, lock.expires_at));
        let result = self.inner.rename(user_id, new_user_id).await;
        if self.steal_after == Some(n) {
            // Another process finds the lease expired and takes the lock.
            self.store
                .acquire_lock(
                    &thief(),
                    lock.expires_at + chrono::Duration::seconds(1),
                    chrono::Duration::hours(10_000),
                )
                .await
                .unwrap();
        }
        result
    }

    async fn deactivate(&self, user_id: &str) -> Result<(), FlowWriteError> {
        self.inner.deactivate(user_id).await
    }

    async fn list(&self) -> Result<Vec<FlowUser>, SourceError> {
        self.inner.list().await
    }
}

async fn apply_with_watch(
    env: &TestApp,
    steal_after: Option<u64>,
) -> (idrecon::report::Report, Arc<Watching>) {
    let cfg = env.config();
    let store = env.store().await;
    let sources = LiveSources::with_settings(&cfg, &quick_http()).unwrap();
    let clock = Arc::new(SteppingClock {
        t0: Utc.with_ymd_and_hms(2030, 1, 1, 2, 0, 0).unwrap(),
        ticks: AtomicI64::new(0),
        // A long apply: every reading of the clock is 7 minutes later.
        step: chrono::Duration::minutes(7),
    });
    let watching = Arc::new(Watching {
        inner: sources.flow_writer().unwrap(),
        store: env.store().await,
        clock: clock.clone(),
        renames: AtomicU64::new(0),
        steal_after,
        seen: Mutex::new(Vec::new()),
    });
    let never = || false;
    let ctx = RunContext {
        config: &cfg,
        store: &store,
        sources: &sources,
        flow_writer: Some(watching.as_ref()),
        azure_scope: sources.azure_scope(),
        clock: clock.as_ref(),
        should_stop: &never,
        progress: None,
    };
    let request = apply_request(Some(1000));
    let report = run_once(&ctx, &request).await.unwrap().report;
    store.close().await;
    (report, watching)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_lease_is_renewed_during_a_long_apply() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let renames = planned_renames(&env.report_only().await);
    let (report, watching) = apply_with_watch(&env, None).await;
    assert_eq!(
        report.status,
        RunStatus::Completed,
        "{:?}",
        report.abort_reason
    );
    let seen = watching.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), renames.len());
    // The whole apply took far longer than one lease (60 minutes) …
    let span = seen.last().unwrap().0 - seen.first().unwrap().0;
    assert!(span > chrono::Duration::hours(3), "{span}");
    // … yet at every send the lock was held with time to spare.
    for (at, expires) in &seen {
        assert!(
            expires > at,
            "lease ended {expires} before the send at {at}"
        );
    }
    assert_eq!(env.writes().0, renames.len() as u64);
    // Released at the end.
    let store = env.store().await;
    assert_eq!(store.current_lock().await.unwrap(), None);
    store.close().await;
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lock_stops_sending() {
    let env = fix_app(PEOPLE, SEED, "", Tweaks::default()).await;
    let renames = planned_renames(&env.report_only().await);
    assert!(renames.len() > 5);
    let (report, _) = apply_with_watch(&env, Some(3)).await;
    assert_eq!(report.status, RunStatus::Aborted);
    let reason = report.abort_reason.clone().unwrap();
    assert!(reason.contains("run lock was lost"), "{reason}");
    assert!(reason.contains("other-host"), "{reason}");
    assert_eq!(env.writes().0, 3, "nothing sent after the lock was lost");
    let statuses: Vec<ActionStatus> = report
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Rename)
        .map(|a| a.status)
        .collect();
    assert_eq!(&statuses[..3], &[ActionStatus::Applied; 3]);
    assert!(statuses[3..].iter().all(|s| *s == ActionStatus::Skipped));
    assert!(report
        .actions
        .iter()
        .filter(|a| a.status == ActionStatus::Skipped && a.kind == ActionKind::Rename)
        .all(|a| a.error.as_deref().unwrap().contains("lock was lost")));
    let journal = env.journal().await;
    assert_eq!(journal.len(), 3);
    // The thief still holds the lock: the losing run did not release it.
    let store = env.store().await;
    assert_eq!(store.current_lock().await.unwrap().unwrap().holder, thief());
    store.close().await;
    env.sim.shutdown().await;
}
