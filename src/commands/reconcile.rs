//! `idrecon reconcile`: one run now, report mode unless `--apply`.

use super::common::{emit_report, exit_code_for, load_config, open_store, report_format};
use crate::cli::{Cli, ReconcileArgs};
use crate::error::{AppError, ExitCode};
use crate::job::RunRequest;
use crate::notify;
use crate::report::terminal::escape_controls;
use crate::report::Trigger;
use crate::worker::{checkpoint_after_run, graph_sender, live_sources, reconcile_now};

pub async fn run(cli: &Cli, args: &ReconcileArgs) -> Result<ExitCode, AppError> {
    let cfg = load_config(cli)?;
    let store = open_store(&cfg.store.url).await?;
    let sources = live_sources(&cfg)?;
    let request = RunRequest {
        trigger: Trigger::Manual,
        apply: args.apply,
        full: args.full,
        max_changes_override: args.max_changes,
        person: args.user.clone(),
        allow_drop: args.allow_drop,
    };
    let outcome = reconcile_now(&cfg, &store, &sources, &request).await?;
    // What the run wrote goes into the database file while the report is
    // written (else the next run would do it at its start, sharing the
    // cores with its fetch).
    let checkpoint = {
        let store = store.clone();
        tokio::spawn(async move { checkpoint_after_run(&store).await })
    };
    for (n, step) in outcome.steps.iter().enumerate() {
        eprintln!("{}. {}", n + 1, escape_controls(step));
    }
    let report = outcome.report;
    if let Some(reason) = &report.abort_reason {
        let reason = escape_controls(reason);
        eprintln!("idrecon: run {} {}: {reason}", report.run_id, report.status);
    }
    emit_report(
        &report,
        report_format(args.format),
        args.output.as_deref(),
        args.all,
    )?;
    if args.email {
        let graph = graph_sender(&sources);
        notify::mail_run(&cfg, &store, &report, graph.as_ref()).await;
    }
    // The flag wins over report.findings_exit_code (default 2).
    let findings_exit_code = args
        .findings_exit_code
        .unwrap_or(cfg.report.findings_exit_code);
    let code = exit_code_for(&report).with_findings_code(findings_exit_code);
    if let Err(e) = checkpoint.await {
        tracing::warn!(error = %e, "the checkpoint after the run did not finish; the next run does it");
    }
    // Freeing a large report and the HTTP clients takes ~0.1 s at a million
    // users, after the report is out: a detached thread does it while the
    // process ends (the exit frees everything at once anyway).
    std::thread::spawn(move || drop((report, sources)));
    Ok(code)
}
