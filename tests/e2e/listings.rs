//! How the listings behave against the simulator's awkward corners: the
//! first Graph listing (`$deltatoken=latest`, then `/users` by 999), a
//! stored delta link that no longer fits `graph_url`, page tokens that
//! expire mid-walk, IFS silent page caps, `--user` whatever the letter case,
//! and group members Graph shows without their properties.

use crate::app_support::*;
use crate::e2e_support::*;
use idrecon::job::RunRequest;
use idrecon::model::FindingKind;
use idrecon::report::RunStatus;
use idrecon::sim::generate::FLOW_USERS_GROUP_ID;
use std::collections::HashMap;

const PEOPLE: usize = 600;
const SEED: u64 = 97;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_listing_takes_a_latest_delta_link_then_lists_by_999_and_the_next_run_is_a_delta()
{
    let app = spawn_app(PEOPLE, SEED).await;
    let h = app.handle.clone();
    let azure = h.azure_users().len() as u64;
    let run1 = app.report_only().await;
    assert_eq!(run1.status, RunStatus::Completed, "{:?}", run1.abort_reason);
    assert_expected_findings("first run", &app, &run1);
    assert_eq!(run1.sources.azure.delta, Some(false));
    // One `$deltatoken=latest` request, then ceil(n / 999) listing pages
    // (a delta round would take pages of the service's own ~100).
    let delta = h.request_count("/graph/v1.0/users/delta");
    let all = h.request_count("/graph/v1.0/users");
    assert_eq!(delta, 1);
    assert_eq!(all - delta, azure.div_ceil(999));

    let run2 = app.report_only().await;
    assert_eq!(run2.sources.azure.delta, Some(true));
    assert_eq!(finding_ids(&run2), finding_ids(&run1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_link_stored_for_another_graph_origin_leads_to_one_full_listing() {
    let mut app = spawn_app(PEOPLE, SEED + 1).await;
    let h = app.handle.clone();
    let run1 = app.report_only().await;
    assert_eq!(run1.status, RunStatus::Completed);

    // The admin rewrites graph_url from 127.0.0.1 to localhost.
    let port = app.sim.addr().port();
    let env = HashMap::from([(
        "IDRECON__AZURE__GRAPH_URL".to_string(),
        format!("http://localhost:{port}/graph"),
    )]);
    app.reconfigure(&env);
    let run2 = app.report_only().await;
    assert_eq!(run2.status, RunStatus::Completed, "{:?}", run2.abort_reason);
    assert_eq!(run2.sources.azure.delta, Some(false), "one full listing");
    let why = run2
        .advice
        .iter()
        .find(|a| a.contains("listed in full instead of by delta"))
        .unwrap_or_else(|| panic!("the report says why: {:?}", run2.advice));
    assert!(why.contains("instead of the configured Graph URL"), "{why}");
    assert_eq!(finding_ids(&run2), finding_ids(&run1));

    // The new link fits the new URL: delta again, no permanent abort.
    let before = h.request_count("/graph/v1.0/users");
    let run3 = app.report_only().await;
    assert_eq!(run3.status, RunStatus::Completed, "{:?}", run3.abort_reason);
    assert_eq!(run3.sources.azure.delta, Some(true));
    assert_eq!(h.request_count("/graph/v1.0/users") - before, 1);
    assert!(run3.advice.iter().all(|a| !a.contains("listed in full")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_delta_link_is_explained_in_the_report() {
    let app = spawn_app(PEOPLE, SEED + 2).await;
    let run1 = app.report_only().await;
    assert_eq!(run1.status, RunStatus::Completed);
    app.handle.expire_delta_tokens();
    let run2 = app.report_only().await;
    assert_eq!(run2.status, RunStatus::Completed, "{:?}", run2.abort_reason);
    assert_eq!(run2.sources.azure.delta, Some(false));
    assert!(
        run2.advice
            .iter()
            .any(|a| a.contains("listed in full") && a.contains("syncStateNotFound")),
        "{:?}",
        run2.advice
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_that_expires_mid_walk_restarts_the_listing() {
    let app = TestApp::builder(PEOPLE * 3, SEED + 3)
        .faults("graph:expire-page@2")
        .start()
        .await;
    let run = app.report_only().await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.abort_reason);
    assert_expected_findings("after a restarted walk", &app, &run);

    // A token that expires every time: the run aborts after two restarts.
    app.handle
        .set_faults("graph:expire-page@2x*".parse().unwrap());
    let full = RunRequest {
        full: true,
        ..RunRequest::manual()
    };
    let run = app.reconcile(&full).await.report;
    assert_eq!(run.status, RunStatus::Aborted);
    let reason = run.abort_reason.unwrap();
    assert!(reason.contains("Directory_ExpiredPageToken"), "{reason}");
    assert!(reason.contains("2 fresh starts"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_ifs_page_cap_below_top_loses_nobody() {
    let app = TestApp::builder(PEOPLE, SEED + 4)
        .settings(|s| s.ifs_silent_page_cap = Some(70))
        .start()
        .await;
    let ifs = app.handle.ifs_users().len();
    assert!(ifs > 140, "{ifs}");
    let run = app.report_only().await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.abort_reason);
    assert_eq!(run.sources.ifs.users, ifs as u64);
    assert_expected_findings("with a silent page cap", &app, &run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_lookup_finds_the_ifs_user_whatever_the_letter_case() {
    let app = spawn_app(PEOPLE, SEED + 5).await;
    let h = app.handle.clone();
    let baseline = app.report_only().await;
    let with_findings: std::collections::HashSet<String> = baseline
        .findings
        .iter()
        .filter_map(|f| f.upn.clone())
        .collect();
    // A person without findings whose IFS Directory ID is their UPN.
    let azure = h.azure_users();
    let ifs = h.ifs_users();
    let person = azure
        .iter()
        .find(|u| {
            !with_findings.contains(u.user_principal_name())
                && u.user_principal_name()
                    .chars()
                    .any(|c| c.is_ascii_lowercase())
                && ifs
                    .iter()
                    .filter(|i| i.directory_id() == Some(u.user_principal_name()))
                    .count()
                    == 1
        })
        .expect("a consistent person keyed by UPN")
        .clone();
    h.update_ifs(|users| {
        for u in users.iter_mut() {
            if u.directory_id() == Some(person.user_principal_name()) {
                u.edit(|fields| {
                    fields.directory_id = Some(person.user_principal_name().to_uppercase().into())
                });
            }
        }
    });
    // A full run compares case-insensitively: still nothing to report.
    let full = app.report_only().await;
    assert!(full
        .findings
        .iter()
        .all(|f| f.upn.as_deref() != Some(person.user_principal_name())));
    let request = RunRequest {
        person: Some(person.user_principal_name().to_string()),
        ..RunRequest::manual()
    };
    let outcome = app.reconcile(&request).await;
    assert_eq!(outcome.report.status, RunStatus::Completed);
    assert!(
        outcome
            .report
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::MissingInIfs),
        "{:?} / {:?}",
        outcome.report.findings,
        outcome.steps
    );
    assert_eq!(outcome.report.sources.ifs.users, 1, "{:?}", outcome.steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_without_properties_abort_the_run_naming_user_read_all() {
    let app = TestApp::builder(PEOPLE, SEED + 6)
        .settings(|s| s.group_members_id_only = true)
        .env("IDRECON__AZURE__GROUP_ID", FLOW_USERS_GROUP_ID)
        .start()
        .await;
    let run = app.report_only().await;
    assert_eq!(run.status, RunStatus::Aborted);
    assert_eq!(
        idrecon::commands::exit_code_for(&run),
        idrecon::error::ExitCode::Aborted
    );
    assert!(run.findings.is_empty(), "nothing concluded from null users");
    let reason = run.abort_reason.unwrap();
    assert!(reason.contains("User.Read.All"), "{reason}");

    let lines = idrecon::commands::check::check_all(&app.config(), &test_http_settings())
        .await
        .unwrap();
    let graph = lines
        .iter()
        .find(|l| l.name.contains("Graph") || l.detail.contains("User.Read.All"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(!graph.ok, "{graph:?}");
    assert!(graph.detail.contains("User.Read.All"), "{graph:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_max_pages_from_the_configuration_aborts_a_long_listing() {
    let app = TestApp::builder(PEOPLE, SEED + 7)
        .env("IDRECON__IFS__PAGE_SIZE", "50")
        .env("IDRECON__IFS__CONCURRENCY", "2")
        .env("IDRECON__LIMITS__MAX_PAGES", "3")
        .start()
        .await;
    let run = app.report_only().await;
    assert_eq!(run.status, RunStatus::Aborted);
    assert!(run.findings.is_empty());
    let reason = run.abort_reason.unwrap();
    assert!(
        reason.contains("IFS") && reason.contains("limits.max_pages = 3"),
        "{reason}"
    );
}
