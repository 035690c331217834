//! `idrecon demo`: the main job against the built-in simulator, with a
//! temporary store. Needs no config and no network beyond loopback.

use super::common::{emit_report, exit_code_for, report_format};
use crate::cli::DemoArgs;
use crate::config::Config;
use crate::error::{AppError, ExitCode};
use crate::job::RunRequest;
use crate::sim::faults::FaultPlan;
use crate::sim::{generate, Simulator};
use crate::store::SqliteStore;
use crate::worker::{live_sources, reconcile_now};
use std::collections::HashMap;
use std::net::SocketAddr;

pub async fn run(args: &DemoArgs) -> Result<ExitCode, AppError> {
    let other =
        |what: &str, e: &dyn std::fmt::Display| AppError::Other(anyhow::anyhow!("{what}: {e}"));
    let generated = generate::generate(args.users as usize, args.seed);
    tracing::info!(
        people = args.users,
        seed = args.seed,
        "starting the simulator"
    );
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(generated.tenant, FaultPlan::default(), loopback)
        .await
        .map_err(|e| other("starting the simulator", &e))?;
    let dir = tempfile::tempdir().map_err(|e| other("creating a temporary store", &e))?;
    let store_url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let cfg = Config::from_toml_str(&sim.config_toml(&store_url), &HashMap::new(), dir.path())?;
    let store = SqliteStore::open(&store_url)
        .await
        .map_err(|e| other("opening the temporary store", &e))?;
    let sources = live_sources(&cfg)?;
    let request = RunRequest {
        apply: args.apply,
        max_changes_override: args.max_changes,
        ..RunRequest::manual()
    };
    let report = reconcile_now(&cfg, &store, &sources, &request)
        .await?
        .report;
    emit_report(&report, report_format(args.format), None, args.all)?;
    store.close().await;
    sim.shutdown().await;
    Ok(exit_code_for(&report))
}
