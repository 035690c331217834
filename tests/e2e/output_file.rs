//! `--output FILE` is a new owner-only file even under umask 000, and a
//! symlink planted at its path is replaced, not written through; an open
//! config file or secret file is warned about at startup.

#![cfg(unix)]

use idrecon::sim::generate::generate;
use idrecon::sim::{FaultPlan, Simulator};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// `idrecon ARGS` started by `sh` after `umask 000`.
fn idrecon_with_umask_000(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("idrecon"))
        .args(args)
        .env_remove("IDRECON_CONFIG")
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("IDRECON__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_owner_only_and_never_follows_a_planted_symlink() {
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(generate(60, 3).tenant, FaultPlan::none(), loopback)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("out.db").display());
    let config = dir.path().join("idrecon.toml");
    std::fs::write(&config, sim.config_toml(&store_url)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();

    // Someone planted a symlink where the report goes, aiming at a file of ours.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let target = dir.path().join("report.csv");
    std::os::unix::fs::symlink(&victim, &target).unwrap();

    let config_arg = config.display().to_string();
    let target_arg = target.display().to_string();
    let mut cmd = idrecon_with_umask_000(&[
        "--config",
        &config_arg,
        "reconcile",
        "--format",
        "csv",
        "--output",
        &target_arg,
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&target).unwrap();
    assert!(meta.file_type().is_file(), "the symlink was replaced");
    assert_eq!(mode(&target), 0o600);
    let csv = std::fs::read_to_string(&target).unwrap();
    assert!(csv.starts_with("kind,"), "{csv}");
    // No temporary file left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".idrecon-output-")
        })
        .collect();
    assert!(leftovers.is_empty());

    // The config file is readable by everyone: said at startup.
    assert!(
        stderr.contains(&format!(
            "the config file {} is readable by everyone",
            config.display()
        )),
        "{stderr}"
    );
    sim.shutdown().await;
}
