//! `idrecon run` as a real process: serves `/healthz` on `server.listen`
//! and the run history behind `server.auth_token`, stops with exit 0 on
//! SIGTERM; a bad schedule is a configuration error.

use crate::app_support::TestApp;
use crate::worker_support;

use assert_cmd::cargo::cargo_bin;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use worker_support::replace;

/// A port that was free a moment ago (the worker binds it itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const TOKEN: &str = "history-page-token-7f3a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_healthz_and_exits_0_on_sigterm() {
    let port = free_port();
    let env = TestApp::builder(20, 1)
        .edit(|t| {
            format!("{t}\n[server]\nlisten = \"127.0.0.1:{port}\"\nauth_token = \"{TOKEN}\"\n")
        })
        .start()
        .await;
    let mut child = Command::new(cargo_bin("idrecon"))
        .arg("--config")
        .arg(&env.config_path)
        .args(["--log-format", "json", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("idrecon starts");

    let url = format!("http://127.0.0.1:{port}/healthz");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let body = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "idrecon run exited early with {status}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        match client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => break r.text().await.unwrap(),
            _ if started.elapsed() > Duration::from_secs(30) => {
                let _ = child.kill();
                panic!("/healthz did not answer within 30 s");
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "starting", "{body}");
    assert!(health["next_run"].is_string(), "{body}");

    // server.auth_token guards the run history page.
    let page = format!("http://127.0.0.1:{port}/");
    let refused = client.get(&page).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let shown = client.get(&page).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(shown.status(), 200);
    assert!(shown.text().await.unwrap().contains("idrecon run history"));

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("idrecon run did not stop within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(stderr.contains("worker stopped"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "the token is never logged");
    // Nothing ran (the schedule is nightly), so no run was recorded.
    assert_eq!(env.sim.handle().request_count("/graph"), 0);
}

#[tokio::test]
async fn run_with_a_bad_schedule_exits_3_naming_the_key() {
    let env = TestApp::builder(5, 1)
        .edit(|t| replace(t, "cron = \"0 2 * * *\"", "cron = \"0 0 2 * * ?\""))
        .start()
        .await;
    let out = assert_cmd::Command::new(cargo_bin("idrecon"))
        .arg("--config")
        .arg(&env.config_path)
        .arg("run")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("schedule.cron"), "{stderr}");

    let env = TestApp::builder(5, 1)
        .edit(|t| replace(t, "Europe/Stockholm", "Europe/Stokholm"))
        .start()
        .await;
    let out = assert_cmd::Command::new(cargo_bin("idrecon"))
        .arg("--config")
        .arg(&env.config_path)
        .arg("run")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("schedule.timezone"), "{stderr}");
}
