//! The status server over real HTTP on port 0: `/healthz` transitions and
//! body, `/metrics` content type and text.

use chrono::{DateTime, Utc};
use idrecon::model::{Action, ActionKind, ActionStatus, FindingKind};
use idrecon::report::{
    Mode, Report, RunStatus, SourceSummary, SourcesSummary, Summary, Trigger, SCHEMA_VERSION,
};
use idrecon::server::{StatusServer, StatusState};
use idrecon::sources::System;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad test time {s}: {e}"))
        .with_timezone(&Utc)
}

fn report(run_id: i64, status: RunStatus, finished_at: &str) -> Report {
    let complete = status == RunStatus::Completed;
    let mut by_kind = BTreeMap::new();
    by_kind.insert(FindingKind::IdMismatch, 60);
    by_kind.insert(FindingKind::MissingInFlow, 20);
    let action = |status| Action {
        kind: ActionKind::Rename,
        flow_user_id: "jdoe".into(),
        new_flow_user_id: Some("jdoe@contoso.com".into()),
        status,
        error: None,
    };
    Report {
        schema_version: SCHEMA_VERSION,
        run_id,
        trigger: Trigger::Schedule,
        mode: Mode::Apply,
        status,
        abort_reason: (!complete).then(|| "ifs: HTTP 503".to_string()),
        started_at: utc(finished_at) - chrono::Duration::seconds(7),
        finished_at: Some(utc(finished_at)),
        sources: SourcesSummary {
            azure: SourceSummary {
                users: 1200,
                complete: true,
                delta: Some(false),
            },
            ifs: SourceSummary {
                users: if complete { 900 } else { 0 },
                complete,
                delta: None,
            },
            flow: SourceSummary {
                users: 950,
                complete: true,
                delta: None,
            },
        },
        summary: if complete {
            Summary {
                people: 1300,
                ok: 1220,
                findings: 80,
                by_kind,
                ..Summary::default()
            }
        } else {
            Summary::default()
        },
        advice: vec![],
        findings: vec![],
        actions: if complete {
            vec![
                action(ActionStatus::Applied),
                action(ActionStatus::Applied),
                action(ActionStatus::Failed),
            ]
        } else {
            vec![]
        },
    }
}

struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(state: StatusState) -> Running {
    let server = StatusServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind port 0");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let token = CancellationToken::new();
    let handle = tokio::spawn(server.run(state, token.clone()));
    Running {
        addr,
        token,
        handle,
    }
}

async fn get_healthz(addr: SocketAddr) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("GET /healthz");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/json");
    (status, resp.json().await.expect("JSON body"))
}

#[tokio::test]
async fn healthz_goes_starting_ok_degraded_ok() {
    let state = StatusState::new();
    let server = start(state.clone()).await;

    let (code, body) = get_healthz(server.addr).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        serde_json::json!({"status": "starting", "last_run": null, "next_run": null})
    );

    state.set_next_run(Some(utc("2026-11-26T01:00:00Z")));
    state.record_run(
        &report(41, RunStatus::Completed, "2026-11-25T01:00:07Z"),
        &[],
    );
    let (code, body) = get_healthz(server.addr).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        serde_json::json!({
            "status": "ok",
            "last_run": {"id": 41, "status": "completed", "finished_at": "2026-11-25T01:00:07Z"},
            "next_run": "2026-11-26T01:00:00Z"
        })
    );

    state.record_run(&report(42, RunStatus::Aborted, "2026-11-26T01:00:05Z"), &[]);
    state.set_next_run(Some(utc("2026-11-27T01:00:00Z")));
    let (code, body) = get_healthz(server.addr).await;
    assert_eq!(code, 503);
    assert_eq!(
        body,
        serde_json::json!({
            "status": "degraded",
            "last_run": {"id": 42, "status": "aborted", "finished_at": "2026-11-26T01:00:05Z"},
            "next_run": "2026-11-27T01:00:00Z"
        })
    );

    state.record_run(&report(43, RunStatus::Failed, "2026-11-27T01:00:01Z"), &[]);
    assert_eq!(get_healthz(server.addr).await.0, 503);

    state.record_run(
        &report(44, RunStatus::Completed, "2026-11-28T01:00:09Z"),
        &[],
    );
    let (code, body) = get_healthz(server.addr).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["last_run"]["id"], 44);

    server.token.cancel();
    tokio::time::timeout(Duration::from_secs(5), server.handle)
        .await
        .expect("server did not stop")
        .unwrap()
        .expect("server returned an error");
}

/// Every sample line of an OpenMetrics text: `name{labels} value`.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("sample without value: {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value not a number: {l:?}"));
            (series.to_string(), value)
        })
        .collect()
}

#[tokio::test]
async fn metrics_are_openmetrics_text_with_the_run_numbers() {
    let state = StatusState::new();
    let server = start(state.clone()).await;
    let url = format!("http://{}/metrics", server.addr);

    // Before any run: every series exists at 0.
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "# TYPE idrecon_runs counter",
        "idrecon_runs_total{status=\"completed\"} 0",
        "idrecon_runs_total{status=\"failed\"} 0",
        "idrecon_findings{kind=\"sync_managed\"} 0",
        "idrecon_last_success_timestamp_seconds 0.0",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{text}"
        );
    }

    state.record_run(
        &report(41, RunStatus::Completed, "2026-11-25T01:00:07Z"),
        &[
            (System::Azure, 3.25),
            (System::Ifs, 2.5),
            (System::Flow, 0.75),
        ],
    );
    state.record_run(
        &report(42, RunStatus::Aborted, "2026-11-26T01:00:05Z"),
        &[(System::Azure, 3.0), (System::Ifs, 30.0)],
    );

    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "# TYPE idrecon_runs counter",
        "# HELP idrecon_runs Reconciliation runs finished, by status.",
        "idrecon_runs_total{status=\"completed\"} 1",
        "idrecon_runs_total{status=\"aborted\"} 1",
        "idrecon_runs_total{status=\"failed\"} 0",
        "# TYPE idrecon_findings gauge",
        // From the completed run; the aborted one does not reset them.
        "idrecon_findings{kind=\"id_mismatch\"} 60",
        "idrecon_findings{kind=\"missing_in_flow\"} 20",
        "idrecon_findings{kind=\"ambiguous\"} 0",
        "idrecon_actions_total{status=\"applied\"} 2",
        "idrecon_actions_total{status=\"failed\"} 1",
        "# TYPE idrecon_source_fetch_seconds gauge",
        "# UNIT idrecon_source_fetch_seconds seconds",
        "idrecon_source_fetch_seconds{source=\"azure\"} 3.0",
        "idrecon_source_fetch_seconds{source=\"ifs\"} 30.0",
        "idrecon_source_fetch_seconds{source=\"flow\"} 0.75",
        // IFS was incomplete in the aborted run: the last complete count stays.
        "idrecon_source_users{source=\"azure\"} 1200",
        "idrecon_source_users{source=\"ifs\"} 900",
        "idrecon_source_users{source=\"flow\"} 950",
        // 2026-11-25T01:00:07Z
        "idrecon_last_success_timestamp_seconds 1795568407.0",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{text}"
        );
    }
    assert_eq!(lines.last(), Some(&"# EOF"));
    // Every sample parses as `series value`, and each series appears once.
    let parsed = samples(&text);
    let mut names: Vec<&String> = parsed.iter().map(|(s, _)| s).collect();
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total, "duplicate series in:\n{text}");
    assert!(
        parsed.iter().all(|(s, _)| s.starts_with("idrecon_")),
        "{text}"
    );

    server.token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server.handle).await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_a_taken_port_names_the_key() {
    let server = start(StatusState::new()).await;
    let resp = reqwest::get(format!("http://{}/nope", server.addr))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    let err = StatusServer::bind(server.addr).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("server.listen: cannot listen on {}", server.addr)),
        "{text}"
    );
    server.token.cancel();
}

#[tokio::test]
async fn serve_binds_and_stops_on_cancel() {
    // Find a free port, release it, then let `serve` bind it.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let token = CancellationToken::new();
    let handle = tokio::spawn(idrecon::server::serve(
        addr,
        StatusState::new(),
        token.clone(),
    ));
    let mut last_err = None;
    for _ in 0..100 {
        match reqwest::get(format!("http://{addr}/healthz")).await {
            Ok(resp) => {
                assert_eq!(resp.status().as_u16(), 200);
                last_err = None;
                break;
            }
            Err(e) => {
                last_err = Some(e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(last_err.is_none(), "serve never answered: {last_err:?}");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("serve did not stop")
        .unwrap()
        .unwrap();
}
