//! End to end: a generated tenant served by the simulator, reconciled
//! through the live connectors into a real SQLite store, finds exactly what
//! the generator says docs/semantics.md predicts.

mod e2e_support;

use e2e_support::*;
use idrecon::commands::exit_code_for;
use idrecon::error::ExitCode;
use idrecon::report::RunStatus;
use idrecon::store::Store;

async fn check(people: usize, seed: u64) {
    let app = spawn_app(people, seed).await;
    let report = app.run().await;
    assert_eq!(
        report.status,
        RunStatus::Completed,
        "{people} people, seed {seed}: {:?}",
        report.abort_reason
    );
    assert_expected_findings(&format!("{people} people, seed {seed}"), &app, &report);
    // Every finding is new on a first run; counts agree with the list.
    assert_eq!(report.summary.findings, report.findings.len() as u64);
    assert_eq!(report.summary.new, report.findings.len() as u64);
    assert_eq!(report.summary.persisting, 0);
    assert_eq!(report.summary.resolved_since_last_run, 0);
    assert_eq!(
        report.summary.by_kind.values().sum::<u64>(),
        report.findings.len() as u64
    );
    // The source counts are the simulator's (guests are out of scope by default).
    let members = app
        .handle
        .azure_users()
        .iter()
        .filter(|u| !u.is_guest())
        .count();
    assert_eq!(report.sources.azure.users, members as u64);
    assert_eq!(
        report.sources.ifs.users,
        app.handle.ifs_users().len() as u64
    );
    assert_eq!(
        report.sources.flow.users,
        app.handle.flow_users().len() as u64
    );
    assert_eq!(exit_code_for(&report), ExitCode::FindingsOpen);
    // The stored report is the report.
    let stored = app
        .store
        .load_report(report.run_id)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(stored, report);
    // Report mode writes nothing to Flow.
    assert_eq!(app.handle.write_counts(), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_tenants_find_exactly_the_expected() {
    for seed in [1, 2, 3] {
        check(300, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_tenants_find_exactly_the_expected() {
    for seed in [1, 2, 3] {
        check(2_000, seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_tenant_finds_exactly_the_expected() {
    check(20_000, 7).await;
}

/// docs/semantics.md §2–§4: the candidates of an ambiguous match stay free,
/// and an active Flow user linked to nobody is `not_in_azure`. The core keeps
/// them with the ambiguous person instead (see
/// `e2e_support::disputed_ambiguity_orphans`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "core bug: Flow candidates of an ambiguous Azure user are not reported as not_in_azure (semantics.md §2/§4 vs src/reconcile/correlate.rs)"]
async fn ambiguous_flow_candidates_left_over_are_not_in_azure() {
    let app = spawn_app(300, 1).await;
    let disputed = disputed_ambiguity_orphans(&app);
    assert!(!disputed.is_empty(), "seed 1 has the Ambiguous archetype");
    let report = app.run().await;
    let got = finding_ids(&report);
    assert_same_findings("300 people, seed 1 (strict)", &got, &app.expected_ids());
}
