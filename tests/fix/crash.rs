//! The crash test: the real `idrecon reconcile --apply` binary is SIGKILLed
//! at many points of applying — right after the simulator performed a
//! rename (before the client could journal it), right after a journal entry
//! was written (before or while it is sent), after k entries were marked
//! applied, and while a restarted run is still resuming — then run again to
//! completion. In the end Flow must look exactly as planned, every rename
//! must have been executed exactly once, and the journal must agree.

use crate::{app_support, fix_support};

use app_support::*;
use compact_str::CompactString;
use fix_support::*;
use idrecon::model::{ActionKind, FindingKind};
use idrecon::sim::{FlowWrite, SimHandle};
use idrecon::store::{JournalState, Store};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const PEOPLE: usize = 800;
const SEED: u64 = 11;
/// Each rename takes this long in the simulator, so the windows between
/// journalling and sending can be hit.
const FAULTS: &str = "flow-write:slow=15x*";

/// When to kill the child, counted from the moment it was started.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// After the simulator performed this many more renames (polled tightly:
    /// the kill lands between Flow acting and the client journalling it).
    Renames(u64),
    /// After this many more journal entries were written (pending).
    Journalled(i64),
    /// After this many more journal entries were marked applied.
    Applied(i64),
}

#[derive(Debug, Default)]
struct Stats {
    kills: usize,
    /// Kills after which a pending entry's rename was already done in Flow.
    sent_not_journalled: usize,
    /// Kills after which a pending entry's rename was not (yet) done.
    journalled_not_sent: usize,
    /// Children that finished before their kill point.
    finished_early: usize,
}

/// Per tenant: kills that left a rename request possibly unperformed (the
/// only legitimate reason for Flow to see one more rename request than renames).
#[derive(Debug, Default)]
struct Unperformed(u64);

struct Poller {
    pool: SqlitePool,
}

impl Poller {
    async fn open(db: &Path) -> Poller {
        let options = SqliteConnectOptions::new().filename(db);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("poll connection");
        Poller { pool }
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(0)
    }

    /// Ages the killed run's heartbeat past `HEARTBEAT_STALE_AFTER`, as the
    /// minutes before an operator or the scheduler starts the next run
    /// would: only then may another process take over its lock.
    async fn let_heartbeat_go_stale(&self) {
        let stale = chrono::Duration::from_std(idrecon::store::HEARTBEAT_STALE_AFTER).unwrap();
        let long_ago = chrono::Utc::now() - stale - chrono::Duration::seconds(1);
        sqlx::query("UPDATE run_lock SET heartbeat_at = ?")
            .bind(long_ago)
            .execute(&self.pool)
            .await
            .expect("age the heartbeat");
    }

    async fn journalled(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM action_journal").await
    }

    async fn applied(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM action_journal WHERE state = 'applied'")
            .await
    }
}

fn spawn_apply(env: &TestApp, n: usize) -> Child {
    let log = std::fs::File::create(env.dir.path().join(format!("child-{n}.log"))).unwrap();
    env.command(&[
        "reconcile",
        "--apply",
        "--max-changes",
        "1000",
        "--format",
        "json",
    ])
    .arg("--output")
    .arg(env.dir.path().join(format!("child-{n}.json")))
    .stdout(Stdio::null())
    .stderr(Stdio::from(log))
    .spawn()
    .expect("spawn idrecon")
}

fn sigkill(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    // Reap it: a zombie would still look alive to the lock's pid check.
    let _ = child.wait();
}

/// Spins on the simulator's rename counter and kills the child the moment
/// it reaches `target`; returns false when the child finished first.
fn kill_at_renames(handle: SimHandle, mut child: Child, target: u64) -> (Child, bool) {
    loop {
        if handle.write_counts().0 >= target {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            return (child, true);
        }
        if let Ok(Some(_)) = child.try_wait() {
            return (child, false);
        }
        std::thread::yield_now();
    }
}

/// Runs one child until `at`, kills it and records what the kill left.
async fn kill_once(
    env: &TestApp,
    poller: &Poller,
    at: KillAt,
    n: usize,
    stats: &mut Stats,
    unperformed: &mut Unperformed,
) {
    let mut child = spawn_apply(env, n);
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = match at {
        KillAt::Renames(k) => {
            let target = env.writes().0 + k;
            let handle = env.handle.clone();
            let (_child, killed) =
                tokio::task::spawn_blocking(move || kill_at_renames(handle, child, target))
                    .await
                    .unwrap();
            killed
        }
        KillAt::Journalled(k) | KillAt::Applied(k) => {
            let applied = matches!(at, KillAt::Applied(_));
            let count = || async {
                if applied {
                    poller.applied().await
                } else {
                    poller.journalled().await
                }
            };
            let target = count().await + k;
            loop {
                if count().await >= target {
                    sigkill(&mut child);
                    break true;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                assert!(
                    Instant::now() < deadline,
                    "child neither reached {at:?} nor ended"
                );
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        }
    };
    if !killed {
        stats.finished_early += 1;
        return;
    }
    stats.kills += 1;
    // A request the child had in flight lands (or is dropped) within the
    // simulator's delay; look only after that.
    tokio::time::sleep(Duration::from_millis(80)).await;
    poller.let_heartbeat_go_stale().await;
    assert_no_rename_twice(&env.handle);
    // What did this kill leave behind?
    let journal = env.journal().await;
    let pending = in_state(&journal, JournalState::Pending);
    assert!(
        pending.len() <= 1,
        "one action in flight at a time: {pending:?}"
    );
    let now: HashSet<CompactString> = env
        .handle
        .flow_users()
        .into_iter()
        .map(|u| u.user_id().into())
        .collect();
    for entry in pending {
        let to = entry.action.new_flow_user_id.clone().unwrap();
        if now.contains(to.as_str()) && !now.contains(entry.action.flow_user_id.as_str()) {
            stats.sent_not_journalled += 1;
        } else {
            stats.journalled_not_sent += 1;
            unperformed.0 += 1;
        }
    }
}

/// Apply runs other than the last one: each was killed.
fn stats_kills_here(runs: &[idrecon::store::RunRow]) -> usize {
    runs.iter()
        .filter(|r| r.mode == idrecon::report::Mode::Apply)
        .count()
        - 1
}

/// No Flow user was ever renamed twice (the simulator's write log).
fn assert_no_rename_twice(handle: &SimHandle) {
    let mut from = HashSet::new();
    for w in handle.flow_writes() {
        if let FlowWrite::Rename { user_id, .. } = w {
            assert!(from.insert(user_id.clone()), "{user_id} renamed twice");
        }
    }
}

/// Kills a fresh tenant's apply run at each point of `kills` in turn,
/// restarting it each time, then runs it to completion and checks Flow,
/// the simulator's counters and the journal.
async fn scenario(kills: &[KillAt], stats: &mut Stats) {
    let env = fix_app(PEOPLE, SEED, FAULTS, Tweaks::default()).await;
    let original = env.handle.flow_users();
    let before = env.report_only().await;
    let renames = planned_renames(&before);
    assert!(renames.len() >= 20, "{} renames", renames.len());
    assert!(before
        .actions
        .iter()
        .all(|a| a.kind != ActionKind::Rename || a.new_flow_user_id.is_some()));
    let poller = Poller::open(&env.db_path).await;
    let mut unperformed = Unperformed::default();

    for (n, at) in kills.iter().enumerate() {
        kill_once(&env, &poller, *at, n, stats, &mut unperformed).await;
    }

    // Run to completion.
    let out = env.binary(&[
        "reconcile",
        "--apply",
        "--max-changes",
        "1000",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    assert!(report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] != "failed" && a["status"] != "planned"));

    // Flow is exactly the planned end state.
    assert_eq!(
        sorted(env.handle.flow_users()),
        renamed(&original, &renames),
        "after {kills:?}"
    );
    // Each rename executed exactly once.
    for (_, to) in &renames {
        assert_eq!(env.handle.rename_count(to), 1, "{to} after {kills:?}");
    }
    assert_eq!(env.writes(), (renames.len() as u64, 0));
    assert_no_rename_twice(&env.handle);
    // Nothing was sent blindly: a rename request beyond one per rename is
    // only allowed for a kill that caught a request before Flow performed it.
    let requests = env.handle.request_count("/flow/users/rename");
    assert!(
        requests <= renames.len() as u64 + unperformed.0,
        "{requests} rename requests for {} renames, {} unperformed by kills {kills:?}",
        renames.len(),
        unperformed.0
    );
    let mut done: Vec<(String, String)> = env
        .handle
        .flow_writes()
        .into_iter()
        .filter_map(|w| match w {
            FlowWrite::Rename {
                user_id,
                new_user_id,
            } => Some((user_id, new_user_id)),
            FlowWrite::Deactivate { .. } => None,
        })
        .collect();
    done.sort();
    let mut expected = renames.clone();
    expected.sort();
    assert_eq!(done, expected);

    // The journal agrees: nothing pending or failed, one applied entry per rename.
    let journal = env.journal().await;
    assert!(in_state(&journal, JournalState::Pending).is_empty());
    assert!(
        in_state(&journal, JournalState::Failed).is_empty(),
        "{:?}",
        in_state(&journal, JournalState::Failed)
    );
    let mut applied: Vec<(String, String)> = in_state(&journal, JournalState::Applied)
        .into_iter()
        .map(|e| {
            (
                e.action.flow_user_id.clone(),
                e.action.new_flow_user_id.clone().unwrap(),
            )
        })
        .collect();
    applied.sort();
    assert_eq!(applied, expected, "journal vs renames after {kills:?}");

    // History: no run left `running`; the killed ones are failed as
    // interrupted, and the applied counts add up to the renames.
    let store = env.store().await;
    let runs = store.list_runs(1000).await.unwrap();
    store.close().await;
    assert!(
        runs.iter().all(|r| r.status.as_str() != "running"),
        "{runs:#?}"
    );
    let interrupted = runs
        .iter()
        .filter(|r| {
            r.abort_reason
                .as_deref()
                .is_some_and(|a| a.starts_with("interrupted"))
        })
        .count();
    assert_eq!(interrupted, stats_kills_here(&runs), "{runs:#?}");
    assert_eq!(
        runs.iter().map(|r| r.actions_applied).sum::<u64>(),
        renames.len() as u64,
        "{runs:#?}"
    );

    // And a report-only run finds no mismatch left.
    let after = env.report_only().await;
    assert!(finding_keys(&after, FindingKind::IdMismatch).is_empty());
    assert_eq!(env.writes(), (renames.len() as u64, 0));
    poller.pool.close().await;
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_any_point_apply_resumes_without_repeating_or_losing_an_action() {
    use KillAt::*;
    let started = Instant::now();
    let mut stats = Stats::default();
    let scenarios: Vec<Vec<KillAt>> = vec![
        vec![Renames(1)],
        vec![Renames(2)],
        vec![Renames(5)],
        vec![Renames(10)],
        vec![Journalled(1)],
        vec![Journalled(3)],
        vec![Journalled(8)],
        vec![Applied(4)],
        // Repeated kills: each restart first resumes what the last one left.
        vec![
            Renames(1),
            Journalled(1),
            Renames(1),
            Journalled(2),
            Renames(3),
            Applied(2),
            Renames(5),
            Journalled(1),
            Renames(2),
        ],
    ];
    for kills in &scenarios {
        let t = Instant::now();
        scenario(kills, &mut stats).await;
        eprintln!("scenario {kills:?}: {:.1}s", t.elapsed().as_secs_f64());
    }
    eprintln!(
        "crash test: {stats:?} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(stats.kills >= 15, "{stats:?}");
    // Both dangerous windows were actually hit.
    assert!(stats.sent_not_journalled >= 1, "{stats:?}");
    assert!(stats.journalled_not_sent >= 1, "{stats:?}");
}
