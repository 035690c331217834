//! `reconcile --findings-exit-code N` for schedulers that count every
//! non-zero exit as failed (Kubernetes Jobs, Windows Task Scheduler): a
//! completed run with findings exits N, while failures keep 1, 3 and 4 and
//! codes that already mean something else are refused.

use assert_cmd::Command;
use idrecon::sim::generate::generate;
use idrecon::sim::{FaultPlan, Simulator};
use idrecon::store::{LockHolder, SqliteStore, Store};
use std::net::SocketAddr;

fn idrecon() -> Command {
    let mut cmd = Command::cargo_bin("idrecon").expect("the idrecon binary");
    cmd.env_remove("IDRECON_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("IDRECON__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .expect("the blocking task finishes")
}

async fn reconcile(config: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut cmd = idrecon();
    cmd.arg("--config")
        .arg(config)
        .args(["reconcile", "--format", "json"])
        .args(extra);
    let out = run(cmd).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_exit_code_changes_only_the_findings_open_code() {
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(generate(100, 5).tenant, FaultPlan::none(), loopback)
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let store_url = format!("sqlite://{}", dir.path().join("codes.db").display());
    let config = dir.path().join("idrecon.toml");
    std::fs::write(&config, sim.config_toml(&store_url)).expect("config written");

    // Default: findings open is 2; opted in: 0 (or any free code).
    assert_eq!(reconcile(&config, &[]).await.0, Some(2));
    let (code, stderr) = reconcile(&config, &["--findings-exit-code", "0"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        reconcile(&config, &["--findings-exit-code", "100"]).await.0,
        Some(100)
    );

    // report.findings_exit_code in the config; the flag wins over it.
    let with_key = dir.path().join("with-key.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("[report]\n"));
    std::fs::write(
        &with_key,
        text.replace("[report]\n", "[report]\nfindings_exit_code = 0\n"),
    )
    .expect("config written");
    assert_eq!(reconcile(&with_key, &[]).await.0, Some(0));
    assert_eq!(
        reconcile(&with_key, &["--findings-exit-code", "2"]).await.0,
        Some(2)
    );

    // A safety abort stays 4 with the option.
    let store = SqliteStore::open(&store_url).await.expect("store");
    let holder = LockHolder::current("exit code test");
    store
        .acquire_lock(&holder, chrono::Utc::now(), chrono::Duration::minutes(5))
        .await
        .expect("lock taken");
    assert_eq!(
        reconcile(&config, &["--findings-exit-code", "0"]).await.0,
        Some(4)
    );
    store.release_lock(&holder).await.expect("released");

    // An incomplete source stays 4, a configuration error 3.
    sim.handle()
        .set_faults("ifs:403x*".parse::<FaultPlan>().expect("fault plan"));
    assert_eq!(
        reconcile(&config, &["--findings-exit-code", "0"]).await.0,
        Some(4)
    );
    let missing = dir.path().join("missing.toml");
    assert_eq!(
        reconcile(&missing, &["--findings-exit-code", "0"]).await.0,
        Some(3)
    );

    // Codes with another meaning, or no code at all, are refused (exit 3).
    for bad in ["1", "3", "4", "256", "-1", "zero"] {
        let arg = format!("--findings-exit-code={bad}");
        let (code, stderr) = reconcile(&config, &[&arg]).await;
        assert_eq!(code, Some(3), "--findings-exit-code {bad}: {stderr}");
        assert!(stderr.contains("--findings-exit-code"), "{stderr}");
    }
    sim.shutdown().await;
}
