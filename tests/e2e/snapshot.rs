//! Record and replay: `snapshot export` of a run's three systems, served
//! again by the simulator (`sim --from`), gives the same findings; with
//! `--pseudonymise` the same kinds and causes, and none of the people.

use crate::app_support::{spawn_app, test_http_settings};
use crate::e2e_support::{assert_same_findings, finding_ids};
use assert_cmd::Command;
use idrecon::config::Config;
use idrecon::job::RunRequest;
use idrecon::model::{Cause, FindingKind};
use idrecon::report::Report;
use idrecon::sim::Simulator;
use idrecon::snapshot::pseudonymise::Pseudonymiser;
use idrecon::snapshot::{export, SnapshotFile};
use idrecon::sources::live::LiveSources;
use idrecon::store::SqliteStore;
use idrecon::worker::reconcile_now;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

/// A report-mode run against a simulator serving `file`.
async fn replay(file: SnapshotFile, dir: &Path) -> Report {
    let sim = Simulator::start(
        file.into_tenant(),
        Default::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let store_url = format!("sqlite://{}", dir.join("replay.db").display());
    let cfg = Config::from_toml_str(&sim.config_toml(&store_url), &HashMap::new(), dir).unwrap();
    let store = SqliteStore::open(&store_url).await.unwrap();
    let sources = LiveSources::with_settings(&cfg, &test_http_settings()).unwrap();
    let report = reconcile_now(&cfg, &store, &sources, &RunRequest::manual())
        .await
        .unwrap()
        .report;
    sim.shutdown().await;
    report
}

type KindCounts = BTreeMap<(FindingKind, Option<Cause>), usize>;

fn kind_counts(report: &Report) -> KindCounts {
    let mut counts = KindCounts::new();
    for f in &report.findings {
        *counts.entry((f.kind, f.cause)).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn export_then_replay_gives_the_same_findings_plain_and_pseudonymised() {
    let app = spawn_app(600, 21).await;
    let original = app.report_only().await;
    assert!(original.findings.len() > 20);

    let file = export(&app.config(), &app.sources()).await.unwrap();
    let path = app.path("tenant.json");
    file.write(&path).unwrap();
    let read = SnapshotFile::read(&path).unwrap();
    assert_eq!(read, file);
    assert_eq!(read.azure.len(), original.sources.azure.users as usize);

    let dir = tempfile::tempdir().unwrap();
    let replayed = replay(read.clone(), dir.path()).await;
    assert_same_findings("replay", &finding_ids(&replayed), &finding_ids(&original));

    let mut pseudo = read.clone();
    Pseudonymiser::new(b"a key for the round-trip test").apply(&mut pseudo);
    assert!(pseudo.pseudonymised);
    let text = serde_json::to_string(&pseudo).unwrap();
    for u in &read.azure {
        assert!(
            !text.contains(u.user_principal_name()),
            "{} leaked",
            u.user_principal_name()
        );
        if let Some(name) = u.display_name() {
            assert!(!text.contains(name), "{name} leaked");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let replayed = replay(pseudo, dir.path()).await;
    assert_eq!(kind_counts(&replayed), kind_counts(&original));
    assert_eq!(replayed.summary.people, original.summary.people);
}

fn idrecon() -> Command {
    let mut cmd = Command::cargo_bin("idrecon").unwrap();
    cmd.env_remove("IDRECON_CONFIG").env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("IDRECON__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The binary end to end: `snapshot export --pseudonymise`, `sim --from`
/// in its own process, `reconcile` against it.
#[tokio::test]
async fn binary_export_and_sim_from_replay_a_pseudonymised_tenant() {
    let app = spawn_app(300, 8).await;
    let original = app.report_only().await;
    let config = app.path("idrecon.toml");
    std::fs::write(&config, &app.config_text).unwrap();
    let file = app.path("pseudo.json");
    let mut export = idrecon();
    export.args(["snapshot", "export", "--pseudonymise", "--config"]);
    export.arg(&config).arg(&file);
    let out = output(export).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["pseudonymised"], true);
    assert!(!text.contains("contoso"), "domains are pseudonymised");

    // `idrecon sim --from FILE` prints its configuration, then serves.
    let mut sim = std::process::Command::new(assert_cmd::cargo::cargo_bin("idrecon"))
        .args(["sim", "--listen", "127.0.0.1:0", "--from"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = sim.stdout.take().unwrap();
    // The reader keeps draining stdout until the simulator exits: a pipe
    // closed while it still prints would end the simulator mid-test.
    let (config_tx, config_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let last = line.starts_with("transport =");
            text.push_str(&line);
            text.push('\n');
            if last {
                break;
            }
        }
        let _ = config_tx.send(text);
        lines.for_each(drop);
    });
    let sim_config = tokio::task::spawn_blocking(move || config_rx.recv().unwrap())
        .await
        .unwrap();
    let replay_config = app.path("replay.toml");
    std::fs::write(&replay_config, sim_config).unwrap();
    let mut reconcile = idrecon();
    reconcile.args(["reconcile", "--format", "json", "--config"]);
    reconcile
        .arg(&replay_config)
        .arg("--db")
        .arg(format!("sqlite://{}", app.path("replay.db").display()));
    let out = output(reconcile).await;
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut replayed: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        *replayed
            .entry((f["kind"].to_string(), f["cause"].to_string()))
            .or_default() += 1;
    }
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &original.findings {
        let v = serde_json::to_value(f).unwrap();
        *want
            .entry((v["kind"].to_string(), v["cause"].to_string()))
            .or_default() += 1;
    }
    assert_eq!(replayed, want);
}
