//! No secret reaches a log line or the output: client secrets, the Flow
//! password (also as a basic-auth header) and every access token the
//! simulator issued are searched for in TRACE-level JSON logs of a run
//! (library, global subscriber) and in stdout/stderr of the binary at
//! `-vvv --log-format json` — which also must carry no progress output.

use crate::app_support::TestApp;
use crate::worker_support;

use assert_cmd::cargo::cargo_bin;
use base64::Engine as _;
use idrecon::job::RunRequest;
use idrecon::logging::{self, LogFormat};
use idrecon::notify::{self, MailOutcome};
use idrecon::sim::{
    SimHandle, AZURE_CLIENT_SECRET, FLOW_PASSWORD, FLOW_USERNAME, IFS_CLIENT_SECRET,
};
use idrecon::worker::{graph_sender, reconcile_now};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use worker_support::{enable_fixes, fast_http};

/// Every secret value the simulator knows, including the tokens it issued.
fn secrets(sim: &SimHandle) -> Vec<String> {
    let tokens = sim.issued_access_tokens();
    assert!(
        tokens.len() >= 2,
        "the run should have obtained an Azure and an IFS token: {}",
        tokens.len()
    );
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{FLOW_USERNAME}:{FLOW_PASSWORD}"));
    let mut all = vec![
        AZURE_CLIENT_SECRET.to_string(),
        IFS_CLIENT_SECRET.to_string(),
        FLOW_PASSWORD.to_string(),
        basic,
    ];
    all.extend(tokens);
    all
}

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        if let Some(at) = text.find(secret.as_str()) {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!("{what} contains a secret in: {}", &text[start..end]);
        }
    }
}

/// Collects everything written by the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_a_run_with_fixes_and_mail_hold_no_secret() {
    // The only test in this file that installs a subscriber: global, so
    // every thread (runtime workers, blocking pool) is captured, and `log`
    // records (sqlx) too.
    let captured = Captured::default();
    logging::dispatch(
        EnvFilter::new("trace"),
        LogFormat::Json,
        false,
        captured.clone(),
    )
    .try_init()
    .expect("no other subscriber in this test binary");

    let env = TestApp::builder(120, 8)
        .edit(enable_fixes)
        .http(fast_http())
        .start()
        .await;
    let cfg = env.config();
    let store = env.store().await;
    let sources = env.sources();
    let request = RunRequest {
        apply: true,
        ..RunRequest::manual()
    };
    let report = reconcile_now(&cfg, &store, &sources, &request)
        .await
        .unwrap()
        .report;
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.status == idrecon::model::ActionStatus::Applied),
        "the run should have written to Flow"
    );
    let graph = graph_sender(&sources);
    assert_eq!(
        notify::mail_run(&cfg, &store, &report, graph.as_ref()).await,
        MailOutcome::Sent
    );
    // A second run goes through the delta link and the cached tokens.
    reconcile_now(&cfg, &store, &sources, &RunRequest::manual())
        .await
        .unwrap();
    store.close().await;

    let logs = captured.text();
    assert!(
        logs.contains("\"level\":\"TRACE\""),
        "TRACE lines were captured"
    );
    assert!(
        logs.contains("obtained a new access token"),
        "token acquisition is logged (without the token)"
    );
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
    }
    assert_no_secret("the TRACE log", &logs, &secrets(&env.sim.handle()));
}

fn idrecon(config: &Path, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::new(cargo_bin("idrecon"))
        .arg("--config")
        .arg(config)
        .args(["-vvv", "--log-format", "json"])
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_at_vvv_prints_no_secret_and_no_progress() {
    let env = TestApp::builder(120, 8).edit(enable_fixes).start().await;
    let config = env.config_path.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        vec![
            idrecon(&config, &["reconcile", "--email", "--format", "json"]),
            idrecon(&config, &["reconcile", "--apply", "--format", "json"]),
            idrecon(&config, &["check"]),
        ]
    })
    .await
    .unwrap();
    let sim = env.sim.handle();
    assert!(sim.write_counts().0 > 0, "--apply renamed Flow users");
    assert_eq!(sim.sent_mail().len(), 1, "--email sent the report");
    let secrets = secrets(&sim);
    for (n, out) in outputs.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "command {n} exited {:?}: {stderr}",
            out.status.code()
        );
        assert_no_secret(&format!("stdout of command {n}"), &stdout, &secrets);
        assert_no_secret(&format!("stderr of command {n}"), &stderr, &secrets);
        // stderr is not a terminal: only JSON log lines, no spinner or bar.
        // (`reconcile` also prints numbered steps for `--user` runs only.)
        assert!(stderr.contains("\"level\":\"TRACE\""), "command {n}: -vvv");
        for line in stderr.lines() {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "command {n}: non-JSON stderr line (progress output?): {line:?}"
            );
        }
        assert!(!stderr.contains("reading…") && !stderr.contains("reconciling\u{1b}"));
    }
}
