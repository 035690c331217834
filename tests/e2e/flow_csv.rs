//! `flow.source = "csv"`: Flow users from an export file give the same
//! findings as the Flow endpoint, and fixing is refused with a clear message.

use crate::{app_support, e2e_support};

use app_support::*;
use e2e_support::*;
use idrecon::commands::exit_code_for;
use idrecon::config::FlowSourceKind;
use idrecon::error::ExitCode;
use idrecon::job::RunRequest;
use idrecon::model::FlowUser;
use idrecon::report::RunStatus;
use std::collections::HashMap;
use std::path::Path;

/// Writes `users` as Flow's CSV export (docs/contract.md header).
fn write_export(path: &Path, users: &[FlowUser]) {
    let mut w = csv::Writer::from_path(path).expect("CSV file");
    w.write_record(["userId", "name", "email", "active", "type", "syncSource"])
        .expect("header");
    for u in users {
        w.write_record([
            u.user_id(),
            u.name().unwrap_or(""),
            u.email().unwrap_or(""),
            if u.active() { "true" } else { "false" },
            u.user_type(),
            u.sync_source().unwrap_or(""),
        ])
        .expect("row");
    }
    w.flush().expect("flushed");
}

fn csv_overrides(path: &Path) -> HashMap<String, String> {
    HashMap::from([
        ("IDRECON__FLOW__SOURCE".to_string(), "csv".to_string()),
        (
            "IDRECON__FLOW__CSV_PATH".to_string(),
            path.display().to_string(),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_gives_the_same_findings_as_the_endpoint() {
    let mut app = spawn_app(2_000, 8).await;
    let over_http = app.report_only().await;
    assert_eq!(over_http.status, RunStatus::Completed);

    let export = app.path("flow-users.csv");
    write_export(&export, &app.handle.flow_users());
    app.reconfigure(&csv_overrides(&export));
    assert_eq!(app.config().flow.source, FlowSourceKind::Csv);
    assert!(app.sources().flow_writer().is_none());

    let flow_requests = app.handle.request_count("/flow");
    let from_csv = app.report_only().await;
    assert_eq!(
        from_csv.status,
        RunStatus::Completed,
        "{:?}",
        from_csv.abort_reason
    );
    assert_eq!(
        app.handle.request_count("/flow"),
        flow_requests,
        "the Flow endpoint was not asked"
    );
    assert_same_findings(
        "CSV vs endpoint",
        &finding_ids(&from_csv),
        &finding_ids(&over_http),
    );
    assert_eq!(from_csv.sources.flow, over_http.sources.flow);
    assert_eq!(from_csv.summary.people, over_http.summary.people);
    assert_eq!(from_csv.summary.ok, over_http.summary.ok);
    // Same findings in the same detail, e.g. expected IDs and sync state.
    let detail = |r: &idrecon::report::Report| {
        r.findings
            .iter()
            .map(|f| {
                (
                    f.key(),
                    f.flow_user_id.clone(),
                    f.expected_flow_user_id.clone(),
                    f.action,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(detail(&from_csv), detail(&over_http));
    assert_eq!(from_csv.summary.new, 0, "nothing new compared with run 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_a_csv_source_is_refused_clearly() {
    let mut app = spawn_app(300, 8).await;
    let export = app.path("flow-users.csv");
    write_export(&export, &app.handle.flow_users());
    app.reconfigure(&csv_overrides(&export));

    let outcome = app
        .try_reconcile(&RunRequest {
            apply: true,
            ..RunRequest::manual()
        })
        .await;
    let report = match outcome {
        Ok(o) => o.report,
        Err(e) => panic!("the run should be recorded with its reason: {e}"),
    };
    assert_eq!(report.status, RunStatus::Failed);
    let reason = report.abort_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("flow.source") && reason.contains("csv"),
        "{reason}"
    );
    assert!(report.findings.is_empty(), "nothing concluded");
    assert_eq!(exit_code_for(&report), ExitCode::Failure);
    assert_eq!(app.handle.write_counts(), (0, 0));
    assert_eq!(
        app.handle.request_count("/graph"),
        0,
        "refused before reading anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_export_aborts_naming_the_line() {
    let mut app = spawn_app(300, 8).await;
    let export = app.path("flow-users.csv");
    let mut users = app.handle.flow_users();
    users.truncate(20);
    write_export(&export, &users);
    let mut text = std::fs::read_to_string(&export).expect("read");
    text.push_str("broken.user@contoso.com,Broken,,maybe,Full,\n");
    std::fs::write(&export, text).expect("written");
    app.reconfigure(&csv_overrides(&export));
    let report = app.report_only().await;
    assert_eq!(report.status, RunStatus::Aborted);
    let reason = report.abort_reason.unwrap_or_default();
    assert!(
        reason.contains("Flow") && reason.contains("flow-users.csv") && reason.contains("22"),
        "{reason}"
    );
    assert!(report.findings.is_empty());
}
