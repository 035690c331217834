//! Runs: begin/finish, exact report round trip, new / persisting / resolved
//! across runs, history, and the mail outcome.

use crate::store_support;

use idrecon::model::{ActionStatus, Cause, Finding, FindingKind, FindingStatus};
use idrecon::report::{Mode, RunStatus, Trigger};
use idrecon::store::{MailStatus, RunState, Store, StoreError};
use std::collections::HashSet;
use store_support::{at, fresh_locked_store, me, mismatch, rename, report};

#[tokio::test]
async fn finish_run_and_load_report_round_trip_exactly() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let run = store
        .begin_run(&me(), Trigger::Schedule, Mode::Apply, at(0))
        .await
        .unwrap();

    let mut hostile = mismatch(
        "0a1b2c3d-aaaa-bbbb-cccc-000000000001",
        "åsa.öberg",
        "Åsa.Öberg@contoso.com",
    );
    hostile.display_name = Some("<script>alert('x')</script> 山田 太郎 🎉 \"quoted\"".into());
    hostile.detail = "line one\nline two\t'single' \"double\" & <b>bold</b> \u{0}nul".into();
    let mut orphan = Finding::new(FindingKind::NotInAzure);
    orphan.status = FindingStatus::Persisting;
    orphan.flow_user_id = Some("ghost".into());
    let mut sync = Finding::new(FindingKind::SyncManaged);
    sync.cause = Some(Cause::CaseOnly);
    sync.ifs_identity = Some("STRASSE".into());

    let mut r = report(run, at(0), vec![hostile, orphan, sync]);
    r.trigger = Trigger::Schedule;
    r.mode = Mode::Apply;
    r.advice = vec![
        "Turn on \"include domain\" in Flow's AD sync <now>".into(),
        "Ünïcödé advice ✓".into(),
    ];
    r.actions = vec![
        rename("åsa.öberg", "Åsa.Öberg@contoso.com", ActionStatus::Applied),
        idrecon::model::Action {
            kind: idrecon::model::ActionKind::Deactivate,
            flow_user_id: "ghost".into(),
            new_flow_user_id: None,
            status: ActionStatus::Failed,
            error: Some("HTTP 500: <html>oops</html>".into()),
        },
    ];
    store.finish_run(&me(), &r).await.unwrap();

    let loaded = store.load_report(run).await.unwrap().expect("stored run");
    assert_eq!(loaded, r);
    // Sub-second precision survives too.
    assert_eq!(loaded.started_at.timestamp_subsec_nanos(), 123_456_789);

    // Finishing again replaces, never duplicates.
    r.findings.truncate(1);
    r.summary.findings = 1;
    r.actions.clear();
    r.advice.clear();
    store.finish_run(&me(), &r).await.unwrap();
    assert_eq!(store.load_report(run).await.unwrap().unwrap(), r);
}

#[tokio::test]
async fn aborted_run_round_trips_with_its_reason() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let run = store
        .begin_run(&me(), Trigger::Manual, Mode::Report, at(0))
        .await
        .unwrap();
    let mut r = report(run, at(0), vec![]);
    r.status = RunStatus::Aborted;
    r.abort_reason = Some("IFS: page 3 failed (HTTP 503)".into());
    r.sources.ifs.complete = false;
    r.sources.azure.delta = Some(true);
    store.finish_run(&me(), &r).await.unwrap();
    assert_eq!(store.load_report(run).await.unwrap().unwrap(), r);
}

#[tokio::test]
async fn unknown_unfinished_and_missing_runs_are_reported_clearly() {
    let (_dir, _path, store) = fresh_locked_store().await;
    assert_eq!(store.load_report(99).await.unwrap(), None);
    let err = store
        .finish_run(&me(), &report(99, at(0), vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RunNotFound(99)), "{err:?}");

    let run = store
        .begin_run(&me(), Trigger::Manual, Mode::Report, at(0))
        .await
        .unwrap();
    let err = store.load_report(run).await.unwrap_err();
    assert!(
        matches!(err, StoreError::RunNotFinished(id) if id == run),
        "{err:?}"
    );
    assert!(err.to_string().contains("has not finished"), "{err}");
}

/// What the core does with `previous_open_findings` (written elsewhere):
/// mark each finding and count the resolved keys.
fn mark(findings: &mut [Finding], previous: &HashSet<String>) -> (u64, u64, u64) {
    let mut current = HashSet::new();
    let (mut new, mut persisting) = (0, 0);
    for f in findings.iter_mut() {
        let key = f.key();
        if previous.contains(&key) {
            f.status = FindingStatus::Persisting;
            persisting += 1;
        } else {
            f.status = FindingStatus::New;
            new += 1;
        }
        current.insert(key);
    }
    let resolved = previous.difference(&current).count() as u64;
    (new, persisting, resolved)
}

async fn do_run(
    store: &dyn Store,
    start: i64,
    mut findings: Vec<Finding>,
) -> (i64, Option<i64>, (u64, u64, u64)) {
    let run = store
        .begin_run(&me(), Trigger::Schedule, Mode::Report, at(start))
        .await
        .unwrap();
    let previous = store.previous_open_findings(run).await.unwrap();
    let previous_keys = previous.clone().map(|(_, k)| k).unwrap_or_default();
    let counts = mark(&mut findings, &previous_keys);
    let mut r = report(run, at(start), findings);
    r.summary.new = counts.0;
    r.summary.persisting = counts.1;
    r.summary.resolved_since_last_run = counts.2;
    store.finish_run(&me(), &r).await.unwrap();
    (run, previous.map(|(id, _)| id), counts)
}

#[tokio::test]
async fn new_persisting_resolved_over_three_runs() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let a = || mismatch("aaaaaaaa-0000-0000-0000-000000000001", "a", "a@contoso.com");
    let b = || mismatch("bbbbbbbb-0000-0000-0000-000000000002", "b", "b@contoso.com");
    let c = || mismatch("cccccccc-0000-0000-0000-000000000003", "c", "c@contoso.com");
    let mut d = Finding::new(FindingKind::NotInAzure);
    d.flow_user_id = Some("D.Orphan".into());

    let (run1, prev1, counts1) = do_run(&store, 0, vec![a(), b()]).await;
    assert_eq!(prev1, None);
    assert_eq!(counts1, (2, 0, 0));

    let (run2, prev2, counts2) = do_run(&store, 100, vec![b(), c()]).await;
    assert_eq!(prev2, Some(run1));
    assert_eq!(counts2, (1, 1, 1)); // c new, b persisting, a resolved

    // An aborted run in between neither counts as "previous" nor resets anything.
    let aborted = store
        .begin_run(&me(), Trigger::Schedule, Mode::Report, at(150))
        .await
        .unwrap();
    let mut r = report(aborted, at(150), vec![]);
    r.status = RunStatus::Aborted;
    r.abort_reason = Some("Azure: throttled".into());
    store.finish_run(&me(), &r).await.unwrap();
    // A run that never finished is skipped too.
    store
        .begin_run(&me(), Trigger::Manual, Mode::Report, at(160))
        .await
        .unwrap();

    // The same person under a differently cased object ID is the same finding.
    let mut c_upper = c();
    c_upper.aad_id = Some("CCCCCCCC-0000-0000-0000-000000000003".into());
    let (run3, prev3, counts3) = do_run(&store, 200, vec![c_upper, d.clone()]).await;
    assert_eq!(prev3, Some(run2));
    assert_eq!(counts3, (1, 1, 1)); // d new, c persisting, b resolved

    let stored = store.load_report(run3).await.unwrap().unwrap();
    let statuses: Vec<_> = stored.findings.iter().map(|f| f.status).collect();
    assert_eq!(
        statuses,
        vec![FindingStatus::Persisting, FindingStatus::New]
    );
    assert_eq!(stored.summary.resolved_since_last_run, 1);

    let (_, keys) = store
        .previous_open_findings(run3 + 1)
        .await
        .unwrap()
        .unwrap();
    let expected: HashSet<String> = [c().key(), d.key()].into_iter().collect();
    assert_eq!(keys, expected);

    let history = store.list_runs(10).await.unwrap();
    let ids: Vec<i64> = history.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![run3, run3 - 1, aborted, run2, run1]);
    assert_eq!(history[0].new, 1);
    assert_eq!(history[0].persisting, 1);
    assert_eq!(history[0].resolved, 1);
    assert_eq!(history[1].status, RunState::Running);
    assert_eq!(history[1].finished_at, None);
    assert_eq!(history[2].status, RunState::Aborted);
    assert_eq!(history[2].abort_reason.as_deref(), Some("Azure: throttled"));
    assert_eq!(store.list_runs(2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn history_counts_actions_and_last_finished_run() {
    let (_dir, _path, store) = fresh_locked_store().await;
    assert_eq!(store.last_finished_run().await.unwrap(), None);
    let run = store
        .begin_run(&me(), Trigger::Manual, Mode::Apply, at(0))
        .await
        .unwrap();
    let mut r = report(run, at(0), vec![mismatch("x", "x", "x@c.com")]);
    r.mode = Mode::Apply;
    r.actions = vec![
        rename("a", "a@c.com", ActionStatus::Applied),
        rename("b", "b@c.com", ActionStatus::Applied),
        rename("c", "c@c.com", ActionStatus::Failed),
        rename("d", "d@c.com", ActionStatus::Blocked),
    ];
    store.finish_run(&me(), &r).await.unwrap();
    store
        .begin_run(&me(), Trigger::Schedule, Mode::Report, at(10))
        .await
        .unwrap();

    let last = store.last_finished_run().await.unwrap().unwrap();
    assert_eq!(last.id, run);
    assert_eq!(last.status, RunState::Completed);
    assert_eq!(last.finished_at, r.finished_at);
    assert_eq!((last.actions_applied, last.actions_failed), (2, 1));
    assert_eq!(last.findings, 1);
    assert_eq!(last.people, 1251);
}

#[tokio::test]
async fn failed_mail_is_listed_until_sent() {
    let (_dir, _path, store) = fresh_locked_store().await;
    let run1 = store
        .begin_run(&me(), Trigger::Schedule, Mode::Report, at(0))
        .await
        .unwrap();
    let run2 = store
        .begin_run(&me(), Trigger::Schedule, Mode::Report, at(10))
        .await
        .unwrap();
    assert!(store.runs_with_unsent_mail().await.unwrap().is_empty());

    store
        .record_mail(run1, false, Some("SMTP 421 try later"), at(1))
        .await
        .unwrap();
    store
        .record_mail(run2, false, Some("timeout"), at(11))
        .await
        .unwrap();
    assert_eq!(
        store.runs_with_unsent_mail().await.unwrap(),
        vec![run1, run2]
    );

    let rows = store.list_runs(10).await.unwrap();
    assert_eq!(rows[1].mail_status, Some(MailStatus::Failed));
    assert_eq!(rows[1].mail_error.as_deref(), Some("SMTP 421 try later"));

    store.record_mail(run1, true, None, at(20)).await.unwrap();
    assert_eq!(store.runs_with_unsent_mail().await.unwrap(), vec![run2]);
    let rows = store.list_runs(10).await.unwrap();
    assert_eq!(rows[1].mail_status, Some(MailStatus::Sent));
    assert_eq!(rows[1].mail_error, None);

    let err = store.record_mail(404, true, None, at(0)).await.unwrap_err();
    assert!(matches!(err, StoreError::RunNotFound(404)), "{err:?}");
}
