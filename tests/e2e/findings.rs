//! End to end: a generated tenant served by the simulator, reconciled
//! through the live connectors into a real SQLite store, finds exactly what
//! the generator says docs/semantics.md predicts.

use crate::{app_support, e2e_support};

use app_support::*;
use e2e_support::*;
use idrecon::commands::exit_code_for;
use idrecon::error::ExitCode;
use idrecon::model::{ActionKind, ActionStatus, Cause, Finding, FindingKind, NormalizedId};
use idrecon::report::RunStatus;
use idrecon::store::Store;

async fn check(people: usize, seed: u64) {
    let app = spawn_app(people, seed).await;
    let report = app.report_only().await;
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
        .store()
        .await
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

/// docs/semantics.md §3: Flow candidates of an ambiguous Azure user that
/// nobody else took join the ambiguous person. They are not `not_in_azure`
/// orphans, so even with `fix.deactivate_orphans` on, nothing deactivates
/// them (they may be a real employee's accounts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_person_owns_its_free_flow_candidates() {
    let app = TestApp::builder(300, 1)
        .env("IDRECON__FIX__DEACTIVATE_ORPHANS", "true")
        .start()
        .await;
    let report = app.report_only().await;
    assert_expected_findings("300 people, seed 1", &app, &report);
    let ambiguous: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Ambiguous)
        .collect();
    assert!(!ambiguous.is_empty(), "seed 1 has the Ambiguous archetype");
    let azure = app.handle.azure_users();
    let flow = app.handle.flow_users();
    for finding in ambiguous {
        let aad_id = finding
            .aad_id
            .as_deref()
            .expect("ambiguous has an Azure user");
        let user = azure
            .iter()
            .find(|u| u.id().eq_ignore_ascii_case(aad_id))
            .expect("the Azure user is in the tenant");
        let mail = NormalizedId::new(user.mail().expect("generated users have mail"));
        let candidates: Vec<&str> = flow
            .iter()
            .filter(|f| f.email().map(NormalizedId::new).as_ref() == Some(&mail))
            .map(|f| f.user_id())
            .collect();
        assert_eq!(candidates.len(), 2, "{aad_id}: {candidates:?}");
        for id in &candidates {
            // The ambiguous person names its candidates …
            assert!(
                finding.detail.contains(&format!("'{id}'")),
                "{id} not named in: {}",
                finding.detail
            );
            // … no other finding claims them …
            let others: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.flow_user_id.as_deref() == Some(*id))
                .collect();
            assert!(others.is_empty(), "{id} reported again: {others:?}");
            // … and no action touches them, deactivate_orphans or not.
            assert!(
                report.actions.iter().all(|a| a.flow_user_id != *id),
                "{id}: {:?}",
                report.actions
            );
        }
        assert_eq!(finding.action, ActionKind::None);
    }
    // The setting took effect: real orphans are planned for deactivation.
    assert!(report
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::Deactivate && a.status == ActionStatus::Planned));
}

/// docs/semantics.md §5.5: a Flow machine user holds the person's expected
/// ID (machine users are never matched, but their IDs are taken), so the
/// person's own drifted Flow user is in `conflict`, and no rename is planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_user_holding_the_expected_id_is_a_conflict_not_a_rename() {
    let app = spawn_app(300, 2).await;
    let report = app.report_only().await;
    assert_expected_findings("300 people, seed 2", &app, &report);
    let conflicts: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Conflict)
        .collect();
    assert_eq!(conflicts.len(), 1, "one of each archetype: {conflicts:?}");
    let conflict = conflicts[0];
    assert_eq!(conflict.cause, Some(Cause::DomainStripped));
    let expected = conflict
        .expected_flow_user_id
        .as_deref()
        .expect("conflict has an expected ID");
    let holder = app
        .handle
        .flow_users()
        .into_iter()
        .find(|u| NormalizedId::new(u.user_id()) == NormalizedId::new(expected))
        .expect("someone holds the expected ID");
    assert!(holder.is_machine(), "{holder:?}");
    assert!(
        conflict.detail.contains(&format!("'{}'", holder.user_id())),
        "{}",
        conflict.detail
    );
    assert_eq!(conflict.action, ActionKind::None);
    assert_eq!(conflict.action_status, None);
    let own = conflict.flow_user_id.as_deref().expect("own Flow user");
    assert!(
        report.actions.iter().all(|a| a.flow_user_id != own
            && a.flow_user_id != holder.user_id()
            && a.new_flow_user_id.as_deref().map(NormalizedId::new)
                != Some(NormalizedId::new(expected))),
        "{:?}",
        report.actions
    );
}
