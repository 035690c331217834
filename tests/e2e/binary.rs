//! The `idrecon` binary end to end (assert_cmd): demo output in JSON and
//! CSV, `reconcile` against a simulator running in the test process, then
//! `history` and `show` of the stored run, configuration errors, `migrate`,
//! and a held lock.

use crate::app_support::TestApp;
use assert_cmd::Command;
use idrecon::report::{csv as report_csv, Report};
use idrecon::sim::generate::generate;
use idrecon::store::{LockHolder, Store};
use serde_json::Value;

fn idrecon() -> Command {
    let mut cmd = Command::cargo_bin("idrecon").expect("the idrecon binary");
    // No config or overrides from the environment of whoever runs the tests.
    cmd.env_remove("IDRECON_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("IDRECON__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs a command off the async runtime (the simulator keeps serving on it).
async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .expect("the blocking task finishes")
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn sorted(mut k: Vec<&str>) -> Vec<&str> {
    k.sort_unstable();
    k
}

/// Every key of docs/contract.md's report is present, with the right shapes.
fn assert_contract_report(v: &Value) {
    let top = keys(v);
    for key in [
        "schema_version",
        "run_id",
        "trigger",
        "mode",
        "status",
        "abort_reason",
        "started_at",
        "finished_at",
        "sources",
        "summary",
        "advice",
        "findings",
        "actions",
    ] {
        assert!(top.contains(&key), "report lacks {key}: {top:?}");
    }
    assert_eq!(v["schema_version"], 1);
    assert!(v["run_id"].is_i64());
    assert_eq!(v["trigger"], "manual");
    assert_eq!(v["mode"], "report");
    assert_eq!(v["status"], "completed");
    assert!(v["abort_reason"].is_null());
    for t in ["started_at", "finished_at"] {
        let s = v[t].as_str().unwrap_or_else(|| panic!("{t} is text"));
        assert!(
            chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z'),
            "{t} = {s}"
        );
    }
    assert_eq!(
        keys(&v["sources"]["azure"]),
        sorted(vec!["users", "complete", "delta"])
    );
    for s in ["ifs", "flow"] {
        let k = keys(&v["sources"][s]);
        assert!(
            k.contains(&"users") && k.contains(&"complete"),
            "{s}: {k:?}"
        );
        assert!(v["sources"][s]["users"].as_u64().unwrap_or(0) > 0);
    }
    assert_eq!(
        keys(&v["summary"]),
        sorted(vec![
            "people",
            "ok",
            "findings",
            "by_kind",
            "by_cause",
            "new",
            "persisting",
            "resolved_since_last_run"
        ])
    );
    assert!(v["summary"]["by_kind"]["id_mismatch"].as_u64().unwrap_or(0) > 0);
    assert!(
        v["summary"]["by_cause"]["domain_stripped"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    assert!(v["advice"].is_array());
    let findings = v["findings"].as_array().expect("findings array");
    assert!(!findings.is_empty());
    assert_eq!(
        v["summary"]["findings"].as_u64(),
        Some(findings.len() as u64)
    );
    for f in findings {
        assert_eq!(keys(f), sorted(report_csv::COLUMNS.to_vec()), "{f}");
    }
    let actions = v["actions"].as_array().expect("actions array");
    assert!(!actions.is_empty(), "report mode lists the planned actions");
    for a in actions {
        assert_eq!(
            keys(a),
            sorted(vec![
                "kind",
                "flow_user_id",
                "new_flow_user_id",
                "status",
                "error"
            ]),
            "{a}"
        );
    }
}

#[test]
fn demo_prints_the_contract_json_and_exits_2() {
    let out = idrecon()
        .args(["demo", "--users", "2000", "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_contract_report(&v);
    // The findings are the generator's.
    let report: Report = serde_json::from_value(v).expect("a Report");
    let got: std::collections::BTreeSet<String> = report.findings.iter().map(|f| f.key()).collect();
    let expected = generate(2000, 1);
    let want: std::collections::BTreeSet<String> =
        expected.expected.iter().map(|f| f.key.clone()).collect();
    assert!(got.is_subset(&want), "{:?}", got.difference(&want));
}

#[test]
fn demo_prints_csv_with_the_header_row() {
    let out = idrecon()
        .args(["demo", "--users", "2000", "--format", "csv"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header row")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, report_csv::COLUMNS);
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    assert!(rows.len() > 100, "{} rows", rows.len());
    assert!(rows.iter().all(|r| r.len() == report_csv::COLUMNS.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_then_history_and_show() {
    let app = TestApp::builder(500, 3).start().await;
    let config = &app.config_path;

    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["reconcile", "--format", "json"]);
    let out = run(cmd).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reconciled: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_contract_report(&reconciled);
    assert_eq!(reconciled["run_id"], 1);

    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["history", "--format", "json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let history: Value = serde_json::from_slice(&out.stdout).expect("JSON history");
    let runs = history.as_array().expect("a list of runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], 1);
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["findings"], reconciled["summary"]["findings"]);
    assert_eq!(runs[0]["people"], reconciled["summary"]["people"]);

    // The table says how the run was started, in words (the cell may wrap at 80 columns).
    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["history", "--format", "table"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = table
        .lines()
        .flat_map(|l| l.split(['│', '┆']))
        .map(str::trim)
        .collect();
    assert!(
        words.contains(&"manual") && words.contains(&"report"),
        "{table}"
    );

    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["show", "1", "--format", "json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(shown, reconciled);

    // An unknown run is an error, not an empty report.
    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["show", "99", "--format", "json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("99"));
    app.sim.shutdown().await;
}

#[test]
fn config_with_a_bad_key_exits_3_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = idrecon::sim::config::render_config_toml(
        "http://127.0.0.1:9",
        &format!("sqlite://{}", dir.path().join("x.db").display()),
    )
    .replace("[fix]\n", "[fix]\nmax_chnages = 3\n");
    let path = dir.path().join("idrecon.toml");
    std::fs::write(&path, text).expect("written");
    let out = idrecon()
        .arg("--config")
        .arg(&path)
        .arg("reconcile")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fix.max_chnages"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!dir.path().join("x.db").exists(), "nothing was started");
}

#[test]
fn migrate_creates_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("m.db");
    let url = format!("sqlite://{}", db.display());
    let out = idrecon()
        .args(["migrate", "--db", &url])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
    // Twice is fine.
    let out = idrecon()
        .args(["migrate", "--db", &url])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_bad_db_url_is_a_configuration_error_for_every_store_command() {
    for args in [
        vec!["migrate", "--db", "mysql://x"],
        vec!["history", "--db", "mysql://x"],
        vec!["show", "1", "--db", "mysql://x"],
    ] {
        let out = idrecon().args(&args).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("--db"), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_makes_reconcile_exit_4_naming_the_holder() {
    let app = TestApp::builder(100, 3).start().await;
    let config = &app.config_path;
    let store = app.store().await;
    let holder = LockHolder::current("e2e test holding the lock");
    store
        .acquire_lock(&holder, chrono::Utc::now(), chrono::Duration::minutes(5))
        .await
        .expect("lock taken");

    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["reconcile", "--format", "json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&holder.pid.to_string()) && stderr.contains("e2e test holding the lock"),
        "{stderr}"
    );
    assert!(store.list_runs(10).await.expect("runs").is_empty());
    assert_eq!(app.handle.request_count("/graph"), 0, "nothing was read");

    // Released, the same command runs.
    store.release_lock(&holder).await.expect("released");
    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["reconcile", "--format", "json"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    app.sim.shutdown().await;
}

/// `reconcile --user` prints its lookup steps to the terminal: a display
/// name carrying ESC/OSC sequences is shown escaped, never raw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_steps_show_control_sequences_escaped() {
    let app = TestApp::builder(50, 3).start().await;
    let hostile = "Mallory\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m";
    let mut upn = String::new();
    app.handle.update_azure(|users| {
        users[0].edit(|fields| fields.display_name = Some(hostile.into()));
        upn = users[0].user_principal_name().to_string();
    });
    let mut cmd = idrecon();
    cmd.arg("--config").arg(&app.config_path).args([
        "reconcile",
        "--format",
        "table",
        "--user",
        &upn,
    ]);
    let out = run(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("Azure AD: found Mallory\\u{1b}]0;owned\\u{7}"),
        "{stderr}"
    );
    for text in [&stderr, &stdout] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{9b}'),
            "{text}"
        );
    }
}

/// `idrecon sim` keeps serving when its stdout cannot be written (a reader
/// that went away, a full disk behind a redirect): here stdout is
/// /dev/full, so printing the configuration fails every time.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn sim_keeps_serving_when_its_stdout_fails() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut sim = std::process::Command::new(assert_cmd::cargo::cargo_bin("idrecon"))
        .args([
            "--log-format",
            "text",
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--users",
            "20",
        ])
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = sim.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send(Ok((url, seen.clone())));
            }
        }
        let _ = tx.send(Err(seen));
    });
    let first = tokio::task::spawn_blocking(move || rx.recv().unwrap())
        .await
        .unwrap();
    let (url, seen) = match first {
        Ok(found) => found,
        Err(seen) => {
            let _ = sim.kill();
            panic!("the simulator stopped before listening:\n{seen}");
        }
    };
    assert!(
        seen.contains("cannot print the configuration"),
        "the failed print is reported: {seen}"
    );
    // It answers: Graph refuses a request without a token, as Graph does.
    let answer = reqwest::get(format!("{url}/graph/v1.0/users")).await;
    let still_running = sim.try_wait().unwrap().is_none();
    let _ = sim.kill();
    let _ = sim.wait();
    let answer = answer.expect("the simulator answers HTTP");
    assert_eq!(answer.status(), 401, "Graph without a token is refused");
    assert!(still_running, "the simulator is still running");
}
