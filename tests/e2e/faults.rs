//! End to end under every fault the simulator can inject: a run either
//! recovers with exactly the fault-free result, or ends `aborted` naming the
//! system, with no findings in the report or the store, exit code 4, and
//! nothing written to Flow.
//!
//! The runs are apply runs (with limits wide enough for the whole plan), so
//! "nothing written to Flow" is something an aborted run could get wrong.

use crate::{app_support, e2e_support};

use app_support::*;
use e2e_support::*;
use futures::future::join_all;
use idrecon::commands::exit_code_for;
use idrecon::error::ExitCode;
use idrecon::job::RunRequest;
use idrecon::model::{ActionKind, ActionStatus};
use idrecon::report::{Report, RunStatus};
use idrecon::sim::FaultPlan;
use idrecon::store::Store;
use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

/// Over 999 Azure users, so the Graph listing (pages of 999) has a page 2.
const PEOPLE: usize = 1100;
const SEED: u64 = 11;

/// Several pages per listing (about 3 each), wide fix limits.
fn fault_app(spec: &str) -> TestAppBuilder<'static> {
    TestApp::builder(PEOPLE, SEED)
        .faults(spec)
        .settings(|s| s.flow_page_size = 100)
        .env("IDRECON__IFS__PAGE_SIZE", "100")
        .env("IDRECON__FIX__MAX_CHANGES", "1000")
        .env("IDRECON__FIX__MAX_CHANGE_PERCENT", "100")
}

fn apply() -> RunRequest {
    RunRequest {
        apply: true,
        ..RunRequest::manual()
    }
}

type ActionId = (ActionKind, String, Option<String>, Option<ActionStatus>);

/// What must be identical between a recovered run and the fault-free run.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: RunStatus,
    findings: BTreeSet<FindingId>,
    actions: Vec<ActionId>,
    users: (u64, u64, u64),
    people_ok: (u64, u64),
    writes: (u64, u64),
}

fn outcome(report: &Report, writes: (u64, u64)) -> Outcome {
    Outcome {
        status: report.status,
        findings: finding_ids(report),
        actions: report
            .actions
            .iter()
            .map(|a| {
                (
                    a.kind,
                    a.flow_user_id.clone(),
                    a.new_flow_user_id.clone(),
                    Some(a.status),
                )
            })
            .collect(),
        users: (
            report.sources.azure.users,
            report.sources.ifs.users,
            report.sources.flow.users,
        ),
        people_ok: (report.summary.people, report.summary.ok),
        writes,
    }
}

async fn baseline() -> Outcome {
    let app = fault_app("none").start().await;
    let report = app.reconcile(&apply()).await.report;
    assert_eq!(
        report.status,
        RunStatus::Completed,
        "{:?}",
        report.abort_reason
    );
    assert_expected_findings("fault-free baseline", &app, &report);
    let writes = app.handle.write_counts();
    assert!(writes.0 > 0, "the baseline renames something");
    outcome(&report, writes)
}

/// Checks an aborted run: reason names `system`, no findings anywhere,
/// exit 4, nothing written to Flow.
async fn check_aborted(app: &TestApp, report: &Report, system: &str) -> Result<(), String> {
    let fail = |m: String| Err(m);
    if report.status != RunStatus::Aborted {
        return fail(format!(
            "expected aborted, got {:?} ({:?})",
            report.status, report.abort_reason
        ));
    }
    let reason = report.abort_reason.clone().unwrap_or_default();
    if !reason.contains(system) {
        return fail(format!("abort reason does not name {system}: {reason}"));
    }
    if !report.findings.is_empty() || report.summary.findings != 0 || !report.actions.is_empty() {
        return fail(format!(
            "an aborted run carries {} findings / {} actions",
            report.findings.len(),
            report.actions.len()
        ));
    }
    let stored = app
        .store()
        .await
        .load_report(report.run_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("aborted run not stored")?;
    if stored.status != RunStatus::Aborted || !stored.findings.is_empty() {
        return fail(format!(
            "stored run: {:?} with {} findings",
            stored.status,
            stored.findings.len()
        ));
    }
    if exit_code_for(report) != ExitCode::Aborted {
        return fail(format!("exit code {:?}", exit_code_for(report)));
    }
    if app.handle.write_counts() != (0, 0) || !app.handle.flow_writes().is_empty() {
        return fail(format!(
            "an aborted run wrote to Flow: {:?}",
            app.handle.flow_writes()
        ));
    }
    Ok(())
}

/// How a single-run fault case must end.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Identical to the fault-free run.
    Recover,
    /// Aborted, the reason naming this system.
    Abort(&'static str),
}

const CASES: &[(&str, Expect)] = &[
    // Throttling: Retry-After in seconds and as an HTTP-date.
    ("graph:429@2", Expect::Recover),
    ("ifs:429=1@2", Expect::Recover),
    ("flow:429=date+1@1", Expect::Recover),
    ("graph:429=date+1@1,ifs:429=date+1@3", Expect::Recover),
    // Transient server errors in bursts.
    ("graph:500@1x2", Expect::Recover),
    ("graph:503@3x3", Expect::Recover),
    ("ifs:500@2x3", Expect::Recover),
    ("flow:503@2x2", Expect::Recover),
    ("login:503@1x2", Expect::Recover),
    ("iam:500@1x2", Expect::Recover),
    // Slow pages (within the request timeout).
    (
        "graph:slow=300@2,ifs:slow=300@1,flow:slow=300@3",
        Expect::Recover,
    ),
    // Dropped connections.
    ("graph:drop@2", Expect::Recover),
    ("ifs:drop@1", Expect::Recover),
    ("flow:drop@3", Expect::Recover),
    // The access token expires mid-listing.
    ("graph:expire-token@2", Expect::Recover),
    ("ifs:expire-token@3", Expect::Recover),
    // Broken payloads are never guessed at.
    ("graph:truncate@2", Expect::Abort("Azure AD")),
    ("graph:badjson@1", Expect::Abort("Azure AD")),
    ("ifs:truncate@2", Expect::Abort("IFS")),
    ("ifs:badjson@3", Expect::Abort("IFS")),
    ("flow:truncate@2", Expect::Abort("Flow")),
    ("flow:badjson@1", Expect::Abort("Flow")),
    // Retries used up.
    ("graph:503x*", Expect::Abort("Azure AD")),
    ("ifs:500@2x*", Expect::Abort("IFS")),
    ("flow:drop@2x*", Expect::Abort("Flow")),
    ("flow:429=30@1", Expect::Abort("Flow")),
    ("login:401x*", Expect::Abort("Azure AD")),
    ("iam:503x*", Expect::Abort("IFS")),
    ("graph:expire-token@2x*", Expect::Abort("Azure AD")),
    // Two systems fail at once: both are named.
    ("ifs:404@1,flow:400@1", Expect::Abort("IFS")),
];

async fn run_case(spec: &'static str, expect: Expect, base: &Outcome) -> Result<(), String> {
    let app = fault_app(spec).start().await;
    let report = app
        .try_reconcile(&apply())
        .await
        .map_err(|e| format!("run did not start: {e}"))?
        .report;
    match expect {
        Expect::Recover => {
            let got = outcome(&report, app.handle.write_counts());
            if &got != base {
                return Err(format!(
                    "did not recover to the fault-free result: status {:?} ({:?}), {} findings vs {}, writes {:?} vs {:?}",
                    got.status,
                    report.abort_reason,
                    got.findings.len(),
                    base.findings.len(),
                    got.writes,
                    base.writes
                ));
            }
            if exit_code_for(&report) != ExitCode::FindingsOpen {
                return Err(format!("exit code {:?}", exit_code_for(&report)));
            }
            Ok(())
        }
        Expect::Abort(system) => check_aborted(&app, &report, system).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_recovers_or_aborts_cleanly() {
    let base = baseline().await;
    let base = &base;
    let results =
        join_all(CASES.iter().map(|&(spec, expect)| async move {
            (spec, expect, run_case(spec, expect, base).await)
        }))
        .await;
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(spec, expect, r)| r.err().map(|e| format!("  {spec} ({expect:?}): {e}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fault cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_slower_than_the_timeout_is_retried() {
    let base = baseline().await;
    let mut http = test_http_settings();
    http.request_timeout = Duration::from_millis(800);
    let app = fault_app("ifs:slow=1500@2").http(http).start().await;
    let report = app.reconcile(&apply()).await.report;
    assert_eq!(outcome(&report, app.handle.write_counts()), base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_delta_fault_resyncs_in_full() {
    let app = fault_app("none").start().await;
    let first = app.report_only().await;
    assert_eq!(first.status, RunStatus::Completed);
    app.handle
        .set_faults(FaultPlan::from_str("graph:expire-delta").expect("spec"));
    let second = app.report_only().await;
    assert_eq!(
        second.status,
        RunStatus::Completed,
        "{:?}",
        second.abort_reason
    );
    assert_eq!(second.sources.azure.delta, Some(false), "a full resync");
    assert_eq!(finding_ids(&second), finding_ids(&first));
    assert_eq!(second.sources, {
        let mut s = first.sources.clone();
        s.azure.delta = Some(false);
        s
    });
    // The fault fired once; the fresh link works.
    let third = app.report_only().await;
    assert_eq!(third.sources.azure.delta, Some(true));
    assert_eq!(finding_ids(&third), finding_ids(&first));
}

/// A source that suddenly returns nobody after a run that saw users aborts
/// the run (README.md, "Safety rules", rule 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sudden_empty_listing_aborts() {
    for (spec, system, full) in [
        ("flow:empty", "Flow", false),
        ("ifs:empty", "IFS", false),
        // Azure AD is read by delta after the first run; an empty delta
        // round only means "no changes". A full listing that is empty aborts.
        ("graph:empty", "Azure AD", true),
    ] {
        let app = fault_app("none").start().await;
        let first = app.report_only().await;
        assert_eq!(first.status, RunStatus::Completed);
        app.handle
            .set_faults(FaultPlan::from_str(&format!("{spec}x*")).expect("spec"));
        let report = app
            .reconcile(&RunRequest {
                apply: true,
                full,
                ..RunRequest::manual()
            })
            .await
            .report;
        if let Err(e) = check_aborted(&app, &report, system).await {
            panic!("{spec}: {e}");
        }
        let reason = report.abort_reason.unwrap_or_default();
        assert!(reason.contains("0 users"), "{spec}: {reason}");
        // The next clean run still compares with the last completed one.
        app.handle.set_faults(FaultPlan::none());
        let after = app.report_only().await;
        assert_eq!(
            after.status,
            RunStatus::Completed,
            "{spec}: {:?}",
            after.abort_reason
        );
        assert_eq!(finding_ids(&after), finding_ids(&first), "{spec}");
        assert_eq!(after.summary.new, 0, "{spec}");
    }
}

/// A source that lists far fewer users than the last completed run (Azure
/// AD down from many to one, IFS losing a third) aborts the run, naming
/// each source and how much it shrank, and says how to allow it once;
/// `--allow-drop` lets exactly that run through, and it becomes the new
/// baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_shrinks_past_the_limit_aborts_until_allowed_once() {
    let app = fault_app("none").start().await;
    let first = app.report_only().await;
    assert_eq!(first.status, RunStatus::Completed);
    let azure_before = first.sources.azure.users;
    let ifs_before = first.sources.ifs.users;
    assert!(azure_before > 10 && ifs_before > 10);

    app.handle.update_azure(|users| users.truncate(1));
    app.handle.update_ifs(|users| {
        let keep = users.len() * 2 / 3;
        users.truncate(keep);
    });
    let request = RunRequest {
        apply: true,
        full: true,
        ..RunRequest::manual()
    };
    let report = app.reconcile(&request).await.report;
    if let Err(e) = check_aborted(&app, &report, "Azure AD").await {
        panic!("{e}");
    }
    let reason = report.abort_reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "Azure AD listed 1 users but the last completed run saw {azure_before}"
        )),
        "{reason}"
    );
    let ifs_now = ifs_before * 2 / 3;
    assert!(
        reason.contains(&format!(
            "IFS listed {ifs_now} users but the last completed run saw {ifs_before}"
        )),
        "{reason}"
    );
    assert!(reason.contains("% fewer"), "{reason}");
    assert!(!reason.contains("Flow listed"), "{reason}");
    assert!(
        reason.contains("safety.max_source_drop_percent = 20%"),
        "{reason}"
    );
    assert!(reason.contains("reconcile --allow-drop"), "{reason}");

    // Still refused while nobody allows it: the last completed run is the baseline.
    let again = app.report_only().await;
    assert_eq!(again.status, RunStatus::Aborted, "{:?}", again.abort_reason);

    // Allowed for one run: it completes and becomes the new baseline.
    let allowed = app
        .reconcile(&RunRequest {
            allow_drop: true,
            ..RunRequest::manual()
        })
        .await
        .report;
    assert_eq!(
        allowed.status,
        RunStatus::Completed,
        "{:?}",
        allowed.abort_reason
    );
    assert_eq!(allowed.sources.azure.users, 1);
    let after = app.report_only().await;
    assert_eq!(
        after.status,
        RunStatus::Completed,
        "{:?}",
        after.abort_reason
    );
}

/// A drop within the limit goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_drop_within_the_limit_goes_on() {
    let app = fault_app("none").start().await;
    let first = app.report_only().await;
    assert_eq!(first.status, RunStatus::Completed);
    app.handle.update_flow(|users| {
        let keep = users.len() * 9 / 10;
        users.truncate(keep);
    });
    let second = app.report_only().await;
    assert_eq!(
        second.status,
        RunStatus::Completed,
        "{:?}",
        second.abort_reason
    );
}

/// `safety.max_source_drop_percent` sets the limit: at 5, a 10% drop aborts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_limit_is_configurable() {
    let app = fault_app("none")
        .env("IDRECON__SAFETY__MAX_SOURCE_DROP_PERCENT", "5")
        .start()
        .await;
    let first = app.report_only().await;
    assert_eq!(first.status, RunStatus::Completed);
    app.handle.update_flow(|users| {
        let keep = users.len() * 9 / 10;
        users.truncate(keep);
    });
    let second = app.report_only().await;
    assert_eq!(second.status, RunStatus::Aborted);
    let reason = second.abort_reason.unwrap_or_default();
    assert!(reason.contains("Flow listed"), "{reason}");
    assert!(
        reason.contains("safety.max_source_drop_percent = 5%"),
        "{reason}"
    );
}

/// An empty delta round (no changes) is not an empty directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_delta_round_means_no_changes() {
    let app = fault_app("none").start().await;
    let first = app.report_only().await;
    app.handle
        .set_faults(FaultPlan::from_str("graph:emptyx*").expect("spec"));
    let second = app.report_only().await;
    assert_eq!(
        second.status,
        RunStatus::Completed,
        "{:?}",
        second.abort_reason
    );
    assert_eq!(second.sources.azure.delta, Some(true));
    assert_eq!(finding_ids(&second), finding_ids(&first));
}

/// On a first run there is nothing to compare with: an empty Flow is a
/// Flow nobody has been provisioned to yet, and the run completes (every
/// Azure + IFS person is `missing_in_flow`). The same holds for IFS: the
/// sudden-empty rule needs a previous completed run. Azure is the exception
/// (see `first_run_with_an_empty_azure_aborts`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_with_an_empty_flow_completes() {
    let app = fault_app("flow:emptyx*").start().await;
    let report = app.reconcile(&apply()).await.report;
    assert_eq!(
        report.status,
        RunStatus::Completed,
        "{:?}",
        report.abort_reason
    );
    assert_eq!(report.sources.flow.users, 0);
    assert!(report.sources.flow.complete);
    let kinds: BTreeSet<_> = report.findings.iter().map(|f| f.kind).collect();
    assert!(
        kinds.contains(&idrecon::model::FindingKind::MissingInFlow),
        "{kinds:?}"
    );
    assert!(report.findings.iter().all(|f| f.flow_user_id.is_none()));
    assert_eq!(app.handle.write_counts(), (0, 0), "nothing to rename");
    assert_eq!(exit_code_for(&report), ExitCode::FindingsOpen);
}

/// Azure AD is who the people are: an empty Azure listing aborts even on a
/// first run, instead of calling every IFS and Flow user a leaver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_with_an_empty_azure_aborts() {
    let app = fault_app("graph:emptyx*").start().await;
    let report = app.reconcile(&apply()).await.report;
    assert_eq!(report.status, RunStatus::Aborted);
    let reason = report.abort_reason.clone().unwrap_or_default();
    assert!(reason.contains("Azure AD returned 0 users"), "{reason}");
    assert!(report.findings.is_empty());
    assert_eq!(app.handle.write_counts(), (0, 0));
    assert_eq!(exit_code_for(&report), ExitCode::Aborted);
}

/// Faults while writing to Flow: every planned rename ends up done exactly
/// once (after a second apply run at the latest), none is sent twice, and
/// after the second run no mismatch is left unfixed. A failed write is not
/// retried within the run (a rename is not idempotent); the next run plans
/// it again from Flow's actual state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_write_faults_neither_repeat_nor_lose_a_rename() {
    let base = baseline().await;
    let renames: Vec<(String, String)> = base
        .actions
        .iter()
        .filter(|(kind, _, _, status)| {
            *kind == ActionKind::Rename && *status == Some(ActionStatus::Applied)
        })
        .map(|(_, from, to, _)| (from.clone(), to.clone().expect("rename target")))
        .collect();
    assert!(renames.len() >= 3);
    let mut failures = Vec::new();
    for spec in [
        "flow-write:500@1",
        "flow-write:503@2x2",
        "flow-write:429=1@1",
        "flow-write:drop@2",
        "flow-write:drop-after@1",
        "flow-write:drop-after@3,flow-write:500@4",
    ] {
        let app = fault_app(spec).start().await;
        let first = app.reconcile(&apply()).await.report;
        let first_status = first.status;
        app.handle.set_faults(FaultPlan::none());
        let second = app.reconcile(&apply()).await.report;
        let problems: Vec<String> = renames
            .iter()
            .filter_map(|(from, to)| {
                let n = app.handle.rename_count(from);
                (n != 1).then(|| format!("{from} -> {to} renamed {n} times"))
            })
            .chain(
                second
                    .findings
                    .iter()
                    .filter(|f| {
                        f.kind == idrecon::model::FindingKind::IdMismatch
                            && f.action_status != Some(ActionStatus::Applied)
                    })
                    .map(|f| format!("still a mismatch after two runs: {}", f.key())),
            )
            .chain(
                (second.status != RunStatus::Completed)
                    .then(|| format!("second run {:?}: {:?}", second.status, second.abort_reason)),
            )
            .collect();
        if !problems.is_empty() {
            failures.push(format!(
                "{spec} (first run {first_status:?}, actions {:?}):\n    {}",
                first
                    .actions
                    .iter()
                    .filter(|a| a.status != ActionStatus::Applied)
                    .map(|a| format!("{} {:?} {:?}", a.flow_user_id, a.status, a.error))
                    .collect::<Vec<_>>(),
                problems.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
